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
    subset(&p.effective, "effective", &p.permitted, "permitted")?;
    // Permitted (and so effective) capabilities outside the bounding set: capset allows them,
    // and execve takes them away again (a new permitted set is bounded by the bounding set, and
    // inheritable, the other source, cannot hold them). runc runs such a spec; so do we, with a
    // warning, and without them already in the runtime's own last steps: less than asked, never
    // more. What the process holds is what /proc/self/status shows either way.
    let beyond: CapsHashSet = p.permitted.difference(&p.bounding).cloned().collect();
    let p = if beyond.is_empty() {
        p
    } else {
        let mut names: Vec<String> = beyond.iter().map(|c| c.to_string()).collect();
        names.sort();
        crate::log::warn(&format!("capabilities.permitted: {} not in capabilities.bounding: dropped, the process will not have them", names.join(", ")));
        let keep = |s: &CapsHashSet| s.difference(&beyond).cloned().collect();
        Plan { permitted: keep(&p.permitted), effective: keep(&p.effective), ..p }
    };
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
/// bounding set), as a create error that names the sets.
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

/// Step 2, after the uid change: the exact permitted, inheritable, effective and ambient sets;
/// with `hold_admin`, CAP_SYS_ADMIN stays permitted (not effective) beyond the plan, for a
/// seccomp filter without no_new_privileges (`raise_admin`).
pub fn apply(p: &Plan, hold_admin: bool) -> Result<()> {
    let held;
    let permitted = if hold_admin {
        held = with_admin(&p.permitted);
        &held
    } else {
        &p.permitted
    };
    capset(&p.effective, permitted, &p.inheritable)?;
    caps::clear(None, CapSet::Ambient).map_err(|e| Error::new(format!("clear ambient capabilities: {e}")))?;
    for cap in &p.ambient {
        caps::raise(None, CapSet::Ambient, *cap).map_err(|e| Error::new(format!("raise ambient {cap}: {e}")))?;
    }
    nix::sys::prctl::set_keepcaps(false).map_err(|e| Error::sys("reset keep capabilities", e))
}

/// Whether CAP_SYS_ADMIN must be held beyond the plan until the seccomp filter goes on: without
/// no_new_privileges the kernel installs a filter only for a task with CAP_SYS_ADMIN effective.
/// Only if this process holds it now (one capget): without it no filter can go on at all, and
/// `seccomp::install` says so.
pub fn must_hold_admin(p: &Plan, filter_without_nnp: bool) -> bool {
    filter_without_nnp
        && !p.effective.contains(&Capability::CAP_SYS_ADMIN)
        && caps::has_cap(None, CapSet::Permitted, Capability::CAP_SYS_ADMIN).unwrap_or(false)
}

/// The held CAP_SYS_ADMIN made effective for the seccomp(2) call, the last step before execve,
/// where the kernel computes the new sets from the inheritable, bounding and ambient sets (and
/// the file's): permitted and effective before it do not reach the program (capabilities(7)).
pub fn raise_admin(p: &Plan) -> Result<()> {
    capset(&with_admin(&p.effective), &with_admin(&p.permitted), &p.inheritable)
}

/// The plan's exact sets again after `raise_admin`, where the process goes on without an execve
/// (a filter with a listener goes on before `start`).
pub fn drop_admin(p: &Plan) -> Result<()> {
    capset(&p.effective, &p.permitted, &p.inheritable)
}

fn with_admin(set: &CapsHashSet) -> CapsHashSet {
    let mut s = set.clone();
    s.insert(Capability::CAP_SYS_ADMIN);
    s
}

/// One capset(2) for the three base sets (the kernel checks them together: effective within the
/// new permitted, permitted within the old, inheritable within the bounding set). Its error
/// keeps the errno: EPERM reads "operation not permitted", as runc's does.
fn capset(effective: &CapsHashSet, permitted: &CapsHashSet, inheritable: &CapsHashSet) -> Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let bits = |s: &CapsHashSet| s.iter().fold(0u64, |m, c| m | c.bitmask());
    let (e, p, i) = (bits(effective), bits(permitted), bits(inheritable));
    let half = |shift: u32| Data { effective: (e >> shift) as u32, permitted: (p >> shift) as u32, inheritable: (i >> shift) as u32 };
    let mut hdr = Header { version: VERSION_3, pid: 0 };
    let data = [half(0), half(32)];
    // SAFETY: capset reads the header and two data structs (version 3) through the pointers,
    // which point to locals that live across the call.
    if unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr()) } < 0 {
        return Err(crate::error::last_os("set capabilities (capset)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(json: serde_json::Value) -> std::result::Result<Plan, String> {
        plan(Some(&serde_json::from_value(json).expect("caps json"))).map_err(|e| e.to_string())
    }

    #[test]
    fn sets_the_kernel_would_refuse_are_errors_naming_them() {
        // Permitted beyond bounding is what execve drops: left out, with a warning (as runc runs it).
        let c = plan_of(serde_json::json!({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL", "CAP_CHOWN", "CAP_SETUID"], "effective": ["CAP_CHOWN"]}));
        let c = c.expect("permitted beyond bounding runs");
        assert_eq!((c.permitted.len(), c.effective.len()), (1, 0), "{c:?}");
        let c = plan_of(serde_json::json!({"bounding": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL"], "effective": ["CAP_CHOWN"]}));
        assert_eq!(c.err().as_deref(), Some("capabilities.effective: CAP_CHOWN not in capabilities.permitted"));
        let c = plan_of(serde_json::json!({"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "inheritable": ["CAP_CHOWN"]}));
        assert_eq!(c.err().as_deref(), Some("capabilities.inheritable: CAP_CHOWN not in capabilities.bounding"));
        let ok = plan_of(serde_json::json!({"bounding": ["CAP_KILL", "CAP_CHOWN"], "permitted": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"]}));
        assert!(ok.is_ok(), "{:?}", ok.err());
    }

    /// Clients match runc's "operation not permitted": the errno is kept. capset acts on the
    /// calling thread only: this test's own thread drops everything, then asks for one back.
    #[test]
    fn a_failing_capset_keeps_its_errno() {
        let t = std::thread::spawn(|| {
            let none = CapsHashSet::new();
            capset(&none, &none, &none).expect("drop all, this thread only");
            let kill: CapsHashSet = [Capability::CAP_KILL].into_iter().collect();
            capset(&kill, &kill, &none).err().map(|e| e.to_string())
        });
        assert_eq!(t.join().expect("thread").as_deref(), Some("set capabilities (capset): operation not permitted"));
    }
}
