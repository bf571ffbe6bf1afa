//! The container's cgroup v2 directory: create, freeze, kill, list, remove. On a hybrid host the
//! container lives in the v2 hierarchy mounted at /sys/fs/cgroup/unified; freeze, kill, procs and
//! device programs work there even where the resource controllers are bound to v1.

mod bpf;
mod controllers;
mod cpu;
mod devices;
mod hugetlb;
mod io;
mod memory;
mod pids;
mod rdma;
pub mod resources;
pub mod rootless;
mod rt;
pub mod stats;
pub mod sub;
pub mod systemd;
mod unified;
pub mod v1;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};

use crate::error::{Context, Error, Result};

/// Where the v2 hierarchy is mounted on this host.
pub fn mountpoint() -> Result<PathBuf> {
    for p in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if statfs(p).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC) {
            return Ok(PathBuf::from(p));
        }
    }
    Err(Error::new("no cgroup v2 hierarchy mounted at /sys/fs/cgroup or /sys/fs/cgroup/unified"))
}

/// Whether this process may make (or use) cgroup directory `path`: the nearest directory of it
/// that exists is writable. What a user was delegated (a subtree chowned to it) passes.
fn may_make(path: &Path) -> bool {
    use nix::unistd::AccessFlags as A;
    let existing = path.ancestors().find(|p| p.exists());
    existing.is_some_and(|p| nix::unistd::access(p, A::W_OK | A::X_OK).is_ok())
}

/// `linux.cgroupsPath` (absolute, or relative to the hierarchy root) or `/testudo/<id>`.
pub fn resolve(spec_path: Option<&Path>, id: &str) -> Result<PathBuf> {
    let rel = relative(spec_path, id)?;
    Ok(mountpoint()?.join(rel))
}

/// The container's cgroup relative to the hierarchy root.
fn relative(spec_path: Option<&Path>, id: &str) -> Result<PathBuf> {
    let rel: PathBuf = match spec_path {
        Some(p) if !p.as_os_str().is_empty() => {
            if p.components().any(|c| matches!(c, Component::ParentDir | Component::CurDir)) {
                return Err(Error::new(format!("cgroupsPath {p:?}: must not contain '.' or '..'")));
            }
            if is_systemd_form(p) {
                // Taken as a path it would be one directory named "system.slice:docker:abc" at
                // the root: not what the client meant, and outside every slice.
                return Err(Error::new(format!(
                    "cgroupsPath {p:?} is in the systemd form slice:prefix:name, which needs --systemd-cgroup; the cgroupfs driver takes a path"
                )));
            }
            p.components().filter(|c| matches!(c, Component::Normal(_))).collect()
        }
        _ => Path::new("testudo").join(id),
    };
    if rel.as_os_str().is_empty() {
        return Err(Error::new("cgroupsPath: the hierarchy root cannot hold a container"));
    }
    Ok(rel)
}

/// "slice:prefix:name" (the slice may be empty): three fields, no '/'.
fn is_systemd_form(p: &Path) -> bool {
    let s = p.as_os_str().as_encoded_bytes();
    !s.contains(&b'/') && s.iter().filter(|&&b| b == b':').count() == 2
}

pub struct Cgroup {
    pub path: PathBuf,
    /// Derived from the path and the host's mounts on first use, then kept: create asks for it
    /// four times (make, join, limits, the cgroup mount in init).
    legacy: std::cell::OnceCell<v1::Legacy>,
}

impl Cgroup {
    pub fn at(path: PathBuf) -> Cgroup {
        Cgroup { path, legacy: std::cell::OnceCell::new() }
    }

