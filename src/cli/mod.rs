//! runc's command line, declared with clap. No logic beyond argument shape lives here.
//!
//! runc parses flags with Go's `flag` package, which takes `-flag` and `--flag` alike; clients and
//! scripts written for runc use both, so `normalize` rewrites a single-dash long flag to the
//! double-dash form before clap sees it.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

mod own;
mod runc;

pub use own::{Check, Profile, Sandbox};
pub use runc::{Checkpoint, Create, CreateOpts, CriuFlags, Delete, Events, Exec, Id, Kill, List, Ps, Restore, Run, SpecCmd, Update};

#[derive(Parser, Debug)]
#[command(name = "testudo", about = "A minimal, hardened OCI container runtime", disable_version_flag = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Globals,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The options before (or, the global ones, anywhere after) the command.
#[derive(Args, Debug)]
pub struct Globals {
    /// Root directory for container state (default /run/testudo; rootless, $XDG_RUNTIME_DIR/testudo)
    #[arg(long, global = true)]
    pub root: Option<PathBuf>,
    /// Append log records to this file (default: stderr)
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log record format
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Log debug records
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use the systemd cgroup driver
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Run without privilege over the host: true, false or auto (rootless when not root, or root
    /// only inside a user namespace); before the command, as in runc
    #[arg(long, value_name = "VALUE")]
    pub rootless: Option<String>,
    /// Refuse to create (run, exec, update) what fails this audit policy, on top of
    /// /etc/testudo/policy.json when that exists; before the command, where engines put runtime
    /// arguments (see `check`)
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The CRIU binary `checkpoint` and `restore` run (default: criu, found in PATH)
    #[arg(long, global = true, value_name = "PATH")]
    pub criu: Option<PathBuf>,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container
    Create(Create),
    /// Start a created container
    Start(Id),
    /// Print the state of a container
    State(Id),
    /// Send a signal to a container's init (or every process with --all)
    Kill(Kill),
    /// Delete a container
    Delete(Delete),
    /// Create, start and wait for a container
    Run(Run),
    /// Run a new process in a running container
    Exec(Exec),
    /// List containers
    #[command(alias = "ls")]
    List(List),
    /// Write a default config.json
    Spec(SpecCmd),
    /// Print what this build supports, as JSON
    Features,
    /// List the processes of a container
    Ps(Ps),
    /// Freeze every process of a container
    Pause(Id),
    /// Thaw a paused container
    Resume(Id),
    /// Change the resources of a running container
    Update(Update),
    /// Print container events and statistics
    Events(Events),
    /// Checkpoint a running container with CRIU
    Checkpoint(Checkpoint),
    /// Restore a container from a checkpoint
    Restore(Restore),
    /// Audit a bundle's config.json against the CIS Docker Benchmark's container items
    Check(Check),
    /// Run an untrusted build job in a hardened container, no bundle needed
    Sandbox(Box<Sandbox>),
    /// Run a bundle once, recording its syscalls, and write the seccomp allow-list they make
    Profile(Profile),
}

/// Parse argv the way runc does. Every command is on some client's hot path (a shim calls
/// create, start, state, delete per container), and building clap's whole tree of 18 commands and
/// their arguments cost about as much as matching them (0.14 + 0.14 ms of 0.34 ms measured): the
/// command named in argv gets a tree of its own alone. Help, and any argv that tree does not
/// take, go to the whole tree, whose messages and errors are the ones users see.
pub fn parse(args: Vec<String>) -> Result<Cli, clap::Error> {
    if let Some(narrow) = narrow(&args) {
        if let Ok(cli) = parse_with(narrow, args.clone()) {
            return Ok(cli);
        }
    }
    parse_with(Cli::command(), args)
}

fn parse_with(mut cmd: clap::Command, args: Vec<String>) -> Result<Cli, clap::Error> {
    let args = normalize(&cmd, args);
    let mut matches = cmd.try_get_matches_from_mut(args)?;
    <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut matches)
}

