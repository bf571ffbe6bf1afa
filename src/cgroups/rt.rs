//! Realtime CPU bandwidth (`linux.resources.cpu.realtimeRuntime/realtimePeriod`): the v1 cpu
//! controller's cpu.rt_runtime_us and cpu.rt_period_us (RT group scheduling). cgroup v2 has no
//! such files, so this exists only where the cpu controller is in a v1 hierarchy.
//!
//! The kernel admits a group's budget only if it fits its parent's: the shares (runtime/period)
//! of a group's children must add up to no more than its own (kernel/sched/rt.c,
//! tg_rt_schedulable). A new cgroup starts with a runtime of 0, so a container below a parent
//! nobody gave a budget (testudo's own `/testudo`, a client's pod cgroup) is refused with EINVAL.
//! runc writes the container's two files only and leaves the parents to its client (dockerd gives
//! its `/docker` parent a budget from its --cpu-rt-runtime). testudo raises each ancestor that is
//! short to exactly the sum of its children's shares, top-down, stopping at the first that has
//! room. It does not raise an ancestor that holds processes of its own (their realtime tasks
//! would get more time than the host gave them), nor the hierarchy's root (the host's
//! kernel.sched_rt_runtime_us): a clear error instead. Nothing is lowered at delete: an ancestor
//! keeps the most its children needed at once, and a next container that fits changes nothing.

use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::error::{Context, Error, Result};

const RUNTIME: &str = "cpu.rt_runtime_us";
const PERIOD: &str = "cpu.rt_period_us";
/// The kernel's fixed point for a share of a period (BW_SHIFT).
const BW_SHIFT: u32 = 20;

fn read(dir: &Path, file: &str) -> Result<i64> {
    let p = dir.join(file);
    let t = std::fs::read_to_string(&p).with_context(|| format!("read {p:?}"))?;
    t.trim().parse().map_err(|_| Error::new(format!("{p:?}: not a number: {:?}", t.trim())))
}

fn write(dir: &Path, file: &str, v: i64) -> std::io::Result<()> {
    std::fs::write(dir.join(file), v.to_string())
}

/// The kernel's to_ratio: runtime/period in 1/2^20; -1 (no limit) is the whole period.
fn share(runtime: i64, period: i64) -> u128 {
    match (runtime, period) {
        (r, _) if r < 0 => 1 << BW_SHIFT,
        (_, p) if p <= 0 => 0,
        (r, p) => ((r as u128) << BW_SHIFT) / p as u128,
    }
}

/// The child cgroups of `dir`.
fn children(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("read cgroup {dir:?}"))?;
    Ok(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect())
}

/// Set the budget of the container's v1 cpu cgroup `dir` (in the hierarchy mounted at `mount`),
/// raising its ancestors' first where they are short. 0 is runc's "not set".
pub fn apply(dir: &Path, mount: &Path, runtime: Option<i64>, period: Option<u64>) -> Result<()> {
    let runtime = runtime.filter(|&r| r != 0);
    let period = period.filter(|&p| p != 0).map(|p| i64::try_from(p).unwrap_or(i64::MAX));
    if runtime.is_none() && period.is_none() {
        return Ok(());
    }
    let what = "linux.resources.cpu.realtimeRuntime/realtimePeriod";
    let new_period = match period {
        Some(p) => p,
        None => read(dir, PERIOD)?,
    };
    let new_runtime = match runtime {
        Some(r) => r,
        None => read(dir, RUNTIME)?,
    };
    if new_runtime > new_period {
        return Err(Error::new(format!("{what}: the runtime {new_runtime} is above the period {new_period} (microseconds)")));
    }
    for (p, v) in raises(dir, mount, share(new_runtime, new_period))? {
        write(&p, RUNTIME, v).map_err(|e| Error::sys(format!("{what}: raise the budget of parent cgroup {p:?} to {v}"), errno(&e)))?;
    }
    let fail = |file: &str, v: i64, e: std::io::Error| Error::sys(format!("{what}: write {v} to {:?}", dir.join(file)), errno(&e));
    // runc's order: the period first; where the kernel refuses it (EINVAL: the old runtime does
    // not fit the new period) and a runtime is given, the runtime first, then the period.
    let mut period_left = None;
    if let Some(p) = period {
        match write(dir, PERIOD, p) {
            Ok(()) => {}
            Err(e) if errno(&e) == Errno::EINVAL && runtime.is_some() => period_left = Some(p),
            Err(e) => return Err(fail(PERIOD, p, e)),
        }
    }
    if let Some(r) = runtime {
        write(dir, RUNTIME, r).map_err(|e| fail(RUNTIME, r, e))?;
    }
    if let Some(p) = period_left {
        write(dir, PERIOD, p).map_err(|e| fail(PERIOD, p, e))?;
    }
    Ok(())
}

