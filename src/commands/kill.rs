//! `kill [--all] ID [SIGNAL]`: signal the init (`container::init`: never a recycled pid) or every
//! process of the container.

use nix::sys::signal::Signal;

use crate::cgroups::Cgroup;
use crate::cli::Kill;
use crate::commands::{open, Global};
use crate::container::{init, Status};
use crate::error::{Error, Result};
use crate::linux::pidfd;

/// The real-time signals as the kernel numbers them; glibc keeps 32 and 33 for itself, so
/// `SIGRTMIN` is 34 to every program a container runs.
const RTMIN: i32 = 34;
const RTMAX: i32 = 64;

/// A signal as runc takes it: a number 0..=64 (0 sends nothing and only asks whether the process
/// is there, a client's liveness probe), or a name with or without `SIG`, in any case,
/// including `RTMIN`, `RTMIN+n` and `RTMAX-n` (Docker's `STOPSIGNAL SIGRTMIN+3`).
pub fn parse_signal(s: &str) -> Result<i32> {
    let invalid = || Error::new(format!("invalid signal {s:?}"));
    if let Ok(n) = s.parse::<i32>() {
        return if (0..=RTMAX).contains(&n) { Ok(n) } else { Err(invalid()) };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let offset = |rest: &str, sign: char| -> Option<i32> {
        if rest.is_empty() {
            return Some(0);
        }
        // Only "+3" / "-2": no second sign, no spaces.
        rest.strip_prefix(sign).filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))?.parse().ok()
    };
    let rt = if let Some(rest) = name.strip_prefix("RTMIN") {
        offset(rest, '+').map(|n| RTMIN.saturating_add(n))
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        offset(rest, '-').map(|n| RTMAX.saturating_sub(n))
    } else {
        return format!("SIG{name}").parse::<Signal>().map(|s| s as i32).map_err(|_| invalid());
    };
    rt.filter(|n| (RTMIN..=RTMAX).contains(n)).ok_or_else(invalid)
}

pub fn run(g: &Global, k: &Kill) -> Result<i32> {
    let sig = parse_signal(k.signal.as_deref().unwrap_or("SIGTERM"))?;
    let (dir, facts) = open(g, &k.id)?;
    let facts = facts.ok_or_else(|| Error::new(format!("container {:?} is still being created", k.id)))?;
    let status = super::status(&dir, Some(&facts));
    if k.all {
        let Some(path) = &facts.cgroup else {
            return kill_pid_namespace(&facts, status, sig);
        };
        let cg = Cgroup::at(path.clone());
        if !cg.exists() {
            return Ok(0);
        }
        if sig == libc::SIGKILL {
            cg.kill()?;
        } else {
            for pid in cg.procs()? {
                if let Ok(fd) = pidfd::open(pid) {
                    let _ = pidfd::send_signo(&fd, sig);
                }
            }
        }
        return Ok(0);
    }
    if status == Status::Stopped {
        return Err(Error::new(format!("container {:?} is not running", k.id)));
    }
    match init::signal(&facts, sig)? {
        Some(_) => Ok(0),
        None => Err(Error::new(format!("container {:?} is not running", k.id))),
    }
}

/// `kill --all` of a rootless container without a cgroup, which has a pid namespace of its own
/// (`cgroups::rootless`): every process in it. A pid is signalled through a pidfd opened first
/// and checked to be in the namespace after, so a pid reused meanwhile is never signalled.
fn kill_pid_namespace(facts: &crate::container::Facts, status: Status, sig: i32) -> Result<i32> {
    if status == Status::Stopped {
        return Ok(0);
    }
    let ns = std::fs::read_link(format!("/proc/{}/ns/pid", facts.pid)).ok();
    for pid in crate::linux::pidns::members(facts.pid)? {
        let Ok(fd) = pidfd::open(pid) else { continue };
        if std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok() == ns {
            let _ = pidfd::send_signo(&fd, sig);
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_forms_runc_accepts() {
        for s in ["15", "TERM", "SIGTERM", "term", "sigterm"] {
            assert_eq!(parse_signal(s).ok(), Some(libc::SIGTERM), "{s}");
        }
        assert_eq!(parse_signal("9").ok(), Some(libc::SIGKILL));
        assert_eq!(parse_signal("KILL").ok(), Some(libc::SIGKILL));
        assert_eq!(parse_signal("0").ok(), Some(0), "runc's liveness probe");
        for s in ["NOPE", "99", "-1", "65", "SIG", "SIG0", ""] {
            assert!(parse_signal(s).is_err(), "{s}");
        }
    }

    #[test]
    fn real_time_signals_by_number_and_by_name() {
        let cases = [
            ("34", 34),
            ("64", 64),
            ("32", 32),
            ("SIGRTMIN", 34),
            ("RTMIN", 34),
            ("rtmin", 34),
            ("SIGRTMIN+3", 37),
            ("RTMIN+3", 37),
            ("sigrtmin+30", 64),
            ("SIGRTMAX", 64),
            ("RTMAX-2", 62),
            ("SIGRTMAX-30", 34),
        ];
        for (s, n) in cases {
            assert_eq!(parse_signal(s).ok(), Some(n), "{s}");
        }
        for s in ["SIGRTMIN+31", "RTMAX-31", "RTMIN-1", "RTMAX+1", "RTMIN+", "RTMIN++3", "RTMIN+-3", "RTMIN+ 3", "RTMIN3", "RTMIN+99999999999"] {
            assert!(parse_signal(s).is_err(), "{s}");
        }
        assert_eq!(parse_signal("RTMIN+x").expect_err("x").to_string(), "invalid signal \"RTMIN+x\"");
    }
}
