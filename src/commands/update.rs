//! `update`: change the resources of a live container. The resources come from `--resources`
//! (a file, or - for stdin) and runc's single-value flags, which override the file. They are
//! applied like at create, against the live cgroup: a swap limit alone is measured against the
//! current memory.max, and `checkBeforeUpdate` refuses a memory limit below the current usage.

use oci_spec::runtime::{LinuxCpu, LinuxPids, LinuxResources};

use crate::cgroups::resources;
use crate::cli::Update;
use crate::commands::{open, Global};
use crate::container::{self, Status};
use crate::error::{Context, Error, Result};

pub fn run(g: &Global, u: &Update) -> Result<i32> {
    let (dir, facts) = open(g, &u.id)?;
    let facts = facts.ok_or_else(|| Error::new(format!("container {:?} is still being created", u.id)))?;
    if super::status(&dir, Some(&facts)) == Status::Stopped {
        return Err(Error::new(format!("container {:?} is not running", u.id)));
    }
    let mut r: LinuxResources = match u.resources.as_deref() {
        Some("-") => serde_json::from_reader(std::io::stdin()).map_err(|e| Error::new(format!("resources from stdin: {e}")))?,
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("read {path:?}"))?;
            serde_json::from_slice(&bytes).map_err(|e| Error::new(format!("resources {path:?}: {e}")))?
        }
        None => Default::default(),
    };
    zero_is_unchanged(&mut r);
    flags(u, &mut r)?;
    let policies = crate::audit::policy::of_container(&dir.path, g.policy.as_deref())?;
    let saved =
        || -> Result<oci_spec::runtime::Spec> { crate::spec::parse(&std::fs::read(dir.file(container::CONFIG_FILE)).context("read the saved config.json")?) };
    if !policies.is_empty() {
        // A container created under a policy keeps it: no update lifts a limit it requires.
        crate::audit::policy::enforce_update(&policies, &saved()?, &r)?;
    }
    // The device program allows the spec's nodes whatever the rules say, as at create.
    let nodes = if r.devices().is_some() { saved()?.linux().as_ref().and_then(|l| l.devices().clone()).unwrap_or_default() } else { Vec::new() };
    let cg = super::cgroup(&facts, "update")?;
    if let Some((unit, user_bus)) = crate::cgroups::systemd::recorded_unit(&dir.file(container::CGROUP_FILE))? {
        crate::cgroups::systemd::update(&unit, user_bus.as_deref(), &cg, &r)?;
    }
    resources::apply(&cg, &r, &nodes, true)?;
    Ok(0)
}

/// In an update, 0 leaves a CPU setting as it is (runc's rule): Docker sends every field, with 0
/// for those not asked for (`docker update --memory 64m` carries cpu period 0, which `check`
/// refuses as a value).
fn zero_is_unchanged(r: &mut LinuxResources) {
    if let Some(mut c) = r.cpu().clone() {
        if c.period() == Some(0) {
            c.set_period(None);
        }
        if c.quota() == Some(0) {
            c.set_quota(None);
        }
        if c.shares() == Some(0) {
            c.set_shares(None);
        }
        r.set_cpu(Some(c));
    }
}

/// A size as runc's flags take it (go-units RAMInBytes): "512m", "1.5g", "1024", "2GiB"; binary
/// multiples; "-1" is unlimited.
pub fn ram_in_bytes(flag: &str, s: &str) -> Result<i64> {
    let bad = || Error::new(format!("invalid value for --{flag}: {s:?}"));
    if s.trim() == "-1" {
        return Ok(-1);
    }
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            let shift = 10 * (1 + "kmgtp".find(c).unwrap_or(0) as u32);
            (t[..t.len() - 1].trim_end(), 1u64 << shift)
        }
        _ => (t, 1u64),
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    let v = n * mult as f64;
    if !(0.0..9.2e18).contains(&v) {
        return Err(bad());
    }
    Ok(v as i64)
}