    /// Whether `create` will make this directory (true) or use one that is already there (false),
    /// decided before anything is made, so that the caller can record it first: cleanup removes
    /// only what this container made. An existing cgroup is used only when it holds no process
    /// and no child cgroup: a cgroupsPath naming an ancestor of another container, or a cgroup of
    /// the host's (`/system.slice`), would otherwise be emptied by this container's cleanup. A
    /// frozen one is refused (`refuse_frozen`).
    pub fn claim(path: &Path) -> Result<bool> {
        refuse_frozen(path)?;
        if !path.exists() {
            return Ok(true);
        }
        let cg = Cgroup::at(path.to_path_buf());
        if !cg.procs()?.is_empty() {
            return Err(Error::new(format!("cgroup {path:?} is already in use: it holds processes")));
        }
        if cg.children()?.next().is_some() {
            return Err(Error::new(format!("cgroup {path:?} is already in use: it has child cgroups")));
        }
        Ok(false)
    }

    /// Make the directory (`made`, from `claim`) and the v1 ones, or use the empty one there.
    pub fn create(path: PathBuf, made: bool) -> Result<Cgroup> {
        if made {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("create cgroup {parent:?}"))?;
            }
            match std::fs::create_dir(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::new(format!("cgroup {path:?} was made by someone else while this container was being created")));
                }
                r => r.with_context(|| format!("create cgroup {path:?}"))?,
            }
        }
        let cg = Cgroup::at(path);
        if !made && !cg.procs()?.is_empty() {
            return Err(Error::new(format!("cgroup {:?} is already in use: it holds processes", cg.path)));
        }
        cg.legacy().create()?;
        Ok(cg)
    }

    /// The parent directories `create` will make, in v2 and every v1 hierarchy, deepest first.
    pub fn missing_parents(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let dirs = std::iter::once(self.path.clone()).chain(self.legacy().hierarchies().into_iter().map(|(_, d)| d));
        for d in dirs {
            out.extend(d.ancestors().skip(1).take_while(|p| !p.exists()).map(Path::to_path_buf));
        }
        out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        out
    }

    /// The child cgroups (directories) of this one; none once it is gone.
    fn children(&self) -> Result<impl Iterator<Item = PathBuf>> {
        let entries = match std::fs::read_dir(&self.path) {
            Err(e) if gone(&e) => None,
            r => Some(r.with_context(|| format!("read cgroup {:?}", self.path))?),
        };
        Ok(entries.into_iter().flatten().flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()))
    }

    /// The container's cgroup v1 directories on a hybrid host (none on a pure v2 host).
    pub fn legacy(&self) -> &v1::Legacy {
        self.legacy.get_or_init(|| mountpoint().map(|root| v1::Legacy::of(&root, &self.path)).unwrap_or_default())
    }

    /// An fd for clone3(CLONE_INTO_CGROUP).
    pub fn open(&self) -> Result<OwnedFd> {
        nix::fcntl::open(&self.path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .with_context(|| format!("open cgroup {:?}", self.path))
    }

    /// A readable fd of the directory, what bpf(BPF_PROG_ATTACH) wants (an O_PATH fd is refused).
    pub fn dir(&self) -> Result<OwnedFd> {
        nix::fcntl::open(&self.path, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .with_context(|| format!("open cgroup {:?}", self.path))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Whether the kernel offers this file here (the controller is enabled, the feature built).
    pub fn has(&self, name: &str) -> bool {
        self.file(name).exists()
    }

    /// A `key value` line of a flat-keyed file such as memory.events.
    pub fn keyed(&self, file: &str, key: &str) -> Option<u64> {
        let text = std::fs::read_to_string(self.file(file)).ok()?;
        text.lines().find_map(|l| l.split_once(' ').filter(|(k, _)| *k == key).and_then(|(_, v)| v.trim().parse().ok()))
    }

    /// Processes the OOM killer killed in this cgroup: memory.events, or on a hybrid host the v1
    /// memory.oom_control; None without a memory controller in either.
    pub fn oom_kills(&self) -> Option<u64> {
        self.keyed("memory.events", "oom_kill").or_else(|| {
            let text = std::fs::read_to_string(self.legacy().dir("memory")?.join("memory.oom_control")).ok()?;
            text.lines().find_map(|l| l.strip_prefix("oom_kill ").and_then(|v| v.trim().parse().ok()))
        })
    }

    pub fn read(&self, name: &str) -> Result<String> {
        std::fs::read_to_string(self.file(name)).with_context(|| format!("read {:?}", self.file(name)))
    }

    pub fn write(&self, name: &str, value: &str) -> Result<()> {
        std::fs::write(self.file(name), value).with_context(|| format!("write {value:?} to {:?}", self.file(name)))
    }

    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    pub fn procs(&self) -> Result<Vec<i32>> {
        Ok(self.read("cgroup.procs")?.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    pub fn frozen(&self) -> bool {
        std::fs::read_to_string(self.file("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
    }

    /// Whether processes are left in the cgroup; `None` once it is gone. systemd removes a scope's
    /// cgroup by itself as soon as the scope is empty, so it can vanish between any two reads
    /// (ENOENT, or ENODEV through a file opened before).
    fn populated(&self) -> Result<Option<bool>> {
        match std::fs::read_to_string(self.file("cgroup.events")) {
            Ok(events) => Ok(Some(events.lines().any(|l| l.split_once(' ').is_some_and(|(k, v)| k == "populated" && v.trim() == "1")))),
            Err(e) if gone(&e) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("read {:?}", self.file("cgroup.events"))),
        }
    }

    /// Wait until `cgroup.events` says `key` is `want`. The kernel signals every change of the
    /// file with POLLPRI, so this sleeps in poll, not in a loop of reads. The file is read
    /// through the polled fd: kernfs re-arms the poll of an fd only when it is read.
    fn wait_event(&self, key: &str, want: bool, timeout_ms: i32) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let f = match std::fs::File::open(self.file("cgroup.events")) {
            // A cgroup that is gone is not populated (see `populated`).
            Err(e) if gone(&e) && key == "populated" && !want => return Ok(()),
            r => r.with_context(|| format!("open {:?}", self.file("cgroup.events")))?,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(timeout_ms as u64);
        let mut buf = [0u8; 512];
        loop {
            let n = match f.read_at(&mut buf, 0) {
                Err(e) if gone(&e) && key == "populated" && !want => return Ok(()),
                r => r.with_context(|| format!("read {:?}", self.file("cgroup.events")))?,
            };
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.lines().any(|l| l.split_once(' ').is_some_and(|(k, v)| k == key && (v.trim() == "1") == want)) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now()).as_millis() as i32;
            if left == 0 {
                return Err(Error::sys(format!("cgroup {:?}: wait for {key} {}", self.path, want as u8), Errno::ETIMEDOUT));
            }
            let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLPRI)];
            match poll(&mut fds, PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(Error::sys("poll cgroup.events", e)),
            }
        }
    }

    pub fn freeze(&self, on: bool) -> Result<()> {
        self.write("cgroup.freeze", if on { "1" } else { "0" })?;
        self.wait_event("frozen", on, 10_000)
    }

    /// SIGKILL every process in the cgroup, atomically (no fork can escape it).
    pub fn kill(&self) -> Result<()> {
        self.write("cgroup.kill", "1")
    }

    /// Kill what is left and wait for it to be gone; then, when this container made the cgroup
    /// (`made`), remove it with the child cgroups its processes made and the v1 directories. A
    /// cgroup that was there before (see `claim`) is emptied of the container's processes only.
    pub fn destroy(&self, made: bool) -> Result<()> {
        self.destroy_recorded(made, None)
    }

    /// `destroy`, removing of the v1 directories those create recorded it made (`v1_made`,
    /// whether or not it made the v2 one); None (a record from before): all of them if `made`.
    pub fn destroy_recorded(&self, made: bool, v1_made: Option<&[PathBuf]>) -> Result<()> {
        let legacy = || match v1_made {
            Some(list) => self.legacy().remove(Some(list)),
            None if made => self.legacy().remove(None),
            None => Ok(()),
        };
        let Some(populated) = self.populated()? else {
            return legacy();
        };
        if populated {
            if self.frozen() {
                let _ = self.write("cgroup.freeze", "0");
            }
            self.kill()?;
            self.wait_event("populated", false, 10_000)?;
        }
        if made {
            remove_tree(&self.path)?;
        }
        legacy()
    }
}

/// Refuse a cgroup that is frozen, or below a frozen one: the container's init would stop there
/// before it reports back, and `run` would wait, or return without having run the process.
/// runc refuses it too ("container's cgroup unexpectedly frozen"). v2's cgroup.freeze of the
/// cgroup and of each ancestor that exists, and on a hybrid host v1's freezer.state.
fn refuse_frozen(path: &Path) -> Result<()> {
    let root = mountpoint()?;
    for dir in path.ancestors().take_while(|d| d.starts_with(&root) && *d != root).filter(|d| d.exists()) {
        if Cgroup::at(dir.to_path_buf()).frozen() {
            let whose = if dir == path { String::new() } else { format!(", an ancestor of {path:?}") };
            return Err(Error::new(format!("cgroup {dir:?}{whose} is frozen (cgroup.freeze is 1): container's cgroup unexpectedly frozen")));
        }
    }
    if let Some(v1) = path.strip_prefix(&root).ok().and_then(v1::frozen) {
        return Err(Error::new(format!("cgroup {v1:?} is frozen (freezer.state): container's cgroup unexpectedly frozen")));
    }
    Ok(())
}

/// rmdir the parent directories a create made (`Cgroup::missing_parents`) that are empty now; one
/// that holds another container's cgroup (EBUSY on cgroupfs) stays.
pub fn remove_parents(parents: &[PathBuf]) -> Result<()> {
    for p in parents {
        match std::fs::remove_dir(p) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::EBUSY) | Some(libc::ENOTEMPTY)) => {}
            Err(e) => return Err(e).with_context(|| format!("remove cgroup {p:?}")),
        }
    }
    Ok(())
}

