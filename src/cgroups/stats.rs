//! Statistics in runc's `events --stats` form (runc's types/events.go, what containerd's runc shim
//! and go-runc decode), read from the cgroup v2 files. A controller that is not enabled simply
//! has no files, and its section stays empty.

use serde_json::{json, Map, Value};

use super::Cgroup;

/// Flat-keyed files: "key value" lines.
fn flat(cg: &Cgroup, file: &str) -> Vec<(String, u64)> {
    let text = cg.read(file).unwrap_or_default();
    text.lines().filter_map(|l| l.split_once(' ').and_then(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))).collect()
}

fn get(pairs: &[(String, u64)], key: &str) -> u64 {
    pairs.iter().find(|(k, _)| k == key).map_or(0, |(_, v)| *v)
}

/// A single-value file; "max" is u64::MAX as in runc.
fn single(cg: &Cgroup, file: &str) -> Option<u64> {
    let text = cg.read(file).ok()?;
    match text.trim() {
        "max" => Some(u64::MAX),
        t => t.parse().ok(),
    }
}

fn cpu(cg: &Cgroup) -> Value {
    let s = flat(cg, "cpu.stat");
    json!({
        "usage": {"total": get(&s, "usage_usec") * 1000, "kernel": get(&s, "system_usec") * 1000, "user": get(&s, "user_usec") * 1000},
        "throttling": {"periods": get(&s, "nr_periods"), "throttledPeriods": get(&s, "nr_throttled"), "throttledTime": get(&s, "throttled_usec") * 1000},
    })
}

fn memory(cg: &Cgroup) -> Value {
    if !cg.has("memory.current") {
        return json!({});
    }
    let stat = flat(cg, "memory.stat");
    let events = flat(cg, "memory.events");
    let usage = single(cg, "memory.current").unwrap_or(0);
    let limit = single(cg, "memory.max").unwrap_or(u64::MAX);
    let swap_usage = single(cg, "memory.swap.current").unwrap_or(0);
    let swap_limit = single(cg, "memory.swap.max").unwrap_or(u64::MAX);
    let raw: Map<String, Value> = stat.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    json!({
        "cache": get(&stat, "file"),
        "usage": {"limit": limit, "usage": usage, "max": single(cg, "memory.peak").unwrap_or(0), "failcnt": get(&events, "max")},
        // v1 reported swap as memory+swap; runc keeps that for v2.
        "swap": {"limit": if swap_limit == u64::MAX { u64::MAX } else { swap_limit.saturating_add(limit) }, "usage": swap_usage + usage, "failcnt": 0},
        "kernel": {"limit": 0, "failcnt": 0},
        "kernelTCP": {"limit": 0, "failcnt": 0},
        "raw": raw,
    })
}

fn pids(cg: &Cgroup) -> Value {
    let limit = single(cg, "pids.max").filter(|&l| l != u64::MAX).unwrap_or(0);
    json!({"current": single(cg, "pids.current").unwrap_or(0), "limit": limit})
}

/// io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per device.
fn blkio(cg: &Cgroup) -> Value {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for line in cg.read("io.stat").unwrap_or_default().lines() {
        let mut words = line.split_whitespace();
        let Some((major, minor)) = words.next().and_then(|d| d.split_once(':')) else { continue };
        let (Ok(major), Ok(minor)) = (major.parse::<u64>(), minor.parse::<u64>()) else { continue };
        for kv in words {
            let Some((k, v)) = kv.split_once('=') else { continue };
            let Ok(v) = v.parse::<u64>() else { continue };
            let entry = |op: &str| json!({"major": major, "minor": minor, "op": op, "value": v});
            match k {
                "rbytes" => bytes.push(entry("Read")),
                "wbytes" => bytes.push(entry("Write")),
                "rios" => ios.push(entry("Read")),
                "wios" => ios.push(entry("Write")),
                _ => {}
            }
        }
    }
    json!({"ioServiceBytesRecursive": bytes, "ioServicedRecursive": ios})
}