fn errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// The ancestors of `dir` to raise so that a budget of `want` (a share) fits, as (cgroup,
/// runtime), top-down: each one short of its children's sum gets exactly that sum.
fn raises(dir: &Path, mount: &Path, want: u128) -> Result<Vec<(PathBuf, i64)>> {
    let mut out = Vec::new();
    let (mut child, mut child_share) = (dir.to_path_buf(), want);
    while let Some(parent) = child.parent().filter(|p| p.starts_with(mount)).map(Path::to_path_buf) {
        let (runtime, period) = (read(&parent, RUNTIME)?, read(&parent, PERIOD)?);
        let mut need = child_share;
        for c in children(&parent)?.into_iter().filter(|c| *c != child) {
            // A sibling removed since the listing (another container's delete) holds nothing.
            match (read(&c, RUNTIME), read(&c, PERIOD)) {
                (Ok(r), Ok(p)) => need += share(r, p),
                _ if !c.exists() => {}
                (Err(e), _) | (_, Err(e)) => return Err(e),
            }
        }
        if share(runtime, period) >= need {
            break;
        }
        // The least runtime whose share is `need`: floor(r * 2^20 / period) >= need.
        let r = (need * period as u128).div_ceil(1 << BW_SHIFT);
        let r = i64::try_from(r).unwrap_or(i64::MAX);
        if parent == mount {
            return Err(Error::new(format!(
                "linux.resources.cpu.realtimeRuntime: the host's realtime budget ({runtime} of {period} microseconds, kernel.sched_rt_runtime_us) cannot hold {r}"
            )));
        }
        let procs = std::fs::read_to_string(parent.join("cgroup.procs")).with_context(|| format!("read {:?}", parent.join("cgroup.procs")))?;
        if !procs.trim().is_empty() {
            return Err(Error::new(format!(
                "linux.resources.cpu.realtimeRuntime: parent cgroup {parent:?} has a realtime budget of {runtime} of {period} microseconds, and {r} is needed; it holds processes of its own, so testudo does not raise it"
            )));
        }
        out.push((parent.clone(), r));
        child_share = share(r, period);
        child = parent;
    }
    out.reverse();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cg(dir: &Path, runtime: i64, period: i64) {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::write(dir.join(RUNTIME), runtime.to_string()).expect("write");
        std::fs::write(dir.join(PERIOD), period.to_string()).expect("write");
        std::fs::write(dir.join("cgroup.procs"), "").expect("write");
    }

    #[test]
    fn short_ancestors_get_the_sum_of_their_childrens_shares() {
        let root = std::env::temp_dir().join(format!("testudo-rt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        cg(&root, 950000, 1000000);
        cg(&root.join("testudo"), 0, 1000000);
        cg(&root.join("testudo/a"), 20000, 500000);
        cg(&root.join("testudo/b"), 0, 1000000);
        // b wants 30000 of 100000 (0.3); a has 0.04: testudo needs 0.34 of its 1 s period.
        let r = raises(&root.join("testudo/b"), &root, share(30000, 100000)).expect("raises");
        assert_eq!(r, vec![(root.join("testudo"), 340000)]);
        assert!(share(340000, 1000000) >= share(20000, 500000) + share(30000, 100000));
        // Room enough: nothing to raise.
        cg(&root.join("testudo"), 400000, 1000000);
        assert!(raises(&root.join("testudo/b"), &root, share(30000, 100000)).expect("raises").is_empty());
        // The host's budget is not raised; an ancestor with processes is not either.
        let e = raises(&root.join("testudo/b"), &root, share(960000, 1000000)).expect_err("root").to_string();
        assert!(e.contains("kernel.sched_rt_runtime_us"), "{e}");
        std::fs::write(root.join("testudo/cgroup.procs"), "1\n").expect("write");
        let e = raises(&root.join("testudo/b"), &root, share(500000, 1000000)).expect_err("procs").to_string();
        assert!(e.contains("holds processes"), "{e}");
        std::fs::remove_dir_all(&root).expect("rm");
    }
}