/// Whether an error from a cgroup file says the cgroup is gone (see `Cgroup::populated`).
fn gone(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENODEV))
}

/// rmdir a cgroup and, first, every cgroup below it (all empty: the caller killed them).
fn remove_tree(path: &Path) -> Result<()> {
    for child in Cgroup::at(path.to_path_buf()).children()? {
        remove_tree(&child)?;
    }
    match std::fs::remove_dir(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        r => r.with_context(|| format!("remove cgroup {path:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// systemd removes an emptied scope's cgroup by itself, so a delete can find the directory
    /// and then not its cgroup.events (ENOENT, or ENODEV through an open file): that cgroup is
    /// gone, not an error (`run` under --systemd-cgroup failed 1 to 6 times in 30 on it).
    #[test]
    fn a_cgroup_whose_files_vanished_is_gone() {
        let dir = std::env::temp_dir().join(format!("testudo-gone-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("child")).expect("mkdir");
        let cg = Cgroup::at(dir.clone());
        assert_eq!(cg.populated().expect("populated"), None);
        cg.wait_event("populated", false, 10).expect("a cgroup without cgroup.events is not populated");
        cg.destroy(false).expect("destroy of a vanished cgroup");
        assert!(dir.join("child").exists(), "destroy(made = false) removes nothing");
        remove_tree(&dir.join("missing")).expect("remove_tree of a missing cgroup");
        std::fs::remove_dir_all(&dir).expect("rm");
    }

    #[test]
    fn cgroups_path_forms() {
        assert_eq!(relative(None, "c1").expect("default"), Path::new("testudo/c1"));
        assert_eq!(relative(Some(Path::new("/a/b")), "c1").expect("absolute"), Path::new("a/b"));
        assert_eq!(relative(Some(Path::new("a:b")), "c1").expect("one colon is a name"), Path::new("a:b"));
        for systemd in ["system.slice:docker:abc", ":cri-containerd:abc"] {
            let e = relative(Some(Path::new(systemd)), "c1").expect_err(systemd).to_string();
            assert_eq!(
                e,
                format!("cgroupsPath {systemd:?} is in the systemd form slice:prefix:name, which needs --systemd-cgroup; the cgroupfs driver takes a path")
            );
        }
        assert!(relative(Some(Path::new("/")), "c1").is_err());
        assert!(relative(Some(Path::new("a/../b")), "c1").is_err());
    }
}
