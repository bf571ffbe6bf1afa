//! `linux.resources` → the scope's systemd properties. systemd writes these to the scope's
//! cgroup itself, and writes them again whenever it re-applies the unit (a daemon-reload, a
//! property change): a limit written only through cgroupfs would be lost then. What systemd has
//! no property for (swap via memory.swap.max only where mapped, hugetlb, rdma, devices, io
//! throttles, unified keys without a property) is written through cgroupfs only, as by runc; the
//! same values are also written through cgroupfs after the unit starts (`resources::apply`), so
//! the container gets exactly the kernel values the cgroupfs driver gives it.

use oci_spec::runtime::LinuxResources;

use crate::dbus::Value;
use crate::error::{Error, Result};

use super::super::{cpu, io, memory};

/// A property as StartTransientUnit and SetUnitProperties take it: `(sv)`.
pub type Property = (String, Value);

pub fn encode(props: &[Property]) -> Value {
    Value::Array("(sv)".into(), props.iter().map(|(k, v)| Value::Struct(vec![Value::str(k), Value::variant(v.clone())])).collect())
}

/// systemd's "infinity" for limits and USec values.
const INFINITY: u64 = u64::MAX;

/// runc's numToStr semantics: 0 unset, -1 unlimited.
fn limit(v: Option<i64>) -> Option<u64> {
    match v? {
        0 => None,
        n if n < 0 => Some(INFINITY),
        n => Some(n as u64),
    }
}

/// The properties for `r`. `memory_now` is the current memory.max on `update` (a swap limit
/// alone is measured against it), None at create.
pub fn of(r: &LinuxResources, memory_now: Option<i64>) -> Result<Vec<Property>> {
    let mut p: Vec<Property> = Vec::new();
    if let Some(m) = r.memory() {
        if let Some(v) = limit(m.limit()) {
            p.push(("MemoryMax".into(), Value::U64(v)));
        }
        if let Some(v) = limit(m.reservation()) {
            p.push(("MemoryLow".into(), Value::U64(v)));
        }
        let swap = m.swap().unwrap_or(0);
        if swap != 0 {
            let l = m.limit().filter(|&l| l != 0).or(memory_now).unwrap_or(0);
            let v2 = memory::swap_v2(swap, l)?;
            p.push(("MemorySwapMax".into(), Value::U64(if v2 < 0 { INFINITY } else { v2 as u64 })));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|&s| s != 0) {
            p.push(("CPUWeight".into(), Value::U64(cpu::weight(s))));
        }
        let quota = c.quota().unwrap_or(0);
        let period = c.period().unwrap_or(0);
        if period != 0 {
            p.push(("CPUQuotaPeriodUSec".into(), Value::U64(period)));
        }
        if quota != 0 || period != 0 {
            p.push(("CPUQuotaPerSecUSec".into(), Value::U64(quota_per_sec(quota, period))));
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            p.push(("AllowedCPUs".into(), Value::bytes(&bitmask("linux.resources.cpu.cpus", cpus)?)));
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            p.push(("AllowedMemoryNodes".into(), Value::bytes(&bitmask("linux.resources.cpu.mems", mems)?)));
        }
    }
    if let Some(v) = r.pids().and_then(|x| limit(Some(x.limit()))) {
        p.push(("TasksMax".into(), Value::U64(v)));
    }
    if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()).filter(|&w| w != 0) {
        p.push(("IOWeight".into(), Value::U64(io::io_weight(w))));
    }
    for (key, value) in r.unified().iter().flat_map(|u| u.iter()) {
        if let Some(name) = unified_property(key) {
            let v = match value.trim() {
                "max" => INFINITY,
                t => t.parse().map_err(|_| Error::new(format!("linux.resources.unified.{key}: {value:?} is not a number or \"max\"")))?,
            };
            p.push((name.into(), Value::U64(v)));
        }
    }
    Ok(p)
}

/// The unified keys systemd has a property for (all take a number or "max").
fn unified_property(key: &str) -> Option<&'static str> {
    Some(match key {
        "memory.high" => "MemoryHigh",
        "memory.low" => "MemoryLow",
        "memory.min" => "MemoryMin",
        "memory.max" => "MemoryMax",
        "memory.swap.max" => "MemorySwapMax",
        "pids.max" => "TasksMax",
        "cpu.weight" => "CPUWeight",
        _ => return None,
    })
}

