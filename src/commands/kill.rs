//! `kill [--all] ID [SIGNAL]`: signal the init (through a pidfd checked against the recorded
//! start time, so a recycled pid is never signalled) or every process of the container.

use nix::sys::signal::Signal;

use crate::cgroups::Cgroup;
use crate::cli::Kill;
use crate::commands::{open, Global};
use crate::container::{state, Status};
use crate::error::{Error, Result};
use crate::linux::pidfd;

pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::new(format!("invalid signal {s:?}")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse().map_err(|_| Error::new(format!("invalid signal {s:?}")))
}

pub fn run(g: &Global, k: &Kill) -> Result<i32> {
    let sig = parse_signal(k.signal.as_deref().unwrap_or("SIGTERM"))?;
    let (dir, facts) = open(g, &k.id)?;
    let facts = facts.ok_or_else(|| Error::new(format!("container {:?} is still being created", k.id)))?;
    let status = super::status(&dir, Some(&facts));
    if k.all {
        let cg = Cgroup::at(facts.cgroup.clone());
        if !cg.exists() {
            return Ok(0);
        }
        if sig == Signal::SIGKILL {
            cg.kill()?;
        } else {
            for pid in cg.procs()? {
                if let Ok(fd) = pidfd::open(pid) {
                    let _ = pidfd::send_signal(&fd, sig);
                }
            }
        }
        return Ok(0);
    }
    if status == Status::Stopped {
        return Err(Error::new(format!("container {:?} is not running", k.id)));
    }
    let fd = pidfd::open(facts.pid)?;
    // The pidfd pins the process; check it is still the one we started.
    if state::proc_facts(facts.pid).map(|p| p.start) != Some(facts.pid_start) {
        return Err(Error::new(format!("container {:?} is not running", k.id)));
    }
    pidfd::send_signal(&fd, sig)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_forms_runc_accepts() {
        for s in ["15", "TERM", "SIGTERM", "term", "sigterm"] {
            assert_eq!(parse_signal(s).ok(), Some(Signal::SIGTERM), "{s}");
        }
        assert_eq!(parse_signal("9").ok(), Some(Signal::SIGKILL));
        assert_eq!(parse_signal("KILL").ok(), Some(Signal::SIGKILL));
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
