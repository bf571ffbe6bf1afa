//! A foreground `run` or `exec`: wait for the container's process, forwarding the caller's
//! signals to it and, for a terminal without --console-socket, relaying its pty master to and
//! from the caller's stdio. The container only ever holds the slave of its own new pty, in a
//! session of its own (`linux::tty::make_controlling`), never the caller's terminal: TIOCSTI on
//! it types into its own pty, not into the caller's shell (CVE-2016-7545, CVE-2017-5226 class).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios;

use crate::error::{Context, Error, Result};
use crate::linux::{pidfd, tty};

const FORWARDED: &[Signal] =
    &[Signal::SIGHUP, Signal::SIGINT, Signal::SIGQUIT, Signal::SIGTERM, Signal::SIGUSR1, Signal::SIGUSR2, Signal::SIGWINCH, Signal::SIGCONT, Signal::SIGALRM];

/// Block the signals `wait` forwards, so none meant for the container is lost or kills us first;
/// the container's process resets its mask right before execve (`spawn::finish`).
pub fn block_signals() -> Result<SigSet> {
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(*s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None).context("block signals")?;
    Ok(mask)
}

/// Wait for the process behind `pidfd_` (signals in `mask` forwarded, `pty` relayed); its exit
/// code, or 128 + the signal that ended it.
pub fn wait(pidfd_: &OwnedFd, pty: Option<&OwnedFd>, mask: &SigSet) -> Result<i32> {
    let sfd = SignalFd::with_flags(mask, SfdFlags::SFD_CLOEXEC).context("signalfd")?;
    let stdin = std::io::stdin();
    let _raw = match pty {
        Some(m) => Some(RawMode::enter(stdin.as_fd(), m)?),
        None => None,
    };
    let mut stdin_open = pty.is_some();
    let mut buf = [0u8; 8192];
    loop {
        let mut fds = vec![PollFd::new(pidfd_.as_fd(), PollFlags::POLLIN), PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = pty {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll", e)),
            Ok(_) => {}
        }
        let ready = |i: usize| fds.get(i).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        let (exited, signalled, pty_ready, stdin_ready) = (ready(0), ready(1), ready(2), ready(3));
        if signalled {
            if let Ok(Some(info)) = sfd.read_signal() {
                let sig = Signal::try_from(info.ssi_signo as i32).unwrap_or(Signal::SIGTERM);
                if sig == Signal::SIGWINCH {
                    if let Some(m) = pty {
                        tty::copy_size(stdin.as_fd(), m);
                    }
                } else {
                    let _ = pidfd::send_signal(pidfd_, sig);
                }
            }
        }
        if let (Some(m), true) = (pty, pty_ready) {
            if !relay(m.as_fd(), std::io::stdout().as_fd(), &mut buf) && exited {
                break;
            }
        }
        if let (Some(m), true) = (pty, stdin_ready) {
            stdin_open = relay(stdin.as_fd(), m.as_fd(), &mut buf);
        }
        if exited && !pty_ready {
            break;
        }
    }
    if let Some(m) = pty {
        // Drain what the container wrote before it exited.
        while relay(m.as_fd(), std::io::stdout().as_fd(), &mut buf) {}
    }
    Ok(pidfd::wait(pidfd_)?.0)
}

/// Copy one chunk; false at EOF or error (a pty master reads EIO once the slave is gone).
fn relay(from: BorrowedFd, to: BorrowedFd, buf: &mut [u8]) -> bool {
    let flags = nix::fcntl::fcntl(from, nix::fcntl::FcntlArg::F_GETFL).unwrap_or(0);
    let _ = nix::fcntl::fcntl(from, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK));
    let n = nix::unistd::read(from, buf);
    let _ = nix::fcntl::fcntl(from, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::from_bits_truncate(flags)));
    match n {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let mut done = 0;
            while done < n {
                match nix::unistd::write(to, &buf[done..n]) {
                    Ok(w) => done += w,
                    Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
                    Err(_) => return false,
                }
            }
            true
        }
    }
}

/// The caller's terminal in raw mode while it drives the container's pty; restored on drop.
struct RawMode<'a> {
    fd: BorrowedFd<'a>,
    saved: Option<termios::Termios>,
}

impl<'a> RawMode<'a> {
    fn enter(fd: BorrowedFd<'a>, master: &OwnedFd) -> Result<RawMode<'a>> {
        tty::copy_size(fd, master);
        let saved = termios::tcgetattr(fd).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            termios::tcsetattr(fd, termios::SetArg::TCSANOW, &raw).context("raw terminal")?;
        }
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(self.fd, termios::SetArg::TCSANOW, t);
        }
    }
}
