//! The job: created from the plan's config like `run` does, in a container directory that also
//! holds its bundle (under the root-only state root: whatever removes the container removes the
//! bundle), with the stdio of `stdio`. `watch` relays and counts its output and bounds its time:
//! the whole cgroup is killed at the timeout, at the output limit, when the caller is interrupted
//! or stops reading; then its figures are read from the cgroup, the container deleted (no process, cgroup, mount, state
//! or bundle left) and the exit code returned (`report`). If testudo itself is killed, the init's
//! die-with-parent signal takes the job with it, and `delete --force ID` removes the rest.

use std::os::fd::OwnedFd;
use std::time::Instant;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use serde_json::json;

use super::outfile::OutFile;
use super::report::{self, Reason};
use super::stdio::Streams;
use super::watch::{watch, Watched};
use super::{Place, Plan};
use crate::cgroups::Cgroup;
use crate::cli::CreateOpts;
use crate::commands::{create, Global};
use crate::container::Dir;
use crate::error::{Context, Error, Result};
use crate::linux::pidfd;
use crate::security::seccomp::recorder::{self, Answer, Recording};
use crate::security::seccomp::Watch;
use crate::spawn::prepare::StartBy;
use crate::spawn::sync::Msg;

/// Run the job; the report goes to `report` (opened by the caller, who also writes one when this
/// fails).
pub fn run(g: &Global, mut plan: Plan, report: Option<&OutFile>) -> Result<i32> {
    // Interrupting the sandbox must not leave the job running: these end it like the timeout.
    let mut ending = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        ending.add(s);
    }
    // SIGPIPE too is blocked, not left to kill us with the job running on: a closed output is
    // EPIPE on the relay, and ends the job. Blocked rather than ignored: an ignored signal stays
    // ignored across execve for the job, a blocked one is unblocked by init before it.
    let mut blocked = ending;
    blocked.add(Signal::SIGPIPE);
    // With a pty, the caller's window changes are passed on to it (`watch`).
    let mut watched = ending;
    if plan.tty {
        watched.add(Signal::SIGWINCH);
        blocked.add(Signal::SIGWINCH);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None).context("block signals")?;
    let sfd = SignalFd::with_flags(&watched, SfdFlags::SFD_CLOEXEC).context("signalfd")?;
    let mut streams = Streams::new(plan.stdin, plan.tty)?;
    if plan.no_limits {
        eprintln!("testudo: sandbox: --no-limits: the job runs without memory, pids and cpu limits");
    }
    if plan.net_host {
        eprintln!(
            "testudo: sandbox: --net host: the job shares the host's network namespace (every interface, the host's 127.0.0.1 ports and abstract unix sockets)"
        );
    }
    if let Some(kept) = &plan.groups_kept {
        eprintln!("{}", kept.warning());
    }
    let scoped = super::cgroup::with_driver(g, &plan.place);
    let g = scoped.as_ref().unwrap_or(g);
    let dir = Dir::create(&g.root, &plan.id)?;
    let given = match bundle(&dir, std::mem::take(&mut plan.config)) {
        Ok(b) => b,
        Err(e) => {
            let _ = crate::commands::delete::clean_up_creating(&dir);
            return Err(e);
        }
    };
    let opts = CreateOpts {
        bundle: given.dir.clone(),
        console_socket: None,
        pid_file: None,
        no_pivot: false,
        no_new_keyring: false,
        preserve_fds: 0,
        policy: None,
        // A report lists what the profile denied (issue 22 item 21); a recording lists nothing
        // denied (one listener per filter, and it is the recorder's). A user's report lists
        // nothing (null) for now: under a user's systemd scope in the 6.1 test VM the listing
        // hung (cause not found yet), while a user's --record works.
        watch: if plan.record.is_some() {
            Some(Watch::Record)
        } else {
            (report.is_some() && crate::container::rootless::host_root()).then_some(Watch::Denials)
        },
        sandbox: plan.sandbox,
        lifecycle: plan.lifecycle,
    };
    // Not detached with a terminal: the init sends the pty master to us, not to a console socket.
    let mut c = streams
        .hand_over(|| create::create_in(g, &opts, Some(given), dir, StartBy::Socket { detach: !plan.tty }))
        .map_err(|e| super::cgroup::explain(e, &plan.place))?;
    let pty = c.launched.pty.take();
    // Whatever happens from here, the container goes: no process, cgroup or state is left.
    let ran = streams.take_pty(pty.as_ref()).and_then(|()| supervise(&plan, &c, &sfd, &streams.relayed, pty.as_ref(), report.is_some()));
    let destroyed = c.dir.facts().and_then(|facts| crate::commands::delete::destroy(&c.dir, &facts));
    let Ran { reason, code, wall, bytes, failed, figures, recording, answer, cgroup } = ran?;
    destroyed?;
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(out) = &plan.record {
        out.write(&serde_json::to_vec_pretty(&recording.profile()).map_err(|e| Error::new(e.to_string()))?)?;
    }
    let exit = reason.exit(code);
    if let Some(out) = report {
        report::write(
            out,
            &json!({
                "exit": exit,
                "jobExit": code,
                "signal": (code > 128).then_some(code - 128),
                "reason": reason.as_str(),
                "wallSeconds": wall.as_secs_f64(),
                "cpuSeconds": figures.cpu_usec.map(|u| u as f64 / 1e6),
                "memoryPeakBytes": figures.memory_peak,
                "pidsPeak": figures.pids_peak,
                "stdoutBytes": bytes[0],
                // One pipe for both: what came from which is not known.
                "stderrBytes": (!streams.merged).then_some(bytes[1]),
                "outputMerged": streams.merged,
                // Null: not listed (recording, or a profile whose default is not an errno).
                "deniedSyscalls": matches!(answer, Some(Answer::Errno(_))).then(|| recording.denied()),
                // Where the limits were, or that there were none (`--no-limits`).
                "cgroup": cgroup,
                "limits": !plan.no_limits,
                "confinement": plan.confinement,
            }),
        )?;
    }
    Ok(exit)
}