/// CPU time per second of wall time. systemd keeps it as a whole percentage, so it is rounded up
/// to 10 ms as runc does: the cpu.max written afterwards is then never above what systemd
/// would restore on its own.
fn quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota <= 0 {
        return INFINITY;
    }
    let period = if period == 0 { 100_000 } else { period };
    let per_sec = quota as u64 * 1_000_000 / period;
    per_sec.div_ceil(10_000) * 10_000
}

/// A cpu or memory-node list ("0-3,7") as systemd's little-endian bitmask: bit n of byte n/8.
fn bitmask(field: &str, list: &str) -> Result<Vec<u8>> {
    let bad = || Error::new(format!("{field}: {list:?} is not a list of numbers and ranges"));
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>().map_err(|_| bad())?, b.trim().parse::<usize>().map_err(|_| bad())?),
            None => {
                let n = part.parse::<usize>().map_err(|_| bad())?;
                (n, n)
            }
        };
        // The kernel's NR_CPUS is at most 8192.
        if lo > hi || hi >= 8192 {
            return Err(bad());
        }
        if out.len() <= hi / 8 {
            out.resize(hi / 8 + 1, 0);
        }
        for n in lo..=hi {
            out[n / 8] |= 1 << (n % 8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(json: &str) -> Vec<Property> {
        of(&serde_json::from_str(json).expect("resources"), None).expect("properties")
    }

    #[test]
    fn memory_cpu_pids_io() {
        let p = props(
            r#"{"memory": {"limit": 104857600, "reservation": 1048576, "swap": 209715200}, "cpu": {"shares": 1024, "quota": 50000, "period": 100000,
                "cpus": "0-2,9", "mems": "0"}, "pids": {"limit": 20}, "blockIO": {"weight": 1000}}"#,
        );
        let want: Vec<Property> = vec![
            ("MemoryMax".into(), Value::U64(104857600)),
            ("MemoryLow".into(), Value::U64(1048576)),
            ("MemorySwapMax".into(), Value::U64(104857600)),
            ("CPUWeight".into(), Value::U64(cpu::weight(1024))),
            ("CPUQuotaPeriodUSec".into(), Value::U64(100000)),
            ("CPUQuotaPerSecUSec".into(), Value::U64(500000)),
            ("AllowedCPUs".into(), Value::bytes(&[0b0000_0111, 0b0000_0010])),
            ("AllowedMemoryNodes".into(), Value::bytes(&[1])),
            ("TasksMax".into(), Value::U64(20)),
            ("IOWeight".into(), Value::U64(10000)),
        ];
        assert_eq!(p, want);
    }

    #[test]
    fn unlimited_and_unset() {
        let p = props(r#"{"memory": {"limit": -1, "swap": 0}, "pids": {"limit": -1}, "cpu": {"quota": -1, "period": 0}}"#);
        assert_eq!(
            p,
            vec![("MemoryMax".into(), Value::U64(INFINITY)), ("CPUQuotaPerSecUSec".into(), Value::U64(INFINITY)), ("TasksMax".into(), Value::U64(INFINITY))]
        );
        assert!(props(r#"{"memory": {"limit": 0}, "pids": {"limit": 0}, "cpu": {"shares": 0}}"#).is_empty());
    }

    #[test]
    fn quota_rounds_up_to_whole_percent() {
        assert_eq!(quota_per_sec(20000, 100000), 200000);
        assert_eq!(quota_per_sec(12345, 100000), 130000);
        assert_eq!(quota_per_sec(1000, 0), 10000, "default period 100 ms");
    }

    #[test]
    fn unified_keys_with_a_property() {
        let p = props(r#"{"unified": {"memory.high": "5000000", "io.max": "8:0 rbps=1"}}"#);
        assert_eq!(p, vec![("MemoryHigh".into(), Value::U64(5000000))]);
        let e = of(&serde_json::from_str(r#"{"unified": {"pids.max": "lots"}}"#).expect("json"), None).expect_err("not a number").to_string();
        assert_eq!(e, "linux.resources.unified.pids.max: \"lots\" is not a number or \"max\"");
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(bitmask("f", "0").ok(), Some(vec![1]));
        assert_eq!(bitmask("f", "8-9").ok(), Some(vec![0, 3]));
        assert_eq!(bitmask("f", "1, 3").ok(), Some(vec![0b1010]));
        for bad in ["", "a", "3-1", "1-", "9000"] {
            assert!(bitmask("f", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn swap_alone_on_update_uses_the_current_limit() {
        let r: LinuxResources = serde_json::from_str(r#"{"memory": {"swap": 300}}"#).expect("json");
        assert_eq!(of(&r, Some(100)).expect("props"), vec![("MemorySwapMax".into(), Value::U64(200))]);
    }
}
