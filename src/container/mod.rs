//! A container as the runtime stores it: one directory under `--root` holding `state.json` (facts),
//! `config.json` (the exact bytes read at create) and, between create and start, `exec.fifo`.
//! Mutating commands hold `flock` on the directory and re-check existence after locking, so a
//! `delete` racing a `create` or another `delete` sees a consistent directory.

pub mod hooks;
pub mod id;
pub mod init;
pub mod rootless;
pub mod state;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::error::{Context, Error, Result};
pub use state::{CgroupRecord, Facts, Status};

pub const STATE_FILE: &str = "state.json";
pub const CONFIG_FILE: &str = "config.json";
pub const FIFO_FILE: &str = "exec.fifo";
pub const CGROUP_FILE: &str = "cgroup.json";

pub struct Dir {
    pub id: String,
    pub path: PathBuf,
    /// Held open for the flock; released when dropped (or at exit).
    lock: File,
}

impl Dir {
    /// Make a new container directory, locked. Fails if the id is taken. It is made under a name
    /// no id can have, locked, and only then renamed to the id: a `delete` never finds the
    /// directory of a live create unlocked (it would take an empty directory for one a killed
    /// create left, and remove it under the create).
    pub fn create(root: &Path, id: &str) -> Result<Dir> {
        id::validate(id)?;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(root).with_context(|| format!("state root {root:?}"))?;
        let path = root.join(id);
        if path.exists() {
            return Err(Error::new(format!("container {id:?} already exists")));
        }
        let temp = root.join(format!("{CREATING}{}.{}", std::process::id(), unique()));
        std::fs::DirBuilder::new().mode(0o700).create(&temp).with_context(|| format!("container directory {temp:?}"))?;
        let lock = File::open(&temp).with_context(|| format!("container directory {temp:?}"))?;
        flock_exclusive(&lock, &temp)?;
        match nix::fcntl::renameat2(nix::fcntl::AT_FDCWD, &temp, nix::fcntl::AT_FDCWD, &path, nix::fcntl::RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => Ok(Dir { id: id.to_string(), path, lock }),
            Err(e) => {
                let _ = std::fs::remove_dir(&temp);
                match e {
                    Errno::EEXIST => Err(Error::new(format!("container {id:?} already exists"))),
                    e => Err(Error::sys(format!("container directory {path:?}"), e)),
                }
            }
        }
    }

    /// Open and lock an existing container's directory.
    pub fn open(root: &Path, id: &str) -> Result<Dir> {
        id::validate(id)?;
        let path = root.join(id);
        let lock = match File::open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found(id)),
            r => r.with_context(|| format!("container directory {path:?}"))?,
        };
        flock_exclusive(&lock, &path)?;
        // A concurrent delete may have removed the directory while we waited for the lock.
        if nix::sys::stat::fstat(&lock).map(|s| s.st_nlink).unwrap_or(0) == 0 {
            return Err(not_found(id));
        }
        Ok(Dir { id: id.to_string(), path, lock })
    }

    /// Open and lock an existing container's directory if nobody holds its lock: None when it is
    /// locked (its command still runs) or gone.
    pub fn try_open(root: &Path, id: &str) -> Option<Dir> {
        id::validate(id).ok()?;
        let path = root.join(id);
        let lock = File::open(&path).ok()?;
        // SAFETY: flock on an fd owned by `lock`, which outlives the call.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return None;
        }
        if nix::sys::stat::fstat(&lock).map(|s| s.st_nlink).unwrap_or(0) == 0 {
            return None;
        }
        Some(Dir { id: id.to_string(), path, lock })
    }

    /// Open without locking, for readers (`state`, `list`): state.json is replaced atomically, so
    /// a reader sees the old or the new facts, never a torn file.
    pub fn peek(root: &Path, id: &str) -> Result<Dir> {
        id::validate(id)?;
        let path = root.join(id);
        match File::open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(not_found(id)),
            r => Ok(Dir { id: id.to_string(), lock: r.with_context(|| format!("container directory {path:?}"))?, path }),
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn facts(&self) -> Result<Facts> {
        state::read(&self.file(STATE_FILE)).with_context(|| format!("container {:?}", self.id))
    }

    /// Remove the directory and everything in it. It is first renamed, in one step, to a name no
    /// id can have (ids never contain a space), so a concurrent reader sees the whole container or
    /// none of it, never a directory half emptied. The lock fd stays valid until drop.
    pub fn remove(&self) -> Result<()> {
        let tomb = self.path.with_file_name(format!("{DELETING}{}.{}", std::process::id(), unique()));
        std::fs::rename(&self.path, &tomb).with_context(|| format!("remove {:?}", self.path))?;
        std::fs::remove_dir_all(&tomb).with_context(|| format!("remove {tomb:?}"))
    }

    pub fn lock_fd(&self) -> i32 {
        self.lock.as_raw_fd()
    }
}

/// Names of directories in transit under the root: a space, which no id has, and no id in them,
/// so an id of any length a directory name can have works (ids are at most NAME_MAX bytes).
const CREATING: &str = "creating ";
const DELETING: &str = "deleting ";

/// A number no other directory in transit of this process has.
fn unique() -> usize {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Remove what a killed `create` or `delete` left in transit under `root`. Such a directory is
/// locked for as long as its create or delete lives: one whose lock is free has no owner left.
pub fn sweep(root: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        r => r.with_context(|| format!("read {root:?}"))?,
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(CREATING) && !name.starts_with(DELETING) {
            continue;
        }
        let path = entry.path();
        let Ok(f) = File::open(&path) else { continue };
        // SAFETY: flock on an fd owned by `f`, which outlives the call.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            r => r.with_context(|| format!("remove {path:?}, left by a killed create or delete"))?,
        }
    }
    Ok(())
}

/// The container of this state root whose cgroup is `cg` or one of its ancestors, other than
/// `id`, with that cgroup (issue 25: a container nested in another's cgroup spends the outer
/// one's pids and memory budget, and the outer one's delete kills it and then fails). Taken from
/// the cgroup.json records: each is written before its container makes anything and stays until
/// its delete, so a create in progress and a stopped container whose cgroup is left are seen too;
/// it costs one small read per container of the root, at create only, and keeps no index that
/// could go stale. (A create racing this one into an ancestor finds the child cgroup this one made
/// and is refused by `Cgroup::claim`.) Containers of another state root are not seen.
pub fn cgroup_owner(root: &Path, id: &str, cg: &Path) -> Result<Option<(String, PathBuf)>> {
    let entries = match std::fs::read_dir(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        r => r.with_context(|| format!("read {root:?}"))?,
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == id || name.starts_with(CREATING) || name.starts_with(DELETING) || name.starts_with('.') {
            continue;
        }
        // An unreadable record is no container's cgroup as far as this check can tell.
        let Ok(Some(r)) = state::read_cgroup(&entry.path().join(CGROUP_FILE)) else { continue };
        if cg.starts_with(&r.path) {
            return Ok(Some((name.to_string(), r.path)));
        }
    }
    Ok(None)
}

pub fn not_found(id: &str) -> Error {
    Error::new(format!("container {id:?} does not exist"))
}

fn flock_exclusive(f: &File, path: &Path) -> Result<()> {
    loop {
        // SAFETY: flock on an fd owned by `f`, which outlives the call.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        match Errno::last() {
            Errno::EINTR => continue,
            e => return Err(Error::sys(format!("lock {path:?}"), e)),
        }
    }
}
