//! The runtime's own executable, as a container could reach it. When init or an exec'd process
//! execs `/proc/self/exe` (directly, or as a `#!/proc/self/exe` interpreter), the kernel runs the
//! runtime binary inside the container; any process there can then hold it through
//! `/proc/PID/exe` and, once it exits, reopen it for writing and replace the host's runtime
//! (CVE-2019-5736).
//!
//! So every command that starts a container process first makes sure its exe file is on a
//! read-only mount: if the binary's mount is not read-only already, it clones the mount of that
//! one file (`open_tree`), makes the clone read-only, keeps it attached under /run/testudo.exe,
//! and moves `/proc/self/exe` there in place (`linux::exe_file`: ~0.2 ms). /run/testudo.exe
//! holds one such read-only bind mount of one file, named `DEV:INO` of the binary, that of the
//! binary that spawned last (`keep`): a second binary's copy replaces it. From then on
//! `/proc/self/exe` of this process and of every child names the file on that read-only mount,
//! and reopening it for writing fails with EROFS. No copy of the binary is made (a memfd copy
//! cost runc ~9 ms per spawn). Where the kernel cannot move the exe file (no
//! CONFIG_CHECKPOINT_RESTORE), it re-execs itself from the read-only mount instead, as it did
//! before: ~1.3 ms of CPU, 1.6-2.7 ms of wall time per create/run/exec (measured on the 2-core
//! dev host, release build, 4 MiB static binary). Installed on a read-only mount (a read-only
//! /usr, or `mount --bind -o ro` over its directory), testudo pays one statvfs (~20 µs) and
//! nothing else. Rootless, no mount can be cloned: a binary the user cannot write needs nothing
//! (no process we start can write it either), one it can write is re-executed from a sealed
//! memfd copy (`linux::exe_memfd`, ~4-6 ms).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::statvfs::{statvfs, FsFlags};

use crate::error::{Context, Error, Result};
use crate::linux::{exe_file, exe_memfd, mounts};

/// Set across the re-exec only; a second pass that still finds a writable mount fails closed
/// instead of looping.
const MARK: &str = "_TESTUDO_EXE_SEALED";

const SELF: &str = "/proc/self/exe";

/// `seal` before the command line is parsed, when argv names a command that starts a container
/// process: where `seal` has to fall back to a re-exec, the command line is then not parsed twice
/// (clap costs ~0.3 ms). Only a first pass
/// does anything, and any error is left for `seal`, which every such command calls after parsing
/// and which reports it.
pub fn seal_early() {
    let starts_a_process = std::env::args_os().skip(1).any(|a| a == "create" || a == "run" || a == "exec");
    if starts_a_process && std::env::var_os(MARK).is_none() {
        let _ = seal();
    }
}

/// Return when `/proc/self/exe` is on a read-only mount, moving it to a read-only clone of its
/// mount first when it is not (or, where that cannot be done, re-exec from that clone and so
/// never return).
pub fn seal() -> Result<()> {
    let sealed_before = std::env::var_os(MARK).is_some();
    // Single-threaded here: nothing else reads the environment. Children must not inherit it.
    std::env::remove_var(MARK);
    let st = statvfs(SELF).context("statvfs /proc/self/exe")?;
    if st.flags().contains(FsFlags::ST_RDONLY) {
        return Ok(());
    }
    if sealed_before && exe_memfd::is_sealed_self() {
        return Ok(());
    }
    if sealed_before {
        return Err(Error::new("runtime binary: still on a writable mount after sealing it (CVE-2019-5736)"));
    }
    let ro = match kept_copy()? {
        Some(fd) => fd,
        None => {
            let tree = match mounts::open_tree(libc::AT_FDCWD, Path::new(SELF), false) {
                Ok(t) => t,
                // Without CAP_SYS_ADMIN (rootless) we cannot clone the mount; that is safe as it is
                // if we (and so every process we start) could not write the binary anyway, and
                // otherwise we re-exec from a sealed copy (linux::exe_memfd).
                Err(Errno::EPERM) if nix::unistd::access(SELF, nix::unistd::AccessFlags::W_OK).is_err() => return Ok(()),
                Err(Errno::EPERM) => return reexec(&exe_memfd::sealed_copy()?),
                Err(e) => return Err(Error::sys("runtime binary: clone its mount (CVE-2019-5736)", e)),
            };
            let attrs = libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
            mounts::setattr(&tree, attrs, 0, 0, None, false).map_err(|e| Error::sys("runtime binary: make its mount read-only", e))?;
            // Kept for the next spawns when it can be; otherwise this detached copy serves this one.
            keep(&tree);
            open_file(Path::new(&format!("/proc/self/fd/{}", tree.as_raw_fd())), false).map_err(|e| Error::sys("runtime binary: open its read-only copy", e))?
        }
    };
    match exe_file::replace(&ro) {
        Ok(()) if statvfs(SELF).is_ok_and(|v| v.flags().contains(FsFlags::ST_RDONLY)) => Ok(()),
        Ok(()) => Err(Error::new("runtime binary: still on a writable mount after moving it (CVE-2019-5736)")),
        Err(e) => {
            crate::log::debug(|| format!("{e}; re-exec from the read-only copy instead"));
            reexec(&ro)
        }
    }
}

