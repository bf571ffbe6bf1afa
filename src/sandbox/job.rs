//! The job: created from the plan's config like `run` does, in a container directory that also
//! holds its bundle (under the root-only state root: whatever removes the container removes the
//! bundle). Its stdout and stderr are relayed through pipes (so their bytes are counted; one pipe
//! when the caller's are one file, so `2>&1` keeps its order), its time bounded, the whole cgroup
//! killed at the timeout, at the output limit, when the caller is interrupted or stops reading;
//! then its figures read from the cgroup, the container deleted (no process, cgroup, mount, state
//! or bundle left) and the exit code returned (`report`). If testudo itself is killed, the init's
//! die-with-parent signal takes the job with it, and `delete --force ID` removes the rest.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use serde_json::json;

use super::outfile::OutFile;
use super::report::{self, Reason};
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
use crate::spawn::sync::{Channel, Msg};

/// Run the job; the report goes to `report` (opened by the caller, who also writes one when this
/// fails).
pub fn run(g: &Global, plan: Plan, report: Option<&OutFile>) -> Result<i32> {
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
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None).context("block signals")?;
    let sfd = SignalFd::with_flags(&ending, SfdFlags::SFD_CLOEXEC).context("signalfd")?;
    // Before the container's directory exists: a refusal here leaves nothing to clean.
    let stdin = job_stdin(plan.stdin)?;
    if plan.no_limits {
        eprintln!("testudo: sandbox: --no-limits: the job runs without memory, pids and cpu limits");
    }
    let scoped = super::cgroup::with_driver(g, &plan.place);
    let g = scoped.as_ref().unwrap_or(g);
    let dir = Dir::create(&g.root, &plan.id)?;
    let bundle = dir.file("bundle");
    if let Err(e) = write_bundle(&bundle, &plan.config) {
        let _ = crate::commands::delete::clean_up_creating(&dir);
        return Err(e);
    }
    let opts = CreateOpts {
        bundle,
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
    // The caller's 1 and 2 one file (`2>&1`): one pipe, or the order of the lines would be lost.
    let merged = same_file(1, 2);
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("stdout pipe")?;
    let err = if merged { None } else { Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("stderr pipe")?) };
    let err_w = err.as_ref().map_or(&out_w, |(_, w)| w);
    let c = with_stdio([&stdin, &out_w, err_w], || create::create_in(g, &opts, dir, StartBy::Socket { detach: true }))
        .map_err(|e| super::cgroup::explain(e, &plan.place))?;
    let mut pipes = vec![(out_r, 1)];
    pipes.extend(err.map(|(r, _)| (r, 2)));
    drop(out_w);
    // Whatever happens from here, the container goes: no process, cgroup or state is left.
    let ran = supervise(&plan, &c, &sfd, &pipes);
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
                "stderrBytes": (!merged).then_some(bytes[1]),
                "outputMerged": merged,
                // Null: not listed (recording, or a profile whose default is not an errno).
                "deniedSyscalls": matches!(answer, Some(Answer::Errno(_))).then(|| recording.denied()),
                // Where the limits were, or that there were none (`--no-limits`).
                "cgroup": cgroup,
                "limits": !plan.no_limits,
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
fn supervise(plan: &Plan, c: &create::Created, sfd: &SignalFd, pipes: &[(OwnedFd, i32)]) -> Result<Ran> {
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
    let watched = Watched { job: &c.launched.pidfd, cgroup: cgroup.as_ref(), signals: sfd, notify: notify.as_ref().map(|n| (n, &c.launched.chan)) };
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
    let figures = report::figures(cgroup.as_ref());
    Ok(Ran { reason, code, wall, bytes, failed, figures, recording, answer, cgroup: cgroup.map(|cg| cg.path) })
}

fn write_bundle(bundle: &std::path::Path, config: &serde_json::Value) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(bundle).with_context(|| format!("sandbox bundle {bundle:?}"))?;
    let text = serde_json::to_vec_pretty(config).map_err(|e| Error::new(format!("sandbox config: {e}")))?;
    std::fs::write(bundle.join("config.json"), text).context("sandbox config.json")
}

/// The job's process under the reaper: the init's only child (`spawn::reaper`), which the init
/// does not reap, so its pid is not reused, before it has exited.
fn job_process(init: i32) -> Result<OwnedFd> {
    let path = format!("/proc/{init}/task/{init}/children");
    let text = std::fs::read_to_string(&path).with_context(|| format!("recorder: read {path}"))?;
    let pid = text.split_whitespace().next().and_then(|p| p.parse().ok()).ok_or_else(|| Error::new(format!("recorder: {path}: the init has no child")))?;
    pidfd::open(pid)
}

/// Whether fds `a` and `b` are one open file: the same inode, and the same status flags.
fn same_file(a: i32, b: i32) -> bool {
    // SAFETY: our own stdio numbers, borrowed for the calls only.
    let (a, b) = unsafe { (BorrowedFd::borrow_raw(a), BorrowedFd::borrow_raw(b)) };
    let flags = |fd| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).ok();
    match (nix::sys::stat::fstat(a), nix::sys::stat::fstat(b)) {
        (Ok(x), Ok(y)) => (x.st_dev, x.st_ino) == (y.st_dev, y.st_ino) && flags(a) == flags(b),
        _ => false,
    }
}

