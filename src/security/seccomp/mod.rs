//! `linux.seccomp`: compiled to classic BPF in P0 with libseccomp, before the clone, so the
//! container never runs libseccomp; installed in the child with a raw seccomp(2).
//!
//! When, in the child (see `spawn::finish`):
//! - the last step before execve, so that execve is the one runtime syscall under the filter;
//!   without no_new_privileges, CAP_SYS_ADMIN (which installing a filter then needs) is held
//!   in the permitted set until then, and raised for the seccomp(2) call alone;
//! - with a `listenerPath`: before the container reports ready, because the notify fd must reach
//!   P0 (and through it the listener) while P0 still waits (`create` exits at ready).
//!
//! In front of libseccomp's program sits the ENOSYS stub (`enosys`), and compiled programs are
//! cached by input (`cache`), so a profile costs one compile per state root, not one per spawn.

mod budget;
mod cache;
pub(crate) mod compile;
mod enosys;
mod listener;

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction};

pub use listener::Listener;
pub mod recorder;

use crate::error::{Error, Result};

/// A compiled filter, ready for seccomp(SECCOMP_SET_MODE_FILTER).
pub struct Program {
    pub filter: Vec<libc::sock_filter>,
    pub flags: libc::c_ulong,
    /// Where the notify fd goes (SCMP_ACT_NOTIFY rules).
    pub listener: Option<Listener>,
    /// A filter P0 watches (`recorder`: recording, or listing denials): its notify fd is P0's,
    /// and this is how P0 answers.
    pub watch: Option<recorder::Answer>,
    /// Watched by a P0 that is not the host's root: the process turns dumpable again right
    /// before the filter goes on, or P0 could not take the notify fd (pidfd_getfd of a
    /// non-dumpable process needs CAP_SYS_PTRACE). Nothing of the container runs yet then; only
    /// the caller's own uid gains access, for the instants until the execve, which decides
    /// dumpability anew.
    pub dumpable: bool,
}

/// What P0 watches of the container's filter through its notify fd (`recorder`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watch {
    /// `profile`, `sandbox --record`: what the profile allows is noted and runs.
    Record,
    /// `sandbox --report`: what the profile denies with its default errno is noted and denied.
    Denials,
}

/// linux.seccomp compiled (`load`) and rewritten for what P0 watches. Listing denials needs a
/// profile whose default is an errno; without one, or with a listener of the profile's own, the
/// profile is enforced unwatched (the caller sees `watch` None).
pub fn load_watched(root: &Path, s: Option<&LinuxSeccomp>, watch: Option<Watch>) -> Result<Option<Program>> {
    let enforced = s.map(|s| load(root, s)).transpose()?;
    let mut p = match (watch, s, enforced) {
        (Some(Watch::Record), _, p) => Some(recorder::program(p)?),
        (Some(Watch::Denials), Some(s), Some(p)) if s.default_action() == LinuxSeccompAction::ScmpActErrno && p.listener.is_none() => {
            let errno = s.default_errno_ret().unwrap_or(libc::EPERM as u32);
            let errno = u16::try_from(errno).map_err(|_| Error::new(format!("seccomp: defaultErrnoRet {errno} out of range")))?;
            Some(recorder::denials(p, errno)?)
        }
        (_, _, p) => p,
    };
    if let Some(p) = p.as_mut().filter(|p| p.watch.is_some()) {
        p.dumpable = !crate::container::rootless::host_root();
    }
    Ok(p)
}

/// Compile `s`, or take it from the cache under the state root `root`.
pub fn load(root: &Path, s: &LinuxSeccomp) -> Result<Program> {
    build(s, Some(&cache::dir(root)))
}

fn build(s: &LinuxSeccomp, cache_dir: Option<&Path>) -> Result<Program> {
    let (flags, notify) = compile::flags(s)?;
    let listener =
        notify.then(|| Listener { path: s.listener_path().clone().unwrap_or_default(), metadata: s.listener_metadata().clone().unwrap_or_default() });
    let Some(dir) = cache_dir else { return Ok(Program { filter: compile::bpf(s)?, flags, listener, watch: None, dumpable: false }) };
    let json = serde_json::to_vec(s).map_err(|e| Error::new(format!("seccomp: {e}")))?;
    let input = cache::input(&json);
    let filter = match cache::get(dir, &input) {
        Some(f) => f,
        None => {
            let f = compile::bpf(s)?;
            // A cache that cannot be written only costs the next spawn a compile.
            if let Err(e) = cache::put(dir, &input, &f) {
                crate::log::debug(|| format!("seccomp: cache {dir:?}: {e}"));
            }
            f
        }
    };
    Ok(Program { filter, flags, listener, watch: None, dumpable: false })
}

/// Instructions from their 8-byte kernel encoding.
fn decode(bytes: &[u8]) -> Vec<libc::sock_filter> {
    bytes
        .chunks_exact(std::mem::size_of::<libc::sock_filter>())
        .map(|c| libc::sock_filter { code: u16::from_ne_bytes([c[0], c[1]]), jt: c[2], jf: c[3], k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]) })
        .collect()
}

