//! `linux.resources.blockIO` → io.bfq.weight (when the BFQ scheduler offers it, as runc does) or
//! io.weight, and io.max throttles.

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use crate::error::{Error, Result};

use super::resources::Writes;
use super::Cgroup;

/// Leaf weights are v1's (CFQ), accepted when blkio is in a v1 hierarchy (`v1`).
pub fn check(b: &LinuxBlockIo, v1: bool) -> Result<()> {
    if !v1 && (b.leaf_weight().is_some() || b.weight_device().iter().flatten().any(|d| d.leaf_weight().is_some())) {
        return Err(Error::new("linux.resources.blockIO.leafWeight has no cgroup v2 equivalent"));
    }
    let weights = b.weight().into_iter().chain(b.weight_device().iter().flatten().filter_map(|d| d.weight()));
    for w in weights {
        if w != 0 && !(10..=1000).contains(&w) {
            return Err(Error::new(format!("linux.resources.blockIO: weight {w} is outside 10..1000")));
        }
    }
    Ok(())
}

fn throttles(b: &LinuxBlockIo) -> [(&'static str, &Option<Vec<LinuxThrottleDevice>>); 4] {
    [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ]
}

pub fn needed(b: &LinuxBlockIo) -> bool {
    b.weight().is_some_and(|w| w != 0)
        || b.weight_device().as_ref().is_some_and(|d| !d.is_empty())
        || throttles(b).iter().any(|(_, t)| t.as_ref().is_some_and(|t| !t.is_empty()))
}

/// blkio.weight (10..1000) → io.weight (1..10000), runc's ConvertBlkIOToIOWeightValue.
pub fn io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (w as u64 - 10) * 9999 / 990
}

pub fn plan(b: &LinuxBlockIo, cg: &Cgroup, out: &mut Writes) -> Result<()> {
    let bfq = cg.has("io.bfq.weight");
    let (file, convert): (&str, fn(u16) -> u64) = if bfq { ("io.bfq.weight", |w| w as u64) } else { ("io.weight", io_weight) };
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        out.push((file.into(), convert(w).to_string()));
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight().filter(|&w| w != 0) {
            out.push((file.into(), format!("{}:{} {}", d.major(), d.minor(), convert(w))));
        }
    }
    for (key, list) in throttles(b) {
        for t in list.iter().flatten() {
            // 0 removes the limit, as writing 0 did on v1.
            let rate = if t.rate() == 0 { "max".to_string() } else { t.rate().to_string() };
            out.push(("io.max".into(), format!("{}:{} {key}={rate}", t.major(), t.minor())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::resources::testdir;

    fn bio(json: &str) -> LinuxBlockIo {
        serde_json::from_str(json).expect("blockIO json")
    }

    #[test]
    fn weights_and_throttles() {
        assert_eq!((io_weight(10), io_weight(500), io_weight(1000)), (1, 4950, 10000));
        let spec = bio(r#"{"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
            "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}], "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 0}]}"#);
        let cg = testdir(&[("io.weight", "default 100\n")]);
        let mut w = Writes::new();
        plan(&spec, &cg, &mut w).expect("plan");
        let want: Writes = vec![
            ("io.weight".into(), "4950".into()),
            ("io.weight".into(), "8:0 910".into()),
            ("io.max".into(), "8:0 rbps=1048576".into()),
            ("io.max".into(), "8:16 wiops=max".into()),
        ];
        assert_eq!(w, want);
        // With BFQ the blkio weight is written as is.
        let cg = testdir(&[("io.weight", ""), ("io.bfq.weight", "default 100\n")]);
        let mut w = Writes::new();
        plan(&spec, &cg, &mut w).expect("plan");
        assert_eq!(&w[..2], &[("io.bfq.weight".to_string(), "500".to_string()), ("io.bfq.weight".to_string(), "8:0 100".to_string())]);
    }

    #[test]
    fn v1_only_settings_are_refused() {
        assert!(check(&bio(r#"{"leafWeight": 500}"#), false).is_err());
        assert!(check(&bio(r#"{"weight": 5}"#), false).is_err());
        assert!(check(&bio(r#"{"weight": 10}"#), false).is_ok());
    }
}
