//! Watching a running job: one poll loop over its init's pidfd, testudo's signalfd, the job's
//! output and, recording, the seccomp notify fd. It relays and counts the output, and ends the
//! whole job at the deadline, at the output limit, on SIGINT/SIGTERM/SIGHUP or when the caller
//! stops reading; the job's output ends when its last writer is gone.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;

use super::report::Reason;
use super::Plan;
use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use crate::linux::pidfd;
use crate::security::seccomp::recorder::Recording;
use crate::spawn::sync::{Channel, Msg};

/// What the watch waits on: the job's init, its cgroup, our signals and, recording, the notify fd
/// with the sync socket (on which a failed execve still reports).
pub struct Watched<'a> {
    pub job: &'a OwnedFd,
    /// None: the job has no cgroup, and is killed with its init (pid 1 of its pid namespace).
    pub cgroup: Option<&'a Cgroup>,
    pub signals: &'a SignalFd,
    pub notify: Option<(&'a OwnedFd, &'a Channel)>,
    /// `--tty`: the job's pty master, which gets the caller's window size on SIGWINCH.
    pub pty: Option<&'a OwnedFd>,
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
pub fn watch(plan: &Plan, w: &Watched, pipes: &[(OwnedFd, i32)], started: Instant, rec: &mut Recording) -> Result<(Reason, [u64; 2], Option<Error>)> {
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
            match (w.signals.read_signal(), w.pty) {
                (Ok(Some(info)), Some(pty)) if info.ssi_signo == libc::SIGWINCH as u32 => {
                    super::stdio::callers_size(pty);
                }
                (Ok(Some(info)), _) => end.now(Reason::Interrupted(info.ssi_signo as i32)),
                _ => {}
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
