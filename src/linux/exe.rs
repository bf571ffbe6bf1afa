//! The runtime's own executable, as a container could reach it. When init or an exec'd process
//! execs `/proc/self/exe` (directly, or as a `#!/proc/self/exe` interpreter), the kernel runs the
//! runtime binary inside the container; any process there can then hold it through
//! `/proc/PID/exe` and, once it exits, reopen it for writing and replace the host's runtime
//! (CVE-2019-5736).
//!
//! So every command that starts a container process first makes sure it runs from a read-only
//! mount: if the binary's mount is not read-only already, it clones the mount of that one file
//! (`open_tree`, detached: attached nowhere, reachable only through the fd), makes the clone
//! read-only, and re-execs itself from it with `execveat`. From then on `/proc/self/exe` of this
//! process and of every child names the file on that read-only mount, and reopening it for
//! writing fails with EROFS. No copy of the binary is made (a memfd copy cost runc ~9 ms per
//! spawn). Measured on the 2-core dev host (release build, 4 MiB static binary, 400 alternating
//! runs): open_tree + mount_setattr + dissolving the clone cost ~0.1 ms; the re-exec itself
//! ~1.3 ms of CPU, 1.6-2.7 ms of wall time under load, per create/run/exec. Installed on a
//! read-only mount (a read-only /usr, or `mount --bind -o ro` over its directory), testudo pays
//! one statvfs (~20 µs) and nothing else.

use std::ffi::CString;
use std::os::fd::AsFd;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::statvfs::{statvfs, FsFlags};

use crate::error::{Context, Error, Result};
use crate::linux::mounts;

/// Set across the re-exec only; a second pass that still finds a writable mount fails closed
/// instead of looping.
const MARK: &str = "_TESTUDO_EXE_SEALED";

const SELF: &str = "/proc/self/exe";

/// Return when `/proc/self/exe` is on a read-only mount; otherwise re-exec from a read-only clone
/// of it (and so never return).
pub fn seal() -> Result<()> {
    let sealed_before = std::env::var_os(MARK).is_some();
    // Single-threaded here: nothing else reads the environment. Children must not inherit it.
    std::env::remove_var(MARK);
    let st = statvfs(SELF).context("statvfs /proc/self/exe")?;
    if st.flags().contains(FsFlags::ST_RDONLY) {
        return Ok(());
    }
    if sealed_before {
        return Err(Error::new("runtime binary: still on a writable mount after sealing it (CVE-2019-5736)"));
    }
    let tree = match mounts::open_tree(libc::AT_FDCWD, Path::new(SELF), false) {
        Ok(t) => t,
        // Without CAP_SYS_ADMIN we cannot clone the mount; that is safe only if we (and so every
        // process we start) could not write the binary anyway.
        Err(Errno::EPERM) if nix::unistd::access(SELF, nix::unistd::AccessFlags::W_OK).is_err() => return Ok(()),
        Err(e) => return Err(Error::sys("runtime binary: clone its mount (CVE-2019-5736)", e)),
    };
    let attrs = libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
    mounts::setattr(&tree, attrs, 0, 0, None, false).map_err(|e| Error::sys("runtime binary: make its mount read-only", e))?;
    let argv = cstrings(std::env::args_os())?;
    let mut env = cstrings(std::env::vars_os().map(|(k, v)| {
        let mut kv = k;
        kv.push("=");
        kv.push(v);
        kv
    }))?;
    env.push(CString::new(format!("{MARK}=1")).map_err(|_| Error::new("runtime binary: environment"))?);
    // An ELF binary, so the close-on-exec fd may go with the exec.
    let e = nix::unistd::fexecve(tree.as_fd(), &argv, &env).unwrap_err();
    Err(Error::sys("runtime binary: re-exec from its read-only mount", e))
}

fn cstrings(items: impl Iterator<Item = std::ffi::OsString>) -> Result<Vec<CString>> {
    items
        .map(|s| CString::new(s.into_encoded_bytes()).map_err(|_| Error::new("runtime binary: NUL byte in argv or environment")))
        .collect()
}