/// The job's stdin: /dev/null, or with `--stdin` the caller's, which must not be a terminal. The
/// job never holds the caller's terminal: with it, it could read what the caller types and, with
/// TIOCSTI, type into the caller's shell (CVE-2017-5226 class).
fn job_stdin(callers: bool) -> Result<OwnedFd> {
    if !callers {
        return nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
            .context("sandbox: open /dev/null for the job's stdin");
    }
    if nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        return Err(Error::new("--stdin: standard input is a terminal, which the job never gets: pipe the input in (… | testudo sandbox --stdin …)"));
    }
    dup_cloexec(0)
}

/// Run `f` with fds 0, 1 and 2 replaced by `fds` (the container inherits them), then put the
/// caller's back (closed again where the caller had none: CI may run us without stdin).
fn with_stdio<T>(fds: [&OwnedFd; 3], f: impl FnOnce() -> Result<T>) -> Result<T> {
    let mut saved = Vec::with_capacity(3);
    for fd in 0..3 {
        saved.push(match dup_cloexec(fd) {
            Err(e) if e.errno() == Some(Errno::EBADF) => None,
            other => Some(other?),
        });
    }
    for (to, from) in fds.iter().enumerate() {
        // SAFETY: dup2 onto our own stdio numbers; the old ones are saved above.
        if unsafe { libc::dup2(from.as_raw_fd(), to as i32) } < 0 {
            return Err(crate::error::last_os("sandbox: redirect stdio"));
        }
    }
    let r = f();
    for (to, from) in saved.iter().enumerate() {
        match from {
            // SAFETY: as above, putting the saved descriptors back.
            Some(from) => unsafe { libc::dup2(from.as_raw_fd(), to as i32) },
            // SAFETY: closing our own stdio number, which the caller did not have open.
            None => unsafe { libc::close(to as i32) },
        };
    }
    r
}

fn dup_cloexec(fd: i32) -> Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on one of our stdio fds returns a new fd nothing else owns.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(crate::error::last_os(format!("dup fd {fd}")));
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { crate::linux::procfs::own(n) })
}

/// What the watch waits on: the job's init, its cgroup, our signals and, recording, the notify fd
/// with the sync socket (on which a failed execve still reports).
struct Watched<'a> {
    job: &'a OwnedFd,
    /// None: the job has no cgroup, and is killed with its init (pid 1 of its pid namespace).
    cgroup: Option<&'a Cgroup>,
    signals: &'a SignalFd,
    notify: Option<(&'a OwnedFd, &'a Channel)>,
}

/// How the job is being ended: the first reason wins; the cgroup is killed at once, or with
/// `--kill-after` at the timeout the job gets SIGTERM and the cgroup is killed after the grace.
struct Ending<'a> {
    w: &'a Watched<'a>,
    reason: Reason,
    kill_at: Option<Instant>,
}

impl Ending<'_> {
    fn now(&mut self, why: Reason) {
        if self.reason == Reason::Exited {
            self.reason = why;
        }
        self.kill_at = None;
        match self.w.cgroup {
            Some(cg) => {
                let _ = cg.kill();
            }
            // The kernel kills every other process of a pid namespace whose init dies.
            None => {
                let _ = pidfd::send_signal(self.w.job, Signal::SIGKILL);
            }
        }
    }

    fn timeout(&mut self, grace: Option<Duration>) {
        match grace {
            Some(g) if self.reason == Reason::Exited => {
                self.reason = Reason::Timeout;
                self.kill_at = Some(Instant::now() + g);
                // To the init: the reaper forwards it to the job.
                let _ = pidfd::send_signal(self.w.job, Signal::SIGTERM);
            }
            _ => self.now(Reason::Timeout),
        }
    }
}