/// The root options and the one command argv names, or None (help asked for, no command, one
/// this does not know): the whole tree then.
fn narrow(args: &[String]) -> Option<clap::Command> {
    if args.iter().any(|a| matches!(a.as_str(), "-h" | "--help" | "help" | "-help")) {
        return None;
    }
    let root = Globals::augment_args(clap::Command::new("testudo")).disable_version_flag(true);
    let c = |name: &'static str| clap::Command::new(name);
    let sub = match named_command(args)? {
        "create" => Create::augment_args(c("create")),
        "start" => Id::augment_args(c("start")),
        "state" => Id::augment_args(c("state")),
        "kill" => Kill::augment_args(c("kill")),
        "delete" => Delete::augment_args(c("delete")),
        "run" => Run::augment_args(c("run")),
        "exec" => Exec::augment_args(c("exec")),
        "list" | "ls" => List::augment_args(c("list")).alias("ls"),
        "ps" => Ps::augment_args(c("ps")),
        "pause" => Id::augment_args(c("pause")),
        "resume" => Id::augment_args(c("resume")),
        "update" => Update::augment_args(c("update")),
        "events" => Events::augment_args(c("events")),
        "sandbox" => Sandbox::augment_args(c("sandbox")),
        _ => return None,
    };
    Some(root.subcommand(sub))
}

/// The first argument that is neither a root option nor the value of one.
fn named_command(args: &[String]) -> Option<&str> {
    const TAKE_VALUES: [&str; 6] = ["root", "log", "log-format", "rootless", "policy", "criu"];
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.strip_prefix("--").or_else(|| a.strip_prefix('-')) {
            Some(flag) if TAKE_VALUES.contains(&flag) => {
                it.next();
            }
            Some(_) => {}
            None => return Some(a),
        }
    }
    None
}

/// Rewrite Go-style `-flag`/`-flag=value` to `--flag`, for the long flags clap knows, up to the
/// first positional argument after the subcommand (what follows may be the container's own argv).
fn normalize(cmd: &clap::Command, args: Vec<String>) -> Vec<String> {
    let mut longs: Vec<(String, bool)> = long_flags(cmd);
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    if let Some(argv0) = iter.next() {
        out.push(argv0);
    }
    let mut sub_seen = false;
    let mut expect_value = false;
    let mut done = false;
    for arg in iter {
        if done || arg == "--" {
            done = true;
            out.push(arg);
            continue;
        }
        if expect_value {
            expect_value = false;
            out.push(arg);
            continue;
        }
        let rewritten = match arg.strip_prefix('-') {
            Some(rest) if !rest.starts_with('-') && rest.len() > 1 => {
                let name = rest.split('=').next().unwrap_or(rest);
                longs.iter().find(|(l, _)| l == name).map(|(_, takes)| {
                    expect_value = *takes && !rest.contains('=');
                    format!("--{rest}")
                })
            }
            Some(rest) if rest.starts_with('-') => {
                let name = rest[1..].split('=').next().unwrap_or("");
                if let Some((_, takes)) = longs.iter().find(|(l, _)| l == name) {
                    expect_value = *takes && !rest.contains('=');
                }
                None
            }
            Some(short) => {
                // A lone short flag such as -b takes the next argument when it takes a value.
                expect_value = short_takes_value(cmd, short);
                None
            }
            None => {
                if sub_seen {
                    done = true;
                } else if let Some(sub) = cmd.find_subcommand(&arg) {
                    sub_seen = true;
                    longs.extend(long_flags(sub));
                }
                None
            }
        };
        out.push(rewritten.unwrap_or(arg));
    }
    out
}

fn long_flags(cmd: &clap::Command) -> Vec<(String, bool)> {
    cmd.get_arguments().filter_map(|a| a.get_long().map(|l| (l.to_string(), a.get_action().takes_values()))).collect()
}