/// How the job ran, read before its container is destroyed.
struct Ran {
    reason: Reason,
    code: i32,
    wall: std::time::Duration,
    bytes: [u64; 2],
    failed: Option<Error>,
    figures: report::Figures,
    recording: Recording,
    answer: Option<Answer>,
    /// Where the limits were; None with `--no-limits`.
    cgroup: Option<std::path::PathBuf>,
}

/// Start the job, take the notify fd of a watched filter, and watch the job to its end.
/// `figures`: whether a report will show the cgroup's figures (read only then).
fn supervise(plan: &Plan, c: &create::Created, sfd: &SignalFd, pipes: &[(OwnedFd, i32)], pty: Option<&OwnedFd>, figures: bool) -> Result<Ran> {
    let started = Instant::now();
    c.launched.chan.send(&Msg::Start)?;
    // EOF: the job's process was executed. Recording, the job first says where its notify fd
    // will be, and its execve then waits for our answer: the watch takes over from there.
    let notify = match c.launched.chan.recv()? {
        None => None,
        Some(Msg::RecorderAt(n)) => {
            // Under the reaper the filter is on the job's process, the init's one child.
            let job = if plan.lifecycle.reaper { job_process(c.launched.pid)? } else { c.launched.pidfd.try_clone().context("dup pidfd")? };
            Some(recorder::take(&job, n)?)
        }
        Some(msg) => {
            return Err(match msg {
                Msg::Fail(e) => e,
                other => Error::new(format!("sync socket: unexpected {other:?} after start")),
            });
        }
    };
    // None only where the plan chose none (a user's --no-limits): the job's init is pid 1 of its
    // pid namespace, and killing it kills every process of the job.
    let cgroup = c.prepared.cgroup.as_ref().map(|cg| Cgroup::at(cg.path.clone()));
    if cgroup.is_none() && plan.place != Place::Without {
        return Err(Error::new("sandbox: the job has no cgroup, and its limits need one"));
    }
    let answer = c.prepared.seccomp.as_ref().and_then(|p| p.watch);
    let mut recording = Recording::new(answer.unwrap_or(Answer::Continue));
    let watched = Watched { job: &c.launched.pidfd, cgroup: cgroup.as_ref(), signals: sfd, notify: notify.as_ref().map(|n| (n, &c.launched.chan)), pty };
    let (reason, bytes, failed) = watch(plan, &watched, pipes, started, &mut recording)?;
    let pidfd::Exit(code) = pidfd::wait(&c.launched.pidfd)?;
    let wall = started.elapsed();
    let reason = match reason {
        Reason::Exited if cgroup.as_ref().and_then(Cgroup::oom_kills).is_some_and(|n| n > 0) => Reason::Oom,
        // RLIMIT_FSIZE is set only with an output limit; past it the writer gets SIGXFSZ.
        Reason::Exited if plan.output_limit.is_some() && code == 128 + libc::SIGXFSZ => Reason::FileSizeLimit,
        // The reader went away while the job was ending on its own (`echo hi | head -c 1`): the
        // kill came too late to be what ended it.
        Reason::OutputClosed if code != 128 + libc::SIGKILL => Reason::Exited,
        r => r,
    };
    let figures = report::figures(cgroup.as_ref().filter(|_| figures));
    Ok(Ran { reason, code, wall, bytes, failed, figures, recording, answer, cgroup: cgroup.map(|cg| cg.path) })
}

/// The job's bundle: `bundle/` in its container directory (what `sweep` knows a sandbox by), its
/// spec handed to create in memory. Its config.json is the container directory's, which create
/// saves: the text is not written here only to be read back and parsed again.
fn bundle(dir: &Dir, config: serde_json::Value) -> Result<crate::spec::Bundle> {
    use std::os::unix::fs::DirBuilderExt;
    let path = dir.file("bundle");
    std::fs::DirBuilder::new().mode(0o700).create(&path).with_context(|| format!("sandbox bundle {path:?}"))?;
    let bytes = serde_json::to_vec(&config).map_err(|e| Error::new(format!("sandbox config: {e}")))?;
    let spec = serde_json::from_value(config).map_err(|e| Error::new(format!("sandbox config: {e}")))?;
    crate::spec::given(path, bytes, spec)
}

/// The job's process under the reaper: the init's only child (`spawn::reaper`), which the init
/// does not reap, so its pid is not reused, before it has exited.
fn job_process(init: i32) -> Result<OwnedFd> {
    let path = format!("/proc/{init}/task/{init}/children");
    let text = std::fs::read_to_string(&path).with_context(|| format!("recorder: read {path}"))?;
    let pid = text.split_whitespace().next().and_then(|p| p.parse().ok()).ok_or_else(|| Error::new(format!("recorder: {path}: the init has no child")))?;
    pidfd::open(pid)
}
