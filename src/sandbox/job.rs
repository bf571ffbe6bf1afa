//! The job: created from the plan's config like `run` does, its stdout and stderr relayed through
//! pipes (so their bytes are counted), its time bounded, the whole cgroup killed at the timeout,
//! at the output limit or when the caller is interrupted; then its figures read from the cgroup,
//! the container deleted (no process, cgroup, mount or state left) and the exit code returned:
//! the job's own, 124 at the timeout and 137 after an OOM kill (as timeout(1) and shells say),
//! 125 at the output limit.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use serde_json::json;

use super::Plan;
use crate::cgroups::Cgroup;
use crate::cli::CreateOpts;
use crate::commands::{create, Global};
use crate::error::{Context, Error, Result};
use crate::linux::pidfd;
use crate::security::seccomp::recorder::{self, Recording};
use crate::spawn::prepare::StartBy;
use crate::spawn::sync::{Channel, Msg};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reason {
    Exited,
    Timeout,
    OutputLimit,
    Oom,
    Interrupted,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Exited => "exited",
            Reason::Timeout => "timeout",
            Reason::OutputLimit => "output-limit",
            Reason::Oom => "oom",
            Reason::Interrupted => "interrupted",
        }
    }
}

/// The bundle directory, removed however the job ends.
struct TempBundle(std::path::PathBuf);

