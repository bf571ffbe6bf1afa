//! OCI hooks: run one hook with the container state on stdin, its own argv and env, bounded by its
//! timeout. Who calls which hook, where, is decided by the spawn path and `delete`:
//! prestart/createRuntime in the runtime's namespaces (P0, before pivot_root), createContainer in
//! the container's namespaces before pivot_root and startContainer after `start` (both by init),
//! poststart by `start` (a failure fails it, runtime spec 1.3), poststop by `delete`.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use oci_spec::runtime::Hook;

use crate::error::{Context, Error, Result};
use crate::linux::pidfd;

pub fn run_all(kind: &str, hooks: Option<&Vec<Hook>>, state: &[u8]) -> Result<()> {
    run_all_env(kind, hooks, state, None)
}

/// `run_all`, where a hook without `env` gets `default_env` (startContainer: the container
/// process's, as runc's init has by then) instead of the runtime's own environment.
pub fn run_all_env(kind: &str, hooks: Option<&Vec<Hook>>, state: &[u8], default_env: Option<&Vec<String>>) -> Result<()> {
    for (i, hook) in hooks.into_iter().flatten().enumerate() {
        run(hook, state, default_env).with_context(|| format!("{kind} hook {i} ({:?})", hook.path()))?;
    }
    Ok(())
}

/// Run hooks whose failure the spec says to log and ignore (poststop).
pub fn run_all_warn(kind: &str, hooks: Option<&Vec<Hook>>, state: &[u8]) {
    for (i, hook) in hooks.into_iter().flatten().enumerate() {
        if let Err(e) = run(hook, state, None) {
            crate::log::warn(&format!("{kind} hook {i} ({:?}): {e}", hook.path()));
        }
    }
}

/// A hook's `env` is its whole environment; without one it inherits, as under runc, the
/// runtime's (or `default_env`).
fn run(hook: &Hook, state: &[u8], default_env: Option<&Vec<String>>) -> Result<()> {
    let mut cmd = Command::new(hook.path());
    if let Some((argv0, rest)) = hook.args().as_deref().and_then(|a| a.split_first()) {
        cmd.arg0(argv0).args(rest);
    }
    if let Some(env) = hook.env().as_ref().or(default_env) {
        cmd.env_clear();
        for kv in env {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().context("spawn")?;
    let pid = child.id() as i32;
    let fd = pidfd::open(pid)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its stdin: EPIPE is not its failure. Without std's
        // runtime start-up (no_main) SIGPIPE is not ignored, and would kill testudo mid-create,
        // leaving the state dir behind; ignored only for this write, so that no container process
        // inherits an ignored SIGPIPE.
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: installing SIG_IGN runs no handler code; single-threaded, restored right after.
        let old = unsafe { sigaction(Signal::SIGPIPE, &ignore) }.context("ignore SIGPIPE")?;
        let written = stdin.write_all(state);
        // SAFETY: restores the disposition saved above.
        unsafe { sigaction(Signal::SIGPIPE, &old) }.context("restore SIGPIPE")?;
        drop(stdin);
        match written {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            r => r.context("write state to stdin")?,
        }
    }
    let timeout_ms = match hook.timeout() {
        Some(t) if t <= 0 => return Err(Error::new(format!("timeout {t} must be positive"))),
        Some(t) => i32::try_from(t.saturating_mul(1000)).unwrap_or(i32::MAX),
        None => -1,
    };
    if !wait_readable(&fd, timeout_ms)? {
        let _ = pidfd::send_signal(&fd, Signal::SIGKILL);
        let _ = child.wait();
        return Err(Error::new(format!("timed out after {}s", timeout_ms / 1000)));
    }
    let status = child.wait().context("wait")?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::new(format!("failed: {status}")))
    }
}

/// Wait for a pidfd to report exit; false on timeout.
fn wait_readable(fd: &OwnedFd, timeout_ms: i32) -> Result<bool> {
    let timeout = PollTimeout::try_from(timeout_ms).unwrap_or(PollTimeout::NONE);
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Err(Errno::EINTR) => continue,
            Ok(n) => return Ok(n > 0),
            Err(e) => return Err(Error::sys("poll pidfd", e)),
        }
    }
}