fn hugetlb(cg: &Cgroup) -> Value {
    let mut out = Map::new();
    let Ok(entries) = std::fs::read_dir(&cg.path) else { return Value::Object(out) };
    let mut sizes: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_prefix("hugetlb.")?.strip_suffix(".current").map(str::to_string)))
        .filter(|s| !s.contains('.'))
        .collect();
    sizes.sort();
    for size in sizes {
        let usage = single(cg, &format!("hugetlb.{size}.current")).unwrap_or(0);
        let failcnt = get(&flat(cg, &format!("hugetlb.{size}.events")), "max");
        out.insert(size, json!({"usage": usage, "failcnt": failcnt}));
    }
    Value::Object(out)
}

/// Parse a cpuset list ("0-2,4") into its members.
fn cpuset_list(s: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u64>().ok()),
        }
    }
    out
}

fn cpuset(cg: &Cgroup) -> Value {
    if !cg.has("cpuset.cpus.effective") {
        return json!({});
    }
    json!({
        "cpus": cpuset_list(&cg.read("cpuset.cpus.effective").unwrap_or_default()),
        "mems": cpuset_list(&cg.read("cpuset.mems.effective").unwrap_or_default()),
    })
}

/// runc's `data` of a stats event, its sections in runc's order (its Stats struct).
#[derive(serde::Serialize)]
pub struct Stats {
    cpu: Value,
    cpuset: Value,
    memory: Value,
    pids: Value,
    blkio: Value,
    hugetlb: Value,
    intel_rdt: Value,
    network_interfaces: Value,
}

pub fn read(cg: &Cgroup) -> Stats {
    Stats {
        cpu: cpu(cg),
        cpuset: cpuset(cg),
        memory: memory(cg),
        pids: pids(cg),
        blkio: blkio(cg),
        hugetlb: hugetlb(cg),
        intel_rdt: json!({}),
        network_interfaces: Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::resources::testdir;

    #[test]
    fn runc_shape_from_v2_files() {
        let cg = testdir(&[
            ("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 4\nthrottled_usec 20\n"),
            ("memory.current", "4096\n"),
            ("memory.max", "8192\n"),
            ("memory.swap.current", "0\n"),
            ("memory.swap.max", "max\n"),
            ("memory.stat", "anon 1000\nfile 3000\n"),
            ("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n"),
            ("pids.current", "3\n"),
            ("pids.max", "max\n"),
            ("io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n"),
            ("hugetlb.2MB.current", "0\n"),
            ("hugetlb.2MB.events", "max 0\n"),
            ("hugetlb.2MB.rsvd.current", "0\n"),
            ("cpuset.cpus.effective", "0-2,5\n"),
            ("cpuset.mems.effective", "0\n"),
        ]);
        let d = serde_json::to_value(read(&cg)).expect("json");
        assert_eq!(d["cpu"]["usage"]["total"], 1_500_000);
        assert_eq!(d["cpu"]["throttling"]["throttledPeriods"], 4);
        assert_eq!(d["memory"]["usage"]["usage"], 4096);
        assert_eq!(d["memory"]["usage"]["limit"], 8192);
        assert_eq!(d["memory"]["usage"]["failcnt"], 2);
        assert_eq!(d["memory"]["swap"]["limit"], u64::MAX);
        assert_eq!(d["memory"]["cache"], 3000);
        assert_eq!(d["memory"]["raw"]["anon"], 1000);
        assert_eq!(d["pids"], json!({"current": 3, "limit": 0}));
        assert_eq!(d["blkio"]["ioServiceBytesRecursive"][1], json!({"major": 8, "minor": 0, "op": "Write", "value": 200}));
        assert_eq!(d["hugetlb"], json!({"2MB": {"usage": 0, "failcnt": 0}}));
        assert_eq!(d["cpuset"]["cpus"], json!([0, 1, 2, 5]));
    }
}
