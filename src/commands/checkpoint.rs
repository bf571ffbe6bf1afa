//! `checkpoint`: save a running container with CRIU (`criu dump`, or `pre-dump` for the memory
//! only). As runc does, a container dumped without --leave-running is destroyed afterwards (CRIU
//! has killed its processes): its cgroup and state go, poststop hooks run, and `restore` makes it
//! again under the same id.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::cli::Checkpoint;
use crate::commands::{open, Global};
use crate::container::{self, Status};
use crate::criu::{self, Argv};
use crate::error::{Context, Error, Result};

pub fn run(g: &Global, criu_bin: &Path, c: &Checkpoint) -> Result<i32> {
    if c.criu.lazy_pages || c.page_server.is_some() || c.status_fd.is_some() {
        return Err(Error::new("--lazy-pages, --page-server and --status-fd are not supported"));
    }
    let (dir, facts) = open(g, &c.id)?;
    let facts = facts.ok_or_else(|| Error::new(format!("container {:?} is still being created", c.id)))?;
    match super::status(&dir, Some(&facts)) {
        Status::Running | Status::Paused => {}
        s => return Err(Error::new(format!("container {:?} cannot be checkpointed: it is {}", c.id, s.as_str()))),
    }
    let spec = crate::spec::parse(&std::fs::read(dir.file(container::CONFIG_FILE)).context("read saved config.json")?)?;
    criu::supported(&spec)?;
    let cg = super::cgroup(&facts, "checkpoint")?;

    let images = image_dir(c.criu.image_path.as_deref())?;
    make_dir(&images)?;
    if let Some(w) = &c.criu.work_path {
        make_dir(w)?;
    }
    let parent = c.parent_path.as_deref().map(|p| parent_dir(&images, p)).transpose()?;

    let mut argv = Argv::new(if c.pre_dump { "pre-dump" } else { "dump" });
    argv.common(&c.criu, &images, "dump.log");
    argv.push("--tree", Some(facts.pid.to_string().as_ref()));
    argv.push("--root", Some(facts.rootfs.as_os_str()));
    // Frozen through the cgroup rather than one ptrace-seize at a time: a tree that forks while
    // it is being seized is caught whole.
    argv.push("--freeze-cgroup", Some(cg.path.as_os_str()));
    if let Some(p) = parent {
        argv.push("--prev-images-dir", Some(p.as_os_str()));
    }
    if c.pre_dump || parent.is_some() {
        argv.push("--track-mem", None);
    }
    if c.leave_running && !c.pre_dump {
        argv.push("--leave-running", None);
    }
    if !c.pre_dump {
        let mountinfo =
            std::fs::read_to_string(format!("/proc/{}/mountinfo", facts.pid)).with_context(|| format!("read the mounts of container {:?}", c.id))?;
        let masked = criu::masked_files(&spec, &mountinfo);
        let mounts = crate::spawn::prepare::absolute_mounts(&spec, &facts.bundle);
        argv.mounts(&criu::external_mounts(&spec, &mounts, &masked, false));
        for (t, path) in criu::joined(&spec) {
            if matches!(t, oci_spec::runtime::LinuxNamespaceType::Network | oci_spec::runtime::LinuxNamespaceType::Pid) {
                let ino = nix::sys::stat::stat(&path).with_context(|| format!("namespace {path:?}"))?.st_ino;
                let name = if t == oci_spec::runtime::LinuxNamespaceType::Pid { "pid" } else { "net" };
                argv.external(format!("{name}[{ino}]:{}", criu::ns_key(t)));
            }
        }
        write_descriptors(&images, facts.pid)?;
    }
    let log = c.criu.work_path.as_deref().unwrap_or(&images).join("dump.log");
    criu::run(criu_bin, &argv, &log, None).with_context(|| format!("container {:?}", c.id))?;
    if !(c.leave_running || c.pre_dump) {
        super::delete::destroy(&dir, &facts)?;
    }
    Ok(0)
}

/// `--image-path`, or `checkpoint` in the working directory (runc's default), made absolute.
pub fn image_dir(p: Option<&Path>) -> Result<PathBuf> {
    let p = p.unwrap_or(Path::new("checkpoint"));
    std::path::absolute(p).with_context(|| format!("image path {p:?}"))
}

fn make_dir(p: &Path) -> Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(p).with_context(|| format!("create {p:?}"))
}

/// CRIU takes the parent images relative to the image directory: so does --parent-path (runc).
fn parent_dir<'a>(images: &Path, parent: &'a Path) -> Result<&'a Path> {
    if parent.is_absolute() {
        return Err(Error::new(format!("--parent-path {parent:?} must be relative to the image path")));
    }
    let real = images.join(parent);
    if !real.is_dir() {
        return Err(Error::new(format!("--parent-path {parent:?}: {real:?} is not a directory of images")));
    }
    Ok(parent)
}

/// What fds 0-2 of the init are (`pipe:[N]`, a path): restore gives the restored init the
/// restoring caller's own in place of each pipe.
fn write_descriptors(images: &Path, pid: i32) -> Result<()> {
    let fds: Vec<String> =
        (0..3).map(|fd| std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default()).collect();
    let path = images.join(criu::DESCRIPTORS);
    std::fs::write(&path, serde_json::to_vec(&fds).map_err(|e| Error::new(e.to_string()))?).with_context(|| format!("write {path:?}"))
}
