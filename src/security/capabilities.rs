//! The five capability sets exactly as the spec gives them. Inheritable is never filled in from
//! anything but the spec (CVE-2022-29162: runc once set it to the bounding set, so a file with
//! inheritable file caps gained them in the container).

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::LinuxCapabilities;

use crate::error::{Error, Result};

#[derive(Debug, Default, Clone)]
pub struct Plan {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

fn convert(set: &str, list: Option<&oci_spec::runtime::Capabilities>, host: &CapsHashSet) -> Result<CapsHashSet> {
    let mut out = CapsHashSet::new();
    for c in list.into_iter().flatten() {
        // oci-spec prints names without the CAP_ prefix.
        let name = format!("CAP_{}", c.to_string().trim_start_matches("CAP_"));
        let cap: Capability = name.parse().map_err(|_| Error::new(format!("capabilities.{set}: unknown capability {name:?}")))?;
        if !host.contains(&cap) {
            return Err(Error::new(format!("capabilities.{set}: {name} is not in this host's bounding set, so no container can have it")));
        }
        out.insert(cap);
    }
    Ok(out)
}

/// Check the sets against the kernel and the host's own bounding set.
pub fn plan(c: Option<&LinuxCapabilities>) -> Result<Plan> {
    let host = caps::read(None, CapSet::Bounding).map_err(|e| Error::new(format!("read bounding set: {e}")))?;
    let Some(c) = c else { return Ok(Plan::default()) };
    let p = Plan {
        bounding: convert("bounding", c.bounding().as_ref(), &host)?,
        effective: convert("effective", c.effective().as_ref(), &host)?,
        permitted: convert("permitted", c.permitted().as_ref(), &host)?,
        inheritable: convert("inheritable", c.inheritable().as_ref(), &host)?,
        ambient: convert("ambient", c.ambient().as_ref(), &host)?,
    };
    subset(&p.permitted, "permitted", &p.bounding, "bounding")?;
    subset(&p.effective, "effective", &p.permitted, "permitted")?;
    subset(&p.inheritable, "inheritable", &p.bounding, "bounding")?;
    // The kernel raises an ambient capability only if it is permitted and inheritable. runc's own
    // default spec lists ambient capabilities without inheritable ones and runc goes on without
    // them; so do we. This can only ever grant less than asked, never more.
    let (ambient, dropped): (CapsHashSet, CapsHashSet) = p.ambient.iter().partition(|c| p.permitted.contains(c) && p.inheritable.contains(c));
    if !dropped.is_empty() {
        let mut names: Vec<String> = dropped.iter().map(|c| c.to_string()).collect();
        names.sort();
        crate::log::warn(&format!("capabilities.ambient: {} not raised: not both permitted and inheritable", names.join(", ")));
    }
    Ok(Plan { ambient, ..p })
}

/// What the kernel would refuse at capset (effective beyond permitted, inheritable beyond the
/// bounding set) or drop at execve (permitted beyond the bounding set), as a create error that
/// names the sets.
fn subset(set: &CapsHashSet, name: &str, of: &CapsHashSet, of_name: &str) -> Result<()> {
    let mut extra: Vec<String> = set.difference(of).map(|c| c.to_string()).collect();
    if extra.is_empty() {
        return Ok(());
    }
    extra.sort();
    Err(Error::new(format!("capabilities.{name}: {} not in capabilities.{of_name}", extra.join(", "))))
}

/// Step 1, while still privileged: shrink the bounding set and keep the permitted set across the
/// coming uid change.
pub fn drop_bounding(p: &Plan) -> Result<()> {
    // One prctl per capability to drop, nothing else: this runs on every spawn.
    for cap in caps::all() {
        if p.bounding.contains(&cap) {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes a capability number; no memory is passed.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap.index() as libc::c_ulong, 0, 0, 0) } < 0 {
            match nix::errno::Errno::last() {
                // A capability newer than the running kernel is in no set anyway.
                nix::errno::Errno::EINVAL => {}
                e => return Err(Error::sys(format!("drop {cap} from the bounding set"), e)),
            }
        }
    }
    nix::sys::prctl::set_keepcaps(true).map_err(|e| Error::sys("keep capabilities", e))
}

/// Step 2, after the uid change: the exact permitted, inheritable, effective and ambient sets.
pub fn apply(p: &Plan) -> Result<()> {
    let set = |which: CapSet, name: &str, v: &CapsHashSet| caps::set(None, which, v).map_err(|e| Error::new(format!("set {name} capabilities: {e}")));
    // Effective must shrink before permitted can, inheritable needs its caps permitted.
    set(CapSet::Effective, "effective", &p.effective.intersection(&p.permitted).cloned().collect())?;
    set(CapSet::Permitted, "permitted", &p.permitted)?;
    set(CapSet::Inheritable, "inheritable", &p.inheritable)?;
    set(CapSet::Effective, "effective", &p.effective)?;
    caps::clear(None, CapSet::Ambient).map_err(|e| Error::new(format!("clear ambient capabilities: {e}")))?;
    for cap in &p.ambient {
        caps::raise(None, CapSet::Ambient, *cap).map_err(|e| Error::new(format!("raise ambient {cap}: {e}")))?;
    }
    nix::sys::prctl::set_keepcaps(false).map_err(|e| Error::sys("reset keep capabilities", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(json: serde_json::Value) -> std::result::Result<Plan, String> {
        plan(Some(&serde_json::from_value(json).expect("caps json"))).map_err(|e| e.to_string())
    }

    #[test]
    fn sets_the_kernel_would_refuse_or_drop_are_errors_naming_them() {
        let c = plan_of(serde_json::json!({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL", "CAP_CHOWN", "CAP_SETUID"], "effective": []}));
        assert_eq!(c.err().as_deref(), Some("capabilities.permitted: CAP_CHOWN, CAP_SETUID not in capabilities.bounding"));
        let c = plan_of(serde_json::json!({"bounding": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL"], "effective": ["CAP_CHOWN"]}));
        assert_eq!(c.err().as_deref(), Some("capabilities.effective: CAP_CHOWN not in capabilities.permitted"));
        let c = plan_of(serde_json::json!({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "inheritable": ["CAP_CHOWN"]}));
        assert_eq!(c.err().as_deref(), Some("capabilities.inheritable: CAP_CHOWN not in capabilities.bounding"));
        let ok = plan_of(serde_json::json!({"bounding": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"]}));
        assert!(ok.is_ok(), "{:?}", ok.err());
    }
}