impl Drop for TempBundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(g: &Global, plan: Plan) -> Result<i32> {
    let id = plan.id.clone();
    let dir = std::env::temp_dir().join(format!("testudo-{id}-{}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir).with_context(|| format!("sandbox bundle {dir:?}"))?;
    let bundle = TempBundle(dir);
    let text = serde_json::to_vec_pretty(&plan.config).map_err(|e| Error::new(format!("sandbox config: {e}")))?;
    std::fs::write(bundle.0.join("config.json"), text).context("sandbox config.json")?;
    let opts = CreateOpts {
        bundle: bundle.0.clone(),
        console_socket: None,
        pid_file: None,
        no_pivot: false,
        no_new_keyring: false,
        preserve_fds: 0,
        policy: None,
        record: plan.record.is_some(),
        lifecycle: Default::default(),
    };
    // Interrupting the sandbox must not leave the job running: these end it like the timeout.
    let mut mask = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        mask.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None).context("block signals")?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC).context("signalfd")?;
    let (out_r, out_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("stdout pipe")?;
    let (err_r, err_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("stderr pipe")?;
    let c = with_stdio(&out_w, &err_w, || create::create(g, &opts, &id, StartBy::Socket { detach: true }))?;
    drop((out_w, err_w));
    let started = Instant::now();
    c.launched.chan.send(&Msg::Start)?;
    // EOF: the job's process was executed. Recording, the init first says where its notify fd
    // will be, and its execve then waits for our answer: the watch takes over from there.
    let notify = match c.launched.chan.recv()? {
        None => None,
        Some(Msg::RecorderAt(n)) => Some(recorder::take(&c.launched.pidfd, n)?),
        Some(msg) => {
            let _ = pidfd::wait(&c.launched.pidfd);
            let facts = c.dir.facts()?;
            crate::commands::delete::destroy(&c.dir, &facts)?;
            return Err(match msg {
                Msg::Fail(e) => e,
                other => Error::new(format!("sync socket: unexpected {other:?} after start")),
            });
        }
    };
    // Its limits need one: create refused them already where no cgroup could be had (rootless).
    let cgroup = Cgroup::at(c.prepared.cgroup.as_ref().map(|cg| cg.path.clone()).ok_or_else(|| Error::new("sandbox: the job has no cgroup"))?);
    let mut recording = Recording::default();
    let watched = Watched { job: &c.launched.pidfd, cgroup: &cgroup, signals: &sfd, notify: notify.as_ref().map(|n| (n, &c.launched.chan)) };
    let (reason, bytes, failed) = watch(&plan, &watched, [out_r, err_r], started, &mut recording)?;
    let pidfd::Exit(code) = pidfd::wait(&c.launched.pidfd)?;
    let wall = started.elapsed();
    let reason = if reason == Reason::Exited && cgroup.oom_kills().is_some_and(|n| n > 0) { Reason::Oom } else { reason };
    let figures = figures(&cgroup);
    let facts = c.dir.facts()?;
    crate::commands::delete::destroy(&c.dir, &facts)?;
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(path) = &plan.record {
        let text = serde_json::to_vec_pretty(&recording.profile()).map_err(|e| Error::new(e.to_string()))?;
        std::fs::write(path, text).with_context(|| format!("profile {path:?}"))?;
    }
    let exit = match reason {
        Reason::Exited => code,
        Reason::Timeout => 124,
        Reason::OutputLimit => 125,
        Reason::Oom => 137,
        Reason::Interrupted => code.max(128 + 15),
    };
    if let Some(path) = &plan.report {
        let report = json!({
            "exit": exit,
            "jobExit": code,
            "signal": (code > 128).then_some(code - 128),
            "reason": reason.as_str(),
            "wallSeconds": wall.as_secs_f64(),
            "cpuSeconds": figures.cpu_usec.map(|u| u as f64 / 1e6),
            "memoryPeakBytes": figures.memory_peak,
            "pidsPeak": figures.pids_peak,
            "stdoutBytes": bytes[0],
            "stderrBytes": bytes[1],
        });
        std::fs::write(path, serde_json::to_vec_pretty(&report).map_err(|e| Error::new(e.to_string()))?).with_context(|| format!("--report {path:?}"))?;
    }
    Ok(exit)
}

/// Run `f` with fds 1 and 2 replaced by the pipes' write ends (the container inherits them),
/// then put the caller's back.
fn with_stdio<T>(out: &OwnedFd, err: &OwnedFd, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let saved = [dup_cloexec(1)?, dup_cloexec(2)?];
    for (from, to) in [(out.as_raw_fd(), 1), (err.as_raw_fd(), 2)] {
        // SAFETY: dup2 onto our own stdio numbers; the old ones are saved above.
        if unsafe { libc::dup2(from, to) } < 0 {
            return Err(crate::error::last_os("sandbox: redirect stdio"));
        }
    }
    let r = f();
    for (from, to) in [(saved[0].as_raw_fd(), 1), (saved[1].as_raw_fd(), 2)] {
        // SAFETY: as above, putting the saved descriptors back.
        unsafe { libc::dup2(from, to) };
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
    cgroup: &'a Cgroup,
    signals: &'a SignalFd,
    notify: Option<(&'a OwnedFd, &'a Channel)>,
}

/// Relay the job's output until it has exited and its pipes are closed; kill the cgroup at the
/// deadline, at the output limit or on SIGINT/SIGTERM/SIGHUP; answer the recorder's
/// notifications. Returns why it ended, the bytes of stdout and stderr, and an error the init
/// reported after the recorder's filter went on.
fn watch(plan: &Plan, w: &Watched, pipes: [OwnedFd; 2], started: Instant, rec: &mut Recording) -> Result<(Reason, [u64; 2], Option<Error>)> {
    let (job, cgroup, sfd) = (w.job, w.cgroup, w.signals);
    let mut notify_open = w.notify.is_some();
    let mut chan_open = w.notify.is_some();
    let mut failed = None;
    let mut reason = Reason::Exited;
    let mut bytes = [0u64; 2];
    let mut open = [true, true];
    let mut exited = false;
    let mut buf = vec![0u8; 64 << 10];
    let kill = |why: Reason, reason: &mut Reason| {
        if *reason == Reason::Exited {
            *reason = why;
            let _ = cgroup.kill();
        }
    };
    while !exited || open.iter().any(|o| *o) {
        let left = plan.timeout.map(|t| t.saturating_sub(started.elapsed()));
        if left == Some(Duration::ZERO) {
            kill(Reason::Timeout, &mut reason);
        }
        let mut fds = vec![PollFd::new(job.as_fd(), PollFlags::POLLIN), PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        for (p, o) in pipes.iter().zip(open) {
            fds.push(PollFd::new(p.as_fd(), if o { PollFlags::POLLIN } else { PollFlags::empty() }));
        }
        if let Some((n, chan)) = w.notify {
            fds.push(PollFd::new(n.as_fd(), if notify_open { PollFlags::POLLIN } else { PollFlags::empty() }));
            fds.push(PollFd::new(chan.as_fd(), if chan_open { PollFlags::POLLIN } else { PollFlags::empty() }));
        }
        let wait = match (left, reason) {
            (Some(l), Reason::Exited) => PollTimeout::try_from(l.as_millis().clamp(1, 60_000) as i32).unwrap_or(PollTimeout::MAX),
            _ => PollTimeout::from(1000u16),
        };
        match poll(&mut fds, wait) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("sandbox: poll", e)),
            Ok(_) => {}
        }
        let ready = |i: usize| fds.get(i).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        let (job_done, signalled, out_ready, err_ready) = (ready(0), ready(1), ready(2), ready(3));
        if let (Some((n, _)), true) = (w.notify, ready(4) && notify_open) {
            let hup = fds.get(4).and_then(|f| f.revents()).is_some_and(|r| r.contains(PollFlags::POLLHUP));
            notify_open = rec.answer(n)? && !hup;
        }
        if let (Some((_, chan)), true) = (w.notify, ready(5) && chan_open) {
            match chan.recv()? {
                None => chan_open = false,
                Some(Msg::Fail(e)) => failed = Some(e),
                Some(other) => return Err(Error::new(format!("sync socket: unexpected {other:?} after start"))),
            }
        }
        exited |= job_done;
        if signalled {
            let _ = sfd.read_signal();
            kill(Reason::Interrupted, &mut reason);
        }
        for (i, r) in [out_ready, err_ready].into_iter().enumerate() {
            if !r || !open[i] {
                continue;
            }
            match nix::unistd::read(&pipes[i], &mut buf) {
                Ok(0) | Err(_) => open[i] = false,
                Ok(n) => {
                    bytes[i] += n as u64;
                    let total = bytes[0] + bytes[1];
                    let keep = plan.output_limit.map_or(n as u64, |l| (n as u64).min(l.saturating_sub(total - n as u64)));
                    write_all(if i == 0 { 1 } else { 2 }, &buf[..keep as usize]);
                    if plan.output_limit.is_some_and(|l| total > l) {
                        kill(Reason::OutputLimit, &mut reason);
                    }
                }
            }
        }
    }
    Ok((reason, bytes, failed))
}

fn write_all(fd: i32, mut data: &[u8]) {
    // SAFETY: our own stdio fd, which lives for the whole process.
    let to = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    while !data.is_empty() {
        match nix::unistd::write(to, data) {
            Ok(n) => data = &data[n..],
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

struct Figures {
    cpu_usec: Option<u64>,
    memory_peak: Option<u64>,
    pids_peak: Option<u64>,
}

/// CPU time, peak memory and peak pids from the v2 files, or the v1 ones on a hybrid host.
fn figures(cg: &Cgroup) -> Figures {
    let v1 = |ctrl: &str, file: &str| cg.legacy().dir(ctrl).and_then(|d| std::fs::read_to_string(d.join(file)).ok()).and_then(|s| s.trim().parse::<u64>().ok());
    let v2 = |file: &str| cg.read(file).ok().and_then(|s| s.trim().parse::<u64>().ok());
    Figures {
        cpu_usec: cg.keyed("cpu.stat", "usage_usec").or_else(|| v1("cpuacct", "cpuacct.usage").map(|ns| ns / 1000)),
        memory_peak: v2("memory.peak").or_else(|| v1("memory", "memory.max_usage_in_bytes")),
        pids_peak: v2("pids.peak"),
    }
}
