//! `linux.resources.cpu` → cpu.weight, cpu.max, cpu.max.burst, cpu.idle (the cpu controller)
//! and cpuset.cpus, cpuset.mems (the cpuset controller).

use oci_spec::runtime::LinuxCpu;

use crate::error::{Error, Result};

use super::resources::Writes;
use super::Cgroup;

/// `v1`: the cpu controller is in a v1 hierarchy the container joins, which has the realtime
/// files (`rt`); cgroup v2 has none.
pub fn check(c: &LinuxCpu, v1: bool) -> Result<()> {
    if !v1 && (c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some_and(|v| v != 0)) {
        return Err(Error::new("linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime CPU bandwidth"));
    }
    // The kernel's bounds for cpu.max's period, 1 ms to 1 s. 0 is runc's "not set" (the kernel's
    // default at create, unchanged at update): Docker sends it in every `update` it makes.
    if let Some(p) = c.period().filter(|&p| p != 0 && !(1000..=1_000_000).contains(&p)) {
        return Err(Error::new(format!("linux.resources.cpu.period: {p} is outside the kernel's 1000 to 1000000 microseconds")));
    }
    if let Some(i) = c.idle().filter(|i| !(0..=1).contains(i)) {
        return Err(Error::new(format!("linux.resources.cpu.idle: {i} is not 0 or 1")));
    }
    Ok(())
}

pub fn needs_cpu(c: &LinuxCpu) -> bool {
    c.shares().is_some_and(|v| v != 0) || c.quota().is_some_and(|v| v != 0) || c.period().is_some_and(|v| v != 0) || c.burst().is_some() || c.idle().is_some()
}

pub fn needs_cpuset(c: &LinuxCpu) -> bool {
    c.cpus().as_deref().is_some_and(|s| !s.is_empty()) || c.mems().as_deref().is_some_and(|s| !s.is_empty())
}

/// cpu.shares (v1, 2..262144, default 1024) → cpu.weight (1..10000, default 100). The quadratic
/// in log2 that runc (opencontainers/cgroups, since runc 1.3.2 / 1.4) and crun (since 1.23) use:
/// it maps 2 → 1, 1024 → 100 and 262144 → 10000. The earlier linear 1 + (shares-2)*9999/262142
/// (runc ≤ 1.3.1, crun ≤ 1.22, crun 1.8 included) gave the default 1024 shares a weight of 39,
/// below a default v2 sibling's 100 (kubernetes#131216).
pub fn weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262144.. => 10000,
        s => {
            let l = (s as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            10f64.powf(exponent).ceil() as u64
        }
    }
}

/// The quota of a cpu.max line, None for "max".
fn quota_of(line: &str) -> Option<u64> {
    line.split_whitespace().next().and_then(|q| q.parse().ok())
}