/// Install the filter on this thread (the child's only one); the notify fd when asked for one.
pub fn install(p: &Program) -> Result<Option<OwnedFd>> {
    let prog = libc::sock_fprog { len: p.filter.len() as u16, filter: p.filter.as_ptr() as *mut libc::sock_filter };
    // SAFETY: `prog` points into `p.filter`, which outlives the call; the kernel copies the program.
    let r = unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, p.flags, &prog as *const libc::sock_fprog) };
    if r < 0 {
        let e = nix::errno::Errno::last();
        let why = if e == nix::errno::Errno::EACCES { " (without no_new_privileges a filter needs CAP_SYS_ADMIN)" } else { "" };
        return Err(Error::sys(format!("seccomp: install filter (flags {:#x}){why}", p.flags), e));
    }
    ON.store(true, Ordering::Relaxed);
    if p.flags & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER the kernel returned a new fd that nothing else owns.
        return Ok(Some(unsafe { crate::linux::procfs::own(r as i32) }));
    }
    Ok(None)
}

/// Whether this process installed a filter (`install`): what fails after it may be the profile.
static ON: AtomicBool = AtomicBool::new(false);

/// A setup failure after this process's filter went on, when its errno is one a profile gives
/// (EPERM by default, ENOSYS from the stub, EACCES), says the profile may be why: the failing
/// step already names its syscall.
pub fn blame(e: Error) -> Error {
    use nix::errno::Errno;
    match e.errno() {
        Some(Errno::EPERM | Errno::EACCES | Errno::ENOSYS) if ON.load(Ordering::Relaxed) => Error::new(format!("{e} (denied by the seccomp profile?)")),
        _ => e,
    }
}

/// Hand the notify fd and the container process state to the listener.
pub fn notify_listener(l: &Listener, fd: &OwnedFd, pid: i32, container_state: &[u8]) -> Result<()> {
    listener::send(l, fd, &listener::state(pid, &l.metadata, container_state)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(s: &LinuxSeccomp) -> Result<Program> {
        build(s, None)
    }

    fn spec(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).expect("seccomp json")
    }

    #[test]
    fn every_operator_and_flag_compiles() {
        let s = spec(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [
                {"names": ["read", "write", "no_such_syscall_in_any_kernel"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["kill"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_NE"}, {"index": 0, "value": 1, "op": "SCMP_CMP_GT"}]},
                {"names": ["lseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22, "args": [{"index": 2, "value": 3, "op": "SCMP_CMP_GE"}]},
                {"names": ["dup"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_LT"}]},
                {"names": ["dup2"], "action": "SCMP_ACT_TRAP", "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_LE"}]},
                {"names": ["ptrace"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["mount"], "action": "SCMP_ACT_KILL_THREAD"},
                {"names": ["umount2"], "action": "SCMP_ACT_TRACE", "errnoRet": 5},
                {"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}
            ]
        }));
        let p = compile(&s).expect("compile");
        assert_eq!(p.flags, libc::SECCOMP_FILTER_FLAG_TSYNC | libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW);
        assert!(p.listener.is_none());
        assert!(p.filter.len() > 20);
    }

    #[test]
    fn wrong_profiles_are_refused_with_the_field_named() {
        let bad = |v: serde_json::Value, needle: &str| {
            let e = match compile(&spec(v)) {
                Ok(_) => panic!("accepted, expected an error about {needle}"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains(needle), "{e} (expected {needle})");
        };
        bad(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}), "errnoRet");
        bad(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}),
            "out of range",
        );
        bad(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "index 6",
        );
        bad(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "valueTwo": 2, "op": "SCMP_CMP_EQ"}]}]}),
            "valueTwo",
        );
        bad(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}), "names is empty");
        bad(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}), "listenerPath");
        bad(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}),
            "listenerPath",
        );
        bad(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}), "default action");
        bad(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}), "WAIT_KILLABLE_RECV");
        assert!(serde_json::from_value::<LinuxSeccomp>(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]})).is_err());
        assert!(serde_json::from_value::<LinuxSeccomp>(serde_json::json!({"defaultAction": "SCMP_ACT_NOPE"})).is_err());
    }

    #[test]
    fn notify_asks_for_a_listener_fd() {
        let s = spec(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/l.sock", "listenerMetadata": "m",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        }));
        let p = compile(&s).expect("compile");
        let want = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
            | libc::SECCOMP_FILTER_FLAG_TSYNC
            | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH
            | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
        assert_eq!(p.flags, want);
        let l = p.listener.expect("listener");
        assert_eq!((l.path.to_str(), l.metadata.as_str()), (Some("/run/l.sock"), "m"));
    }

    #[test]
    fn the_shipped_profiles_compile() {
        for name in ["default.json", "build-sandbox.json"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("seccomp-profiles").join(name);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("shipped profile {path:?}: {e}"));
            let s: LinuxSeccomp = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            let p = compile(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(p.filter.len() > 50, "{name}");
        }
    }
}
