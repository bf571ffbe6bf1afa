//! `linux.resources.hugepageLimits` → hugetlb.<size>.max, and hugetlb.<size>.rsvd.max where the
//! kernel has reservation accounting (as runc), so that reserved-but-unfaulted pages count too.

use oci_spec::runtime::LinuxHugepageLimit;

use crate::error::{Error, Result};

use super::resources::Writes;
use super::Cgroup;

/// "2MB", "1GB": the page size as the kernel spells it in file names.
pub fn check(limits: &[LinuxHugepageLimit]) -> Result<()> {
    for l in limits {
        let s = l.page_size();
        let ok =
            s.len() > 2 && s.ends_with('B') && s[..s.len() - 2].bytes().all(|b| b.is_ascii_digit()) && matches!(s.as_bytes()[s.len() - 2], b'K' | b'M' | b'G');
        if !ok {
            return Err(Error::new(format!("linux.resources.hugepageLimits: invalid page size {s:?} (e.g. \"2MB\")")));
        }
        if l.limit() < -1 {
            return Err(Error::new(format!("linux.resources.hugepageLimits: invalid limit {} for {s}", l.limit())));
        }
    }
    Ok(())
}

pub fn plan(limits: &[LinuxHugepageLimit], cg: &Cgroup, out: &mut Writes) -> Result<()> {
    for l in limits {
        let max = format!("hugetlb.{}.max", l.page_size());
        if !cg.has(&max) {
            return Err(Error::new(format!("linux.resources.hugepageLimits: this kernel has no {} huge pages (no {max})", l.page_size())));
        }
        let v = if l.limit() == -1 { "max".to_string() } else { l.limit().to_string() };
        let rsvd = format!("hugetlb.{}.rsvd.max", l.page_size());
        if cg.has(&rsvd) {
            out.push((rsvd, v.clone()));
        }
        out.push((max, v));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroups::resources::testdir;

    #[test]
    fn sizes_and_files() {
        let limits: Vec<LinuxHugepageLimit> = serde_json::from_str(r#"[{"pageSize": "2MB", "limit": 4194304}]"#).expect("json");
        check(&limits).expect("valid");
        let cg = testdir(&[("hugetlb.2MB.max", "max"), ("hugetlb.2MB.rsvd.max", "max")]);
        let mut w = Writes::new();
        plan(&limits, &cg, &mut w).expect("plan");
        assert_eq!(w, vec![("hugetlb.2MB.rsvd.max".to_string(), "4194304".to_string()), ("hugetlb.2MB.max".to_string(), "4194304".to_string())]);
        let bad: Vec<LinuxHugepageLimit> = serde_json::from_str(r#"[{"pageSize": "../2MB", "limit": 1}]"#).expect("json");
        assert!(check(&bad).is_err());
        let gb: Vec<LinuxHugepageLimit> = serde_json::from_str(r#"[{"pageSize": "1GB", "limit": 1}]"#).expect("json");
        check(&gb).expect("valid");
        assert!(plan(&gb, &cg, &mut Writes::new()).expect_err("no such size").to_string().contains("no 1GB huge pages"));
    }
}
