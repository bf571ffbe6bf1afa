//! runc's command line, declared with clap. No logic beyond argument shape lives here.
//!
//! runc parses flags with Go's `flag` package, which takes `-flag` and `--flag` alike; clients and
//! scripts written for runc use both, so `normalize` rewrites a single-dash long flag to the
//! double-dash form before clap sees it.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "testudo", about = "A minimal, hardened OCI container runtime", disable_version_flag = true)]
pub struct Cli {
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
    /// Accepted for runc compatibility; checkpointing is not supported
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
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
    /// Audit a bundle's config.json against the CIS Docker Benchmark's container items
    Check(Check),
    /// Run an untrusted build job in a hardened container, no bundle needed
    Sandbox(Sandbox),
    /// Run a bundle once, recording its syscalls, and write the seccomp allow-list they make
    Profile(Profile),
}

#[derive(Args, Debug)]
pub struct Profile {
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Where the profile goes (OCI linux.seccomp form)
    #[arg(short = 'o', long, default_value = "profile.json")]
    pub output: PathBuf,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Sandbox {
    /// The job's root filesystem (read-only)
    #[arg(long)]
    pub rootfs: PathBuf,
    /// The job's working directory, at /workspace (DIR:rw, the default, or DIR:ro)
    #[arg(long)]
    pub workspace: String,
    /// Also bind SRC read-only at DST
    #[arg(long = "ro-bind", value_name = "SRC:DST")]
    pub ro_bind: Vec<String>,
    /// Memory limit (e.g. 2G; default 2G)
    #[arg(long)]
    pub memory: Option<String>,
    /// Most processes and threads at once
    #[arg(long, default_value_t = 512)]
    pub pids: i64,
    /// CPUs (e.g. 1.5; default: a half share)
    #[arg(long)]
    pub cpus: Option<String>,
    /// Wall-clock limit in seconds: the job is killed and the exit code is 124
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Most bytes of stdout and stderr together (and of any one file): killed, exit 125
    #[arg(long = "output-limit")]
    pub output_limit: Option<String>,
    /// Size of the job's /tmp
    #[arg(long = "tmp-size", default_value = "256m")]
    pub tmp_size: String,
    /// none, or host-loopback-only (the same: a network namespace with only lo)
    #[arg(long, default_value = "none")]
    pub net: String,
    /// Seccomp: build (seccomp-profiles/build-sandbox.json), default, or a file in OCI form
    #[arg(long, default_value = "build")]
    pub profile: String,
    /// Landlock: write only beneath /workspace and /tmp (required, or best-effort)
    #[arg(long, num_args = 0..=1, default_missing_value = "required", value_parser = ["required", "best-effort"])]
    pub landlock: Option<String>,
    /// Write a JSON report of the run here
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Record the job's syscalls instead of filtering them; write the allow-list profile here
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// The job: CMD ARGS…
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct Check {
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Exit 1 when a rule of this severity or higher fails
    #[arg(long = "fail-on", default_value = "high", value_parser = ["high", "medium", "low"])]
    pub fail_on: String,
}

#[derive(Args, Debug)]
pub struct Id {
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct CreateOpts {
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master of a terminal container
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the container init's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use move mount + chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many descriptors after stdio (3 onwards) into the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Refuse to create a container that fails this audit policy (see `check`)
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Record the syscalls instead of enforcing linux.seccomp (`profile`, `sandbox --record`)
    #[arg(skip)]
    pub record: bool,
}

#[derive(Args, Debug)]
pub struct Create {
    #[command(flatten)]
    pub opts: CreateOpts,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Run {
    #[command(flatten)]
    pub opts: CreateOpts,
    /// Do not wait for the container
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// Accepted for runc compatibility
    #[arg(long = "no-subreaper", hide = true)]
    pub no_subreaper: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Kill {
    /// Signal every process of the container
    #[arg(short = 'a', long)]
    pub all: bool,
    pub id: String,
    /// Signal number or name, with or without SIG (default SIGTERM)
    pub signal: Option<String>,
}

#[derive(Args, Debug)]
pub struct Delete {
    /// Kill the container first if it is still running
    #[arg(short = 'f', long)]
    pub force: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Exec {
    /// JSON file with the process to run (OCI `process` object)
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Environment variable KEY=VALUE (repeatable)
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    #[arg(long)]
    pub cwd: Option<String>,
    /// UID[:GID]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional gid (repeatable)
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (repeatable)
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Allow exec in a paused container (the process starts once it is resumed)
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    pub id: String,
    /// Command and arguments (when no --process is given)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct List {
    #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only the ids
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SpecCmd {
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write a spec for a rootless container (user namespace, no cgroup resources)
    #[arg(long)]
    pub rootless: bool,
    /// Write a spec that passes every `check` rule
    #[arg(long, conflicts_with = "rootless")]
    pub hardened: bool,
}

#[derive(Args, Debug)]
pub struct Ps {
    #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct Update {
    /// OCI linux.resources JSON: a file, or - for stdin
    #[arg(short = 'r', long)]
    pub resources: Option<String>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Events {
    /// Print one statistics object and exit
    #[arg(long)]
    pub stats: bool,
    /// Statistics interval (e.g. 5s, 500ms)
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

/// Parse argv the way runc does. The clap command tree is built once (it is on the spawn path).
pub fn parse(args: Vec<String>) -> Result<Cli, clap::Error> {
    let mut cmd = Cli::command();
    let args = normalize(&cmd, args);
    let mut matches = cmd.try_get_matches_from_mut(args)?;
    <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut matches)
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

    fn parse(v: &[&str]) -> Cli {
        super::parse(v.iter().map(|s| s.to_string()).collect()).unwrap_or_else(|e| panic!("{v:?}: {e}"))
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
        assert_eq!(c.root, Some(PathBuf::from("/run/containerd/runc/default")));
        assert_eq!(c.log_format, "json");
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
    fn exec_keeps_the_containers_argv() {
        let Some(Command::Exec(e)) = parse(&["testudo", "exec", "-t", "c1", "sh", "-c", "ls -la", "-detach"]).command else { panic!() };
        assert_eq!(e.command, ["sh", "-c", "ls -la", "-detach"]);
        assert!(e.tty && !e.detach);
    }
}
