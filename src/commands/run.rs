//! `run`: create, start and (unless --detach) wait in the foreground (`foreground`: signals
//! forwarded, a terminal without --console-socket relayed to the caller's); then delete (unless
//! --keep). The exit code is the container's, or 128 + the signal that ended it.

use std::os::fd::AsFd;

use crate::cli::Run;
use crate::commands::Global;
use crate::commands::{create, foreground};
use crate::container::{hooks, Status};
use crate::error::{Error, Result};
use crate::linux::pidfd;
use crate::spawn::prepare::StartBy;
use crate::spawn::sync::Msg;

pub fn run(g: &Global, r: &Run) -> Result<i32> {
    let c = create::create(g, &r.opts, &r.id, StartBy::Socket { detach: r.detach })?;
    // Blocked before the start, so no signal meant for the container is lost or kills us first.
    let mask = foreground::block_signals()?;
    // A pty we relay has the caller's size before the process runs (`foreground` sets it too
    // late for a process that reads it first).
    if let Some(m) = &c.launched.pty {
        crate::linux::tty::copy_size(std::io::stdin().as_fd(), m);
    }
    c.launched.chan.send(&Msg::Start)?;
    // The sync socket is close-on-exec: EOF means the container's process has been executed,
    // which is when poststart hooks run (runtime spec). A message instead is init's last word
    // (a failed startContainer hook): the container is stopped and removed, and that is the error.
    if let Some(msg) = c.launched.chan.recv()? {
        let e = match msg {
            Msg::Fail(e) => e,
            other => Error::new(format!("sync socket: unexpected {other:?} after start")),
        };
        let _ = pidfd::wait(&c.launched.pidfd);
        drop(c.dir);
        remove_unless_kept(g, r)?;
        return Err(e);
    }
    crate::log::debug(|| format!("init {}: executed the container's process", c.launched.pid));
    let facts = c.dir.facts()?;
    let state = super::state_json(&facts, Status::Running).to_string();
    // Runtime spec 1.3: a poststart hook that fails fails the run, and the container is stopped.
    if let Err(e) = hooks::run_all("poststart", c.prepared.spec.hooks().as_ref().and_then(|h| h.poststart().as_ref()), state.as_bytes()) {
        // Our own unreaped child: its pidfd names it, no recorded start time needed.
        let _ = pidfd::send_signal(&c.launched.pidfd, nix::sys::signal::Signal::SIGKILL);
        let _ = pidfd::wait(&c.launched.pidfd);
        drop(c.dir);
        remove_unless_kept(g, r)?;
        return Err(e);
    }
    if r.detach {
        return Ok(0);
    }
    // Unlocked while we wait, so `kill`, `pause` or `exec` from elsewhere are not blocked.
    drop(c.dir);
    let code = foreground::wait(&c.launched.pidfd, c.launched.pty.as_ref(), &mask)?;
    crate::log::debug(|| format!("container process exited: status {code}"));
    remove_unless_kept(g, r)?;
    Ok(code)
}

/// The container is done (or failed after create): removed, unless `--keep` asks otherwise.
fn remove_unless_kept(g: &Global, r: &Run) -> Result<()> {
    if !r.keep {
        if let Ok((dir, Some(facts))) = super::open(g, &r.id) {
            super::delete::destroy(&dir, &facts)?;
        }
    }
    Ok(())
}