pub fn plan(c: &LinuxCpu, cg: &Cgroup, out: &mut Writes) -> Result<()> {
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        out.push(("cpu.weight".into(), weight(s).to_string()));
    }
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    let mut max = None;
    if quota != 0 || period != 0 {
        let old = cg.read("cpu.max")?;
        let mut words = old.split_whitespace();
        let (old_quota, old_period) = (words.next().unwrap_or("max").to_string(), words.next().unwrap_or("100000").to_string());
        // One half given: the other stays as it is (runc's update merges with its saved config).
        let q = match (c.quota(), quota) {
            (None, _) => old_quota,
            (Some(_), q) if q > 0 => q.to_string(),
            _ => "max".into(),
        };
        let p = if period != 0 { period.to_string() } else { old_period };
        max = Some(format!("{q} {p}"));
    }
    match (max, c.burst()) {
        (Some(max), Some(burst)) => {
            // The kernel refuses a burst above the quota: write the burst first when it fits
            // the old quota, else the quota first.
            let burst_first = quota_of(&cg.read("cpu.max")?).is_none_or(|q| burst <= q);
            let pair = [("cpu.max.burst".to_string(), burst.to_string()), ("cpu.max".to_string(), max)];
            if burst_first {
                out.extend(pair);
            } else {
                out.extend(pair.into_iter().rev());
            }
        }
        (Some(max), None) => out.push(("cpu.max".into(), max)),
        (None, Some(burst)) => out.push(("cpu.max.burst".into(), burst.to_string())),
        (None, None) => {}
    }
    if let Some(i) = c.idle() {
        out.push(("cpu.idle".into(), i.to_string()));
    }
    if let Some(s) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        out.push(("cpuset.cpus".into(), s.to_string()));
    }
    if let Some(s) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        out.push(("cpuset.mems".into(), s.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::resources::testdir;

    fn cpu(json: &str) -> LinuxCpu {
        serde_json::from_str(json).expect("cpu json")
    }

    #[test]
    fn shares_to_weight_as_runc_and_crun() {
        // Values of opencontainers/cgroups' ConvertCPUSharesToCgroupV2Value.
        for (shares, w) in [(0, 0), (2, 1), (3, 2), (10, 4), (100, 17), (512, 59), (1024, 100), (2048, 174), (4096, 303), (262143, 10000), (262144, 10000)] {
            assert_eq!(weight(shares), w, "shares {shares}");
        }
    }

    #[test]
    fn writes() {
        let cg = testdir(&[("cpu.max", "max 100000\n")]);
        let mut w = Writes::new();
        plan(&cpu(r#"{"shares": 1024, "quota": 50000, "period": 200000, "cpus": "0-1", "mems": "0", "idle": 0}"#), &cg, &mut w).expect("plan");
        let want: Writes = vec![
            ("cpu.weight".into(), "100".into()),
            ("cpu.max".into(), "50000 200000".into()),
            ("cpu.idle".into(), "0".into()),
            ("cpuset.cpus".into(), "0-1".into()),
            ("cpuset.mems".into(), "0".into()),
        ];
        assert_eq!(w, want);
        // Quota alone keeps the period; -1 is "max"; period alone keeps the quota.
        cg.write("cpu.max", "20000 50000\n").expect("write");
        let mut w = Writes::new();
        plan(&cpu(r#"{"quota": 30000}"#), &cg, &mut w).expect("plan");
        assert_eq!(w, vec![("cpu.max".into(), "30000 50000".into())]);
        let mut w = Writes::new();
        plan(&cpu(r#"{"quota": -1}"#), &cg, &mut w).expect("plan");
        assert_eq!(w, vec![("cpu.max".into(), "max 50000".into())]);
        let mut w = Writes::new();
        plan(&cpu(r#"{"period": 10000}"#), &cg, &mut w).expect("plan");
        assert_eq!(w, vec![("cpu.max".into(), "20000 10000".into())]);
        // A burst above the old quota goes after the new quota.
        let mut w = Writes::new();
        plan(&cpu(r#"{"quota": 80000, "burst": 40000}"#), &cg, &mut w).expect("plan");
        assert_eq!(w, vec![("cpu.max".into(), "80000 50000".into()), ("cpu.max.burst".into(), "40000".into())]);
        let mut w = Writes::new();
        plan(&cpu(r#"{"quota": 10000, "burst": 5000}"#), &cg, &mut w).expect("plan");
        assert_eq!(w, vec![("cpu.max.burst".into(), "5000".into()), ("cpu.max".into(), "10000 50000".into())]);
    }

    #[test]
    fn v1_only_settings_are_refused() {
        let e = check(&cpu(r#"{"realtimeRuntime": 1000}"#), false).expect_err("v2").to_string();
        assert_eq!(e, "linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime CPU bandwidth");
        assert!(check(&cpu(r#"{"realtimeRuntime": 1000, "realtimePeriod": 100000}"#), true).is_ok(), "v1 cpu has it");
        assert!(check(&cpu(r#"{"idle": 2}"#), true).is_err());
        assert!(check(&cpu(r#"{"shares": 0, "realtimeRuntime": 0}"#), false).is_ok());
    }

    #[test]
    fn a_period_the_kernel_refuses_is_refused() {
        let err = check(&cpu(r#"{"period": 1}"#), false).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("linux.resources.cpu.period: 1 is outside the kernel's 1000 to 1000000 microseconds"));
        assert!(check(&cpu(r#"{"period": 0, "quota": 0, "shares": 0}"#), false).is_ok(), "Docker's update sends zeros for unchanged");
        assert!(check(&cpu(r#"{"period": 999}"#), false).is_err());
        assert!(check(&cpu(r#"{"period": 1000001}"#), false).is_err());
        assert!(check(&cpu(r#"{"period": 100000, "quota": -1}"#), false).is_ok());
    }
}
