//! Landlock: the container's process may read and execute the whole root but write only beneath
//! the paths its config names — a file-system policy the kernel enforces whatever the mounts, uids
//! or capabilities say. Asked for by annotation (`testudo sandbox --landlock` sets it):
//!
//! - `org.testudo.landlock`: `required` (a kernel without Landlock is a create error) or
//!   `best-effort` (then the process runs without it);
//! - `org.testudo.landlock.rw`: the writable paths inside the container, `:`-separated. Existing
//!   files under /dev may be written too (/dev/null, a terminal); nothing may be made there.
//!
//! Applied after pivot_root and no_new_privileges (landlock_restrict_self needs one of
//! no_new_privileges and CAP_SYS_ADMIN), before seccomp, with every right of the best ABI the
//! kernel offers handled, so a right this code does not know of is denied, not left open.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::error::{Context, Error, Result};
use crate::linux::procfs;

pub const ANNOTATION: &str = "org.testudo.landlock";
pub const RW_ANNOTATION: &str = "org.testudo.landlock.rw";

const EXECUTE: u64 = 1 << 0;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
const WRITE_FILE: u64 = 1 << 1;
const TRUNCATE: u64 = 1 << 14;
const IOCTL_DEV: u64 = 1 << 15;
/// Every file-system right of ABI 1 (bits 0–12); 2 adds REFER, 3 TRUNCATE, 5 IOCTL_DEV.
const ABI1: u64 = (1 << 13) - 1;
const RULE_PATH_BENEATH: libc::c_int = 1;
const CREATE_RULESET_VERSION: libc::c_uint = 1;

#[derive(Debug, Clone)]
pub struct Plan {
    pub best_effort: bool,
    pub rw: Vec<PathBuf>,
}

/// The annotations, checked at create: a value that is not understood is an error, never a
/// Landlock that silently does not apply.
pub fn plan(annotations: Option<&HashMap<String, String>>) -> Result<Option<Plan>> {
    let Some(a) = annotations else { return Ok(None) };
    let best_effort = match a.get(ANNOTATION).map(String::as_str) {
        None => {
            if a.contains_key(RW_ANNOTATION) {
                return Err(Error::new(format!("annotation {RW_ANNOTATION} without {ANNOTATION}")));
            }
            return Ok(None);
        }
        Some("required") => false,
        Some("best-effort") => true,
        Some(other) => return Err(Error::new(format!("annotation {ANNOTATION}={other:?}: expected required or best-effort"))),
    };
    let rw: Vec<PathBuf> = a.get(RW_ANNOTATION).map(|v| v.split(':').filter(|p| !p.is_empty()).map(PathBuf::from).collect()).unwrap_or_default();
    if let Some(bad) = rw.iter().find(|p| !p.is_absolute()) {
        return Err(Error::new(format!("annotation {RW_ANNOTATION}: {bad:?} is not an absolute path")));
    }
    if !best_effort {
        abi().map_err(|e| e.context(format!("annotation {ANNOTATION}=required (best-effort runs without it)")))?;
    }
    Ok(Some(Plan { best_effort, rw }))
}

/// The kernel's Landlock ABI version.
fn abi() -> Result<i64> {
    // SAFETY: with a null attr, size 0 and the VERSION flag the kernel only returns a number.
    let v = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, std::ptr::null::<u8>(), 0usize, CREATE_RULESET_VERSION) };
    if v < 0 {
        return Err(Error::sys("landlock: not available in this kernel", Errno::last()));
    }
    Ok(v)
}

fn handled(abi: i64) -> u64 {
    let mut h = ABI1;
    if abi >= 2 {
        h |= 1 << 13;
    }
    if abi >= 3 {
        h |= 1 << 14;
    }
    if abi >= 5 {
        h |= 1 << 15;
    }
    h
}

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
}

#[repr(C, packed)]
struct PathBeneath {
    allowed_access: u64,
    parent_fd: i32,
}

/// Restrict this process (and what it executes) to the plan, in the container's root.
pub fn apply(p: &Plan) -> Result<()> {
    let abi = match abi() {
        Ok(v) => v,
        Err(_) if p.best_effort => return Ok(()),
        Err(e) => return Err(e),
    };
    let all = handled(abi);
    let attr = RulesetAttr { handled_access_fs: all };
    // SAFETY: the attr struct lives across the call and its size is passed with it.
    let fd = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, &attr as *const RulesetAttr, std::mem::size_of::<RulesetAttr>(), 0u32) };
    if fd < 0 {
        return Err(Error::sys("landlock: create ruleset", Errno::last()));
    }
    // SAFETY: the kernel just returned this fd to us.
    let ruleset = unsafe { procfs::own(fd as i32) };
    add(&ruleset, std::path::Path::new("/"), EXECUTE | READ_FILE | READ_DIR)?;
    // Device nodes that exist may be written (/dev/null, a tty): nothing may be made there.
    add(&ruleset, std::path::Path::new("/dev"), (WRITE_FILE | TRUNCATE | IOCTL_DEV) & all)?;
    for path in &p.rw {
        add(&ruleset, path, all)?;
    }
    // SAFETY: landlock_restrict_self takes the ruleset fd and flags by value.
    if unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) } < 0 {
        return Err(Error::sys("landlock: restrict self (needs noNewPrivileges)", Errno::last()));
    }
    Ok(())
}

fn add(ruleset: &OwnedFd, path: &std::path::Path, access: u64) -> Result<()> {
    let dir = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).with_context(|| format!("landlock: {path:?}"))?;
    let attr = PathBeneath { allowed_access: access, parent_fd: dir.as_raw_fd() };
    // SAFETY: the attr struct and the fd in it live across the call.
    let r = unsafe { libc::syscall(libc::SYS_landlock_add_rule, ruleset.as_raw_fd(), RULE_PATH_BENEATH, &attr as *const PathBeneath, 0u32) };
    if r < 0 {
        return Err(Error::sys(format!("landlock: allow {path:?}"), Errno::last()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_are_checked() {
        let a = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>();
        assert!(plan(None).expect("none").is_none());
        let p = plan(Some(&a(&[(ANNOTATION, "best-effort"), (RW_ANNOTATION, "/workspace:/tmp")]))).expect("plan").expect("some");
        assert_eq!(p.rw, [PathBuf::from("/workspace"), PathBuf::from("/tmp")]);
        assert!(plan(Some(&a(&[(ANNOTATION, "yes")]))).is_err());
        assert!(plan(Some(&a(&[(ANNOTATION, "best-effort"), (RW_ANNOTATION, "tmp")]))).is_err());
        assert!(plan(Some(&a(&[(RW_ANNOTATION, "/tmp")]))).is_err());
    }

    #[test]
    fn every_right_of_the_abi_is_handled() {
        assert_eq!(handled(1), 0x1fff);
        assert_eq!(handled(3), 0x7fff);
        assert_eq!(handled(6), 0xffff);
    }
}
