//! `start`: release a created container's init by writing exec.fifo, wait until it has executed
//! the container's process, then run poststart hooks (one that fails stops the container).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::commands::{open, Global};
use crate::container::{self, hooks, Status};
use crate::error::{Context, Error, Result};

pub fn run(g: &Global, id: &str) -> Result<i32> {
    let (dir, facts) = open(g, id)?;
    let facts = facts.ok_or_else(|| Error::new(format!("container {id:?} is still being created")))?;
    match super::status(&dir, Some(&facts)) {
        Status::Created => {}
        s => return Err(Error::new(format!("cannot start container {id:?}: it is {}", s.as_str()))),
    }
    let fifo = dir.file(container::FIFO_FILE);
    let mut f = match std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(&fifo) {
        Err(e) if e.raw_os_error() == Some(Errno::ENXIO as i32) => {
            return Err(Error::new(format!("container {id:?}: init is not running")));
        }
        r => r.with_context(|| format!("open {fifo:?}"))?,
    };
    f.write_all(&[0]).with_context(|| format!("write {fifo:?}"))?;
    crate::log::debug(|| format!("start: {fifo:?} written"));
    std::fs::remove_file(&fifo).with_context(|| format!("remove {fifo:?}"))?;
    wait_for_exec(&f)?;
    let spec = crate::spec::parse(&std::fs::read(dir.file(container::CONFIG_FILE)).context("read saved config.json")?)?;
    let state = super::state_json(&facts, Status::Running).to_string();
    // Runtime spec 1.3: a poststart hook that fails fails `start`, and the container is stopped
    // (runc terminates its init too).
    if let Err(e) = hooks::run_all("poststart", spec.hooks().as_ref().and_then(|h| h.poststart().as_ref()), state.as_bytes()) {
        let _ = container::init::signal(&facts, libc::SIGKILL);
        return Err(e);
    }
    Ok(0)
}

/// Init holds exec.fifo open (close-on-exec) until it executes the container's process, or dies.
/// Once no reader is left, the writer's poll reports POLLERR: only then do poststart hooks run,
/// as the runtime spec orders them after the process is executed (and after startContainer).
fn wait_for_exec(f: &std::fs::File) -> Result<()> {
    loop {
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::empty())];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("wait for the container's process on exec.fifo", e)),
            Ok(_) => return Ok(()),
        }
    }
}