fn flags(u: &Update, r: &mut LinuxResources) -> Result<()> {
    let mem_flags = [&u.memory, &u.memory_reservation, &u.memory_swap, &u.kernel_memory];
    if mem_flags.iter().any(|f| f.is_some()) {
        let mut m = r.memory().unwrap_or_default();
        let size = |flag: &str, v: &Option<String>| v.as_deref().map(|v| ram_in_bytes(flag, v)).transpose();
        if let Some(v) = size("memory", &u.memory)? {
            m.set_limit(Some(v));
        }
        if let Some(v) = size("memory-reservation", &u.memory_reservation)? {
            m.set_reservation(Some(v));
        }
        if let Some(v) = size("memory-swap", &u.memory_swap)? {
            m.set_swap(Some(v));
        }
        if let Some(v) = size("kernel-memory", &u.kernel_memory)? {
            #[allow(deprecated)]
            m.set_kernel(Some(v));
        }
        r.set_memory(Some(m));
    }
    let cpu_given = u.cpu_quota.is_some()
        || u.cpu_period.is_some()
        || u.cpu_shares.is_some()
        || u.cpuset_cpus.is_some()
        || u.cpuset_mems.is_some()
        || u.cpu_rt_period.is_some()
        || u.cpu_rt_runtime.is_some();
    if cpu_given {
        let mut c: LinuxCpu = r.cpu().clone().unwrap_or_default();
        if u.cpu_quota.is_some() {
            c.set_quota(u.cpu_quota);
        }
        if u.cpu_period.is_some() {
            c.set_period(u.cpu_period);
        }
        if u.cpu_shares.is_some() {
            c.set_shares(u.cpu_shares);
        }
        if u.cpuset_cpus.is_some() {
            c.set_cpus(u.cpuset_cpus.clone());
        }
        if u.cpuset_mems.is_some() {
            c.set_mems(u.cpuset_mems.clone());
        }
        if u.cpu_rt_period.is_some() {
            c.set_realtime_period(u.cpu_rt_period);
        }
        if u.cpu_rt_runtime.is_some() {
            c.set_realtime_runtime(u.cpu_rt_runtime);
        }
        r.set_cpu(Some(c));
    }
    if let Some(p) = u.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(p);
        r.set_pids(Some(pids));
    }
    if let Some(w) = u.blkio_weight {
        let mut b = r.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_runc_takes_them() {
        for (s, v) in [("512m", 512 << 20), ("1024", 1024), ("1g", 1 << 30), ("1.5k", 1536), ("2GiB", 2 << 30), ("10MB", 10 << 20), ("-1", -1), ("4 k", 4096)] {
            assert_eq!(ram_in_bytes("memory", s).ok(), Some(v), "{s}");
        }
        for s in ["", "m", "12x", "-5", "1..2m"] {
            assert!(ram_in_bytes("memory", s).is_err(), "{s}");
        }
    }

    #[test]
    fn docker_update_zeros_are_unchanged() {
        // What dockerd 20.10 sends for `docker update --memory 64m --memory-swap 128m`.
        let mut r: LinuxResources = serde_json::from_str(
            r#"{"memory": {"limit": 67108864, "swap": 134217728}, "cpu": {"shares": 0, "quota": 0, "period": 0, "cpus": "", "mems": ""}, "pids": {"limit": 0}, "blockIO": {"weight": 0}}"#,
        )
        .expect("json");
        zero_is_unchanged(&mut r);
        crate::cgroups::resources::check(&r).expect("accepted");
        let c = r.cpu().clone().expect("cpu");
        assert_eq!((c.period(), c.quota(), c.shares()), (None, None, None));
    }

    #[test]
    fn flags_override_the_file() {
        let argv = "testudo update --memory 64m --memory-swap 128m --pids-limit 20 --cpu-quota 5000 --cpu-shares 512 --cpuset-cpus 0 --blkio-weight 300 c1";
        let cli = crate::cli::parse(argv.split(' ').map(String::from).collect()).expect("parse");
        let Some(crate::cli::Command::Update(u)) = cli.command else { panic!("not update") };
        let mut r: LinuxResources = serde_json::from_str(r#"{"memory": {"limit": 1, "reservation": 7}, "pids": {"limit": 3}}"#).expect("json");
        flags(&u, &mut r).expect("flags");
        let m: oci_spec::runtime::LinuxMemory = r.memory().expect("memory");
        assert_eq!((m.limit(), m.swap(), m.reservation()), (Some(64 << 20), Some(128 << 20), Some(7)));
        assert_eq!(r.pids().map(|p| p.limit()), Some(20));
        let c = r.cpu().clone().expect("cpu");
        assert_eq!((c.quota(), c.shares(), c.cpus().as_deref()), (Some(5000), Some(512), Some("0")));
        assert_eq!(r.block_io().as_ref().and_then(|b| b.weight()), Some(300));
    }
}