/// Whether no process holding only the host ids in `uids` and `gids`, and no capability over
/// the binary's owner, can open the binary for writing: not owned by one of those ids, its group
/// not one of them, no write bit for others, no ACL. Such a container (a sandbox's job: a user
/// namespace mapping host ids 100000 and up, or a user's own id, with no capability in the
/// host's) cannot do CVE-2019-5736's write whatever mount the binary is on, so `seal` (~0.2 ms)
/// buys it nothing. Any doubt (a stat or xattr that fails) answers false.
pub fn out_of_reach(uids: &[std::ops::Range<u64>], gids: &[std::ops::Range<u64>]) -> bool {
    out_of_reach_of(c"/proc/self/exe", uids, gids)
}

fn out_of_reach_of(file: &std::ffi::CStr, uids: &[std::ops::Range<u64>], gids: &[std::ops::Range<u64>]) -> bool {
    // No map: the container's processes hold the host's own ids, root's among them.
    if uids.is_empty() || gids.is_empty() {
        return false;
    }
    let Ok(st) = nix::sys::stat::stat(file) else { return false };
    let (uid, gid) = (u64::from(st.st_uid), u64::from(st.st_gid));
    if st.st_mode & 0o002 != 0 || uids.iter().any(|r| r.contains(&uid)) || gids.iter().any(|r| r.contains(&gid)) {
        return false;
    }
    // An ACL may grant write to any named user or group.
    let name = c"system.posix_acl_access";
    // SAFETY: both strings are NUL-terminated; a null buffer of size 0 asks only for the length.
    let n = unsafe { libc::getxattr(file.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    n < 0 && matches!(Errno::last(), Errno::ENODATA | Errno::EOPNOTSUPP)
}

/// Open the binary for reading (mapping and exec need that; O_PATH will not do for either).
fn open_file(path: &Path, nofollow: bool) -> std::result::Result<std::os::fd::OwnedFd, Errno> {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | if nofollow { OFlag::O_NOFOLLOW } else { OFlag::empty() };
    nix::fcntl::open(path, flags, nix::sys::stat::Mode::empty())
}

/// Where the read-only copy of a binary is kept, by its device and inode: one mount per binary
/// on the host, whatever --root a client passes (containerd passes one per namespace).
const KEPT_DIR: &str = "/run/testudo.exe";

fn kept_path(ours: &std::fs::Metadata) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    Path::new(KEPT_DIR).join(format!("{}:{}", ours.dev(), ours.ino()))
}

fn self_metadata() -> Result<std::fs::Metadata> {
    std::fs::metadata(SELF).context("stat /proc/self/exe")
}

/// The kept read-only copy of this very binary, if there is one: a read-only mount whose file is
/// the one we run (same device and inode), opened without following links.
fn kept_copy() -> Result<Option<std::os::fd::OwnedFd>> {
    use std::os::unix::fs::MetadataExt;
    let ours = self_metadata()?;
    let Ok(fd) = open_file(&kept_path(&ours), true) else {
        return Ok(None);
    };
    let theirs = nix::sys::stat::fstat(&fd).context("stat the kept runtime binary")?;
    let ro = nix::sys::statvfs::fstatvfs(&fd).is_ok_and(|v| v.flags().contains(FsFlags::ST_RDONLY));
    Ok((ro && theirs.st_dev == ours.dev() && theirs.st_ino == ours.ino()).then_some(fd))
}

/// Attach the read-only copy at its kept path, so later spawns use it directly. Closing
/// a detached copy dissolves it, and that waits for an expedited RCU grace period: perf showed it
/// at the exit of every create/run/exec (~3 ms of a `run`, measured against a read-only install).
/// One is kept at a time, that of the binary that spawned last: keeping a new one unmounts every
/// other (`drop_others`), so the host's mount table holds at most one /run/testudo.exe entry per
/// series of spawns of one binary, and no binary's inode stays pinned once another runs (issue 25:
/// one mount per binary path that ever ran piled up, five after a day of tests). Best effort: on
/// failure the detached copy is used alone.
fn keep(tree: &std::os::fd::OwnedFd) {
    use std::os::unix::fs::DirBuilderExt;
    let Ok(path) = self_metadata().map(|m| kept_path(&m)) else { return };
    if std::fs::DirBuilder::new().recursive(true).mode(0o700).create(KEPT_DIR).is_err() {
        return;
    }
    // One keeper at a time (an exclusive lock on the directory): two spawns racing here would
    // each replace the other's placeholder and stack their mounts, and a mount stacked on the
    // copy makes the binary's own dentry a mountpoint, which cannot be unlinked (EBUSY: cargo
    // could not replace the binary any more).
    let Ok(lock) = std::fs::File::open(KEPT_DIR) else { return };
    let Ok(_held) = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive) else { return };
    if kept_copy().is_ok_and(|k| k.is_some()) {
        return;
    }
    let create = || std::fs::OpenOptions::new().write(true).create_new(true).open(&path);
    // A file there that is no kept copy (a failed attempt, an unmount by hand) is replaced.
    let placeholder = create().or_else(|_| std::fs::remove_file(&path).and_then(|()| create()));
    if placeholder.is_err() {
        return;
    }
    drop(placeholder);
    drop_others(&path);
    use nix::fcntl::OFlag;
    if let Ok(dest) = nix::fcntl::open(&path, OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()) {
        if mounts::move_mount(tree, &dest).is_err() {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Unmount every kept copy but `ours`, under the keeper's lock: a binary that spawns again keeps
/// its own anew (one clone, ~0.2 ms). Every container's mount namespace copies the host's mount
/// table (measured: 32 kept copies cost ~0.6 ms per `run`), and each copy pins its binary's inode
/// (a rebuilt or upgraded runtime's old file could never be freed). A process that opened a copy
/// just before keeps using it: a detached mount lives while a file on it is open, read-only still.
fn drop_others(ours: &Path) {
    let Ok(entries) = std::fs::read_dir(KEPT_DIR) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path == ours {
            continue;
        }
        // Until nothing is mounted there (EINVAL): copies stacked by an older keeper go too.
        while nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH | nix::mount::MntFlags::UMOUNT_NOFOLLOW).is_ok() {}
        let _ = std::fs::remove_file(&path);
    }
}

/// Re-exec this command from the read-only (or sealed) copy (never returns on success).
fn reexec(exe: &std::os::fd::OwnedFd) -> Result<()> {
    let argv = cstrings(std::env::args_os())?;
    let mut env = cstrings(std::env::vars_os().map(|(k, v)| {
        let mut kv = k;
        kv.push("=");
        kv.push(v);
        kv
    }))?;
    env.push(CString::new(format!("{MARK}=1")).map_err(|_| Error::new("runtime binary: environment"))?);
    // An ELF binary, so the close-on-exec fd may go with the exec.
    let e = nix::unistd::fexecve(exe.as_fd(), &argv, &env).unwrap_err();
    Err(Error::sys("runtime binary: re-exec from its read-only copy", e))
}

fn cstrings(items: impl Iterator<Item = std::ffi::OsString>) -> Result<Vec<CString>> {
    items.map(|s| CString::new(s.into_encoded_bytes()).map_err(|_| Error::new("runtime binary: NUL byte in argv or environment"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn a_binary_is_out_of_reach_only_of_ids_that_cannot_write_it() {
        let dir = std::env::temp_dir().join(format!("testudo-exe-reach-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("bin");
        std::fs::write(&f, b"x").expect("file");
        let c = std::ffi::CString::new(f.as_os_str().as_encoded_bytes()).expect("path");
        let st = nix::sys::stat::stat(&f).expect("stat");
        let (own_u, own_g) = (u64::from(st.st_uid), u64::from(st.st_gid));
        let job = [100_000..165_536];
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert!(out_of_reach_of(&c, &job, &job), "0755, owned outside the map");
        assert!(!out_of_reach_of(&c, &[own_u..own_u + 1], &job), "owned by a mapped uid");
        assert!(!out_of_reach_of(&c, &job, &[own_g..own_g + 1]), "its group mapped");
        assert!(!out_of_reach_of(&c, &[], &[]), "no map: the host's own ids");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o757)).expect("chmod");
        assert!(!out_of_reach_of(&c, &job, &job), "writable by others");
        assert!(!out_of_reach_of(c"/nonexistent/testudo", &job, &job), "a stat that fails");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
