//! `process.execCPUAffinity` (spec 1.2.1): the CPUs an `exec` runs on before it enters the
//! container's cgroup (`initial`, the runtime process that spawns it) and after (`final`, the
//! process itself). Not applied to the container's init, as the spec says. Also the kernel's
//! list format ("0-3,7") shared with `linux.memoryPolicy` nodes.

use nix::sched::CpuSet;
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// The numbers of a kernel list ("0-3,7" → 0, 1, 2, 3, 7), in order, for `what`.
pub fn list(what: &str, s: &str) -> Result<Vec<usize>> {
    let bad = || Error::new(format!("{what} {s:?}: not a list like \"0-3,7\""));
    let mut out = Vec::new();
    for part in s.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi): (usize, usize) = (lo.parse().map_err(|_| bad())?, hi.parse().map_err(|_| bad())?);
        if lo > hi {
            return Err(bad());
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

fn cpu_set(what: &str, s: &str) -> Result<CpuSet> {
    let mut set = CpuSet::new();
    for cpu in list(what, s)? {
        set.set(cpu).map_err(|_| Error::new(format!("{what} {s:?}: CPU {cpu} is beyond the largest set of {}", CpuSet::count())))?;
    }
    Ok(set)
}

/// Check both lists at create, so a bad one is not an exec-time surprise.
pub fn check(a: &oci_spec::runtime::ExecCPUAffinity) -> Result<()> {
    for (what, s) in [("process.execCPUAffinity.initial", a.initial()), ("process.execCPUAffinity.final", a.cpu_affinity_final())] {
        if let Some(s) = s.as_deref().filter(|s| !s.is_empty()) {
            cpu_set(what, s)?;
        }
    }
    Ok(())
}

/// Pin the calling process to `s` (an empty or absent list leaves it as it is).
pub fn apply(what: &str, s: Option<&str>) -> Result<()> {
    let Some(s) = s.filter(|s| !s.is_empty()) else { return Ok(()) };
    nix::sched::sched_setaffinity(Pid::from_raw(0), &cpu_set(what, s)?).map_err(|e| Error::sys(format!("{what} {s:?}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(list("x", "0-3,7").expect("list"), [0, 1, 2, 3, 7]);
        assert_eq!(list("x", "5").expect("one"), [5]);
        for bad in ["", "3-1", "a", "1,", "-2"] {
            assert!(list("x", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            cpu_set("final", "100000").err().map(|e| e.to_string()),
            Some(format!("final \"100000\": CPU 100000 is beyond the largest set of {}", CpuSet::count()))
        );
    }
}