fn short_takes_value(cmd: &clap::Command, short: &str) -> bool {
    let mut chars = short.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else { return false };
    std::iter::once(cmd).chain(cmd.get_subcommands()).flat_map(|c| c.get_arguments()).any(|a| a.get_short() == Some(c) && a.get_action().takes_values())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(v: &[&str]) -> Cli {
        super::parse(v.iter().map(|s| s.to_string()).collect()).unwrap_or_else(|e| panic!("{v:?}: {e}"))
    }

    /// The narrow tree reads every argv the whole tree reads, the same way.
    #[test]
    fn the_narrow_tree_parses_as_the_whole_tree() {
        let argvs: &[&[&str]] = &[
            &[
                "testudo",
                "--root",
                "/r",
                "--log",
                "/l.json",
                "--log-format",
                "json",
                "create",
                "--bundle",
                "/b",
                "--pid-file",
                "/p",
                "--console-socket",
                "/s",
                "c1",
            ],
            &["testudo", "-root", "/r", "create", "-bundle=/b", "c1", "--pid-file", "p"],
            &["testudo", "--systemd-cgroup", "--root", "/r", "start", "c1"],
            &["testudo", "state", "c1", "--root", "/late"],
            &["testudo", "--rootless", "true", "kill", "--all", "c1", "KILL"],
            &["testudo", "kill", "c1", "0"],
            &["testudo", "delete", "-f", "c1"],
            &["testudo", "--policy", "/p.json", "run", "-d", "--bundle", "/b", "c1"],
            &["testudo", "exec", "-t", "--cwd", "/", "-e", "A=1", "c1", "sh", "-c", "ls -la", "-detach"],
            &["testudo", "exec", "--process", "/x.json", "--detach", "--pid-file", "P", "c1"],
            &["testudo", "ls", "--format", "json"],
            &["testudo", "list", "-q"],
            &["testudo", "ps", "--format", "json", "c1"],
            &["testudo", "pause", "c1"],
            &["testudo", "resume", "c1"],
            &["testudo", "update", "--memory", "-1", "--pids-limit", "-1", "c1"],
            &["testudo", "events", "--stats", "c1"],
            &["testudo", "--debug", "sandbox", "--rootfs", "/r", "--workspace", "/w", "--ro-bind", "/usr:/usr", "--timeout", "2s", "--", "make", "-j2"],
        ];
        for argv in argvs {
            let args: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
            let narrow = super::narrow(&args).unwrap_or_else(|| panic!("{argv:?}: no narrow tree"));
            let fast = super::parse_with(narrow, args.clone()).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            let whole = super::parse_with(Cli::command(), args).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            assert_eq!(format!("{fast:?}"), format!("{whole:?}"), "{argv:?}");
        }
        // Help and the rest take the whole tree.
        for argv in [&["testudo", "create", "--help"][..], &["testudo", "spec"], &["testudo", "--version"], &["testudo"]] {
            let args: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
            assert!(super::narrow(&args).is_none(), "{argv:?}");
        }
    }

    #[test]
    fn containerd_shim_create() {
        let c = parse(&[
            "testudo",
            "--root",
            "/run/containerd/runc/default",
            "--log",
            "/b/log.json",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/init.pid",
            "--console-socket",
            "/tmp/pty.sock",
            "c1",
        ]);
        assert_eq!(c.global.root, Some(PathBuf::from("/run/containerd/runc/default")));
        assert_eq!(c.global.log_format, "json");
        let Some(Command::Create(cr)) = c.command else { panic!("not create") };
        assert_eq!(cr.id, "c1");
        assert_eq!(cr.opts.bundle, PathBuf::from("/b"));
        assert_eq!(cr.opts.pid_file, Some(PathBuf::from("/b/init.pid")));
        assert_eq!(cr.opts.console_socket, Some(PathBuf::from("/tmp/pty.sock")));
    }

    #[test]
    fn containerd_shim_other_calls() {
        let pre = ["testudo", "--root", "R", "--log", "B/log.json", "--log-format", "json"];
        let with = |rest: &[&str]| parse(&[&pre[..], rest].concat());
        assert!(matches!(with(&["start", "c1"]).command, Some(Command::Start(Id { ref id })) if id == "c1"));
        let Some(Command::Exec(e)) = with(&["exec", "--process", "/tmp/p.json", "--console-socket", "S", "--detach", "--pid-file", "P", "c1"]).command else {
            panic!()
        };
        assert_eq!((e.process.as_deref(), e.detach, e.id.as_str()), (Some(std::path::Path::new("/tmp/p.json")), true, "c1"));
        let Some(Command::Ps(p)) = with(&["ps", "--format", "json", "c1"]).command else { panic!() };
        assert_eq!(p.format, "json");
        assert!(matches!(with(&["pause", "c1"]).command, Some(Command::Pause(_))));
        assert!(matches!(with(&["resume", "c1"]).command, Some(Command::Resume(_))));
        let Some(Command::Update(u)) = with(&["update", "--resources", "-", "c1"]).command else { panic!() };
        assert_eq!(u.resources.as_deref(), Some("-"));
        let Some(Command::Kill(k)) = with(&["kill", "c1", "15"]).command else { panic!() };
        assert_eq!((k.all, k.signal.as_deref()), (false, Some("15")));
        let Some(Command::Kill(k)) = with(&["kill", "--all", "c1", "9"]).command else { panic!() };
        assert_eq!((k.all, k.signal.as_deref()), (true, Some("9")));
        let Some(Command::Delete(d)) = with(&["delete", "--force", "c1"]).command else { panic!() };
        assert!(d.force);
    }

    #[test]
    fn podman_conmon_calls() {
        let Some(Command::Exec(e)) =
            parse(&["testudo", "exec", "--pid-file", "P", "--process", "F", "--detach", "--tty", "--console-socket", "S", "c1"]).command
        else {
            panic!()
        };
        assert!(e.tty && e.detach);
        let Some(Command::Update(u)) = parse(&["testudo", "update", "--resources=/tmp/r.json", "c1"]).command else { panic!() };
        assert_eq!(u.resources.as_deref(), Some("/tmp/r.json"));
    }

    #[test]
    fn go_style_and_late_flags() {
        let Some(Command::Create(c)) = parse(&["testudo", "-root", "/r", "create", "-bundle=/b", "c1", "--pid-file", "p"]).command else { panic!() };
        assert_eq!((c.opts.bundle.to_str(), c.opts.pid_file.is_some()), (Some("/b"), true));
        let Some(Command::Create(c)) = parse(&["testudo", "create", "-b", "/b", "c1"]).command else { panic!() };
        assert_eq!(c.opts.bundle.to_str(), Some("/b"));
        let Some(Command::Kill(k)) = parse(&["testudo", "kill", "c1", "KILL", "--all"]).command else { panic!() };
        assert!(k.all);
        let Some(Command::Delete(d)) = parse(&["testudo", "delete", "c1", "-f"]).command else { panic!() };
        assert!(d.force);
    }

    #[test]
    fn policy_is_a_global_option_and_a_create_option() {
        let c = parse(&["testudo", "--root", "/r", "--policy", "/p.json", "create", "--bundle", "/b", "c1"]);
        assert_eq!(c.global.policy.as_deref(), Some(std::path::Path::new("/p.json")));
        let c = parse(&["testudo", "-policy=/p.json", "exec", "--process", "/x.json", "c1"]);
        assert_eq!(c.global.policy.as_deref(), Some(std::path::Path::new("/p.json")));
        let Some(Command::Create(cr)) = parse(&["testudo", "create", "--policy", "/q.json", "c1"]).command else { panic!() };
        assert_eq!(cr.opts.policy.as_deref(), Some(std::path::Path::new("/q.json")));
    }

    #[test]
    fn update_takes_negative_limits_as_separate_arguments() {
        let Some(Command::Update(u)) =
            parse(&["testudo", "update", "--memory", "-1", "--memory-swap", "-1", "--pids-limit", "-1", "--cpu-quota", "-1", "c1"]).command
        else {
            panic!()
        };
        assert_eq!(
            (u.memory.as_deref(), u.memory_swap.as_deref(), u.pids_limit, u.cpu_quota, u.id.as_str()),
            (Some("-1"), Some("-1"), Some(-1), Some(-1), "c1")
        );
        let Some(Command::Kill(k)) = parse(&["testudo", "kill", "c1", "0"]).command else { panic!() };
        assert_eq!(k.signal.as_deref(), Some("0"));
    }

    #[test]
    fn checkpoint_and_restore_as_podman_and_containerd_call_them() {
        let pre = ["testudo", "--root", "R", "--log", "L", "--log-format", "json"];
        let with = |rest: &[&str]| parse(&[&pre[..], rest].concat());
        let Some(Command::Checkpoint(c)) =
            with(&["checkpoint", "--image-path", "/i", "--work-path", "/w", "--leave-running", "--tcp-established", "--file-locks", "c1"]).command
        else {
            panic!()
        };
        assert_eq!((c.criu.image_path.as_deref(), c.criu.work_path.as_deref()), (Some(Path::new("/i")), Some(Path::new("/w"))));
        assert!(c.leave_running && c.criu.tcp_established && c.criu.file_locks && !c.pre_dump && c.id == "c1");
        let Some(Command::Checkpoint(c)) = with(&[
            "checkpoint",
            "--image-path",
            "/i",
            "--pre-dump",
            "--parent-path",
            "../p",
            "--ext-unix-sk",
            "--shell-job",
            "--empty-ns",
            "network",
            "--manage-cgroups-mode",
            "ignore",
            "c1",
        ])
        .command
        else {
            panic!()
        };
        assert!(c.pre_dump && c.criu.ext_unix_sk && c.criu.shell_job);
        assert_eq!(
            (c.parent_path.as_deref(), c.criu.manage_cgroups_mode.as_deref(), &c.criu.empty_ns[..]),
            (Some(Path::new("../p")), Some("ignore"), &["network".to_string()][..])
        );
        // conmon's restore (podman), then go-runc's (containerd's shim).
        let Some(Command::Restore(r)) =
            with(&["restore", "--bundle", "/b", "--pid-file", "/p", "--detach", "--image-path", "/i", "--work-path", "/w", "--tcp-established", "c1"]).command
        else {
            panic!()
        };
        assert_eq!((r.bundle.as_path(), r.pid_file.as_deref(), r.detach, r.id.as_str()), (Path::new("/b"), Some(Path::new("/p")), true, "c1"));
        let Some(Command::Restore(r)) =
            with(&["restore", "-d", "--pid-file", "/p", "-b", "/b", "--no-pivot", "--no-subreaper", "--image-path", "/i", "c2"]).command
        else {
            panic!()
        };
        assert!(r.detach && r.no_pivot && r.no_subreaper && r.id == "c2");
        assert!(super::parse(["testudo", "checkpoint", "--manage-cgroups-mode", "bogus", "c1"].iter().map(|s| s.to_string()).collect()).is_err());
        let c = parse(&["testudo", "--criu", "/opt/criu", "checkpoint", "c1"]);
        assert_eq!(c.global.criu.as_deref(), Some(Path::new("/opt/criu")));
    }

    #[test]
    fn exec_keeps_the_containers_argv() {
        let Some(Command::Exec(e)) = parse(&["testudo", "exec", "-t", "c1", "sh", "-c", "ls -la", "-detach"]).command else { panic!() };
        assert_eq!(e.command, ["sh", "-c", "ls -la", "-detach"]);
        assert!(e.tty && !e.detach);
    }
}