/// Relay the job's output until it has exited and its pipes are closed; end the job at the
/// deadline, at the output limit, on SIGINT/SIGTERM/SIGHUP or when its output finds the caller's
/// stdout or stderr closed; answer the recorder's notifications. Returns why it ended, the bytes relayed to
/// stdout and to stderr, and an error the init reported after the recorder's filter went on.
fn watch(plan: &Plan, w: &Watched, pipes: &[(OwnedFd, i32)], started: Instant, rec: &mut Recording) -> Result<(Reason, [u64; 2], Option<Error>)> {
    let mut notify_open = w.notify.is_some();
    let mut chan_open = w.notify.is_some();
    let mut failed = None;
    let mut end = Ending { w, reason: Reason::Exited, kill_at: None };
    let mut bytes = [0u64; 2];
    let mut open = vec![true; pipes.len()];
    // The caller's stdout and stderr, and whether someone still reads them. As in a shell
    // pipeline, a job learns that nobody does when it next writes: a quiet job is not killed
    // for what it may never write (`echo hi | head -c 1` exits 0, always).
    // SAFETY: our own stdio numbers, which live for the whole process.
    let sinks = unsafe { [BorrowedFd::borrow_raw(1), BorrowedFd::borrow_raw(2)] };
    let mut sink_open = [true, true];
    let mut exited = false;
    let mut buf = vec![0u8; 64 << 10];
    while !exited || open.iter().any(|o| *o) {
        let now = Instant::now();
        let deadline = plan.timeout.map(|t| started + t).filter(|_| end.reason == Reason::Exited);
        if deadline.is_some_and(|d| now >= d) {
            end.timeout(plan.kill_after);
        }
        if end.kill_at.is_some_and(|k| now >= k) {
            end.now(Reason::Timeout);
        }
        let paused = rec.paused_until(now);
        let next = [plan.timeout.map(|t| started + t).filter(|_| end.reason == Reason::Exited), end.kill_at, paused].into_iter().flatten().min();
        let wait = match next {
            Some(at) => PollTimeout::try_from(at.saturating_duration_since(now).as_millis().clamp(1, 60_000) as i32).unwrap_or(PollTimeout::MAX),
            None if end.reason != Reason::Exited => PollTimeout::from(1000u16),
            None => PollTimeout::NONE,
        };
        let idle = w.signals.as_fd();
        let slot = |fd, events, live| slot(fd, idle, events, live);
        let mut fds = vec![PollFd::new(w.job.as_fd(), PollFlags::POLLIN), PollFd::new(w.signals.as_fd(), PollFlags::POLLIN)];
        fds.extend(pipes.iter().zip(&open).map(|((p, _), o)| slot(p.as_fd(), PollFlags::POLLIN, *o)));
        let at = fds.len();
        if let Some((n, chan)) = w.notify {
            fds.push(slot(n.as_fd(), PollFlags::POLLIN, notify_open && paused.is_none()));
            fds.push(slot(chan.as_fd(), PollFlags::POLLIN, chan_open));
        }
        match poll(&mut fds, wait) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("sandbox: poll", e)),
            Ok(_) => {}
        }
        let revents = |i: usize| fds.get(i).and_then(|f| f.revents()).unwrap_or(PollFlags::empty());
        let ready = |i: usize| !revents(i).is_empty();
        if let (Some((n, _)), true) = (w.notify, ready(at) && notify_open && paused.is_none()) {
            notify_open = rec.answer(n)? && !revents(at).contains(PollFlags::POLLHUP);
        }
        if let (Some((_, chan)), true) = (w.notify, ready(at + 1) && chan_open) {
            match chan.recv()? {
                None => chan_open = false,
                Some(Msg::Fail(e)) => failed = Some(e),
                Some(other) => return Err(Error::new(format!("sync socket: unexpected {other:?} after start"))),
            }
        }
        exited |= ready(0);
        if ready(1) {
            if let Ok(Some(info)) = w.signals.read_signal() {
                end.now(Reason::Interrupted(info.ssi_signo as i32));
            }
        }
        for (i, (pipe, to)) in pipes.iter().enumerate() {
            if !ready(2 + i) || !open[i] {
                continue;
            }
            let k = (*to - 1) as usize;
            match nix::unistd::read(pipe, &mut buf) {
                Ok(0) | Err(_) => open[i] = false,
                Ok(n) => {
                    bytes[k] += n as u64;
                    let total = bytes[0] + bytes[1];
                    let keep = plan.output_limit.map_or(n as u64, |l| (n as u64).min(l.saturating_sub(total - n as u64)));
                    if sink_open[k] && write_all(sinks[k], &buf[..keep as usize]).is_err() {
                        sink_open[k] = false;
                        end.now(Reason::OutputClosed);
                    }
                    if plan.output_limit.is_some_and(|l| total > l) {
                        end.now(Reason::OutputLimit);
                    }
                }
            }
        }
    }
    Ok((end.reason, bytes, failed))
}

/// What is done with stays in its slot as `idle` (the signalfd) asking for nothing, which reports
/// nothing: a drained pipe would report POLLHUP for ever, and the loop would spin.
fn slot<'a>(fd: BorrowedFd<'a>, idle: BorrowedFd<'a>, events: PollFlags, live: bool) -> PollFd<'a> {
    if live {
        PollFd::new(fd, events)
    } else {
        PollFd::new(idle, PollFlags::empty())
    }
}

/// Write it all; an error only when nobody reads any more (EPIPE, ECONNRESET). A caller's
/// non-blocking fd is waited on, not dropped from; another failure loses this chunk only.
fn write_all(to: BorrowedFd, mut data: &[u8]) -> std::result::Result<(), Errno> {
    while !data.is_empty() {
        match nix::unistd::write(to, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                let _ = poll(&mut [PollFd::new(to, PollFlags::POLLOUT)], PollTimeout::NONE);
            }
            Err(e @ (Errno::EPIPE | Errno::ECONNRESET)) => return Err(e),
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}
