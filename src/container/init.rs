//! The container's init as `state.json` records it: a pid and its start time. A pid alone may
//! have been reused by the time a command acts on it, so the init is signalled only through a
//! pidfd (which pins the process it was opened for) whose process still has the recorded start
//! time: a recycled pid is never signalled (the pid-reuse race runc's `kill` had before pidfds).

use std::os::fd::OwnedFd;

use super::{state, Facts};
use crate::error::Result;
use crate::linux::pidfd;

/// Send `signo` to the init if it is still the process `create` started: Some(its pidfd) when
/// sent, None when the init is gone or its pid is another process now. Sending is the only error.
pub fn signal(facts: &Facts, signo: i32) -> Result<Option<OwnedFd>> {
    let Ok(fd) = pidfd::open(facts.pid) else { return Ok(None) };
    // Checked after the pidfd is open: from then on the pid cannot name another process.
    if state::proc_facts(facts.pid).map(|p| p.start) != Some(facts.pid_start) {
        return Ok(None);
    }
    pidfd::send_signo(&fd, signo)?;
    Ok(Some(fd))
}
