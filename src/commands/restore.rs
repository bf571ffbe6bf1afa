//! `restore`: make a container again from a checkpoint, under a new id (or the checkpointed one,
//! which `checkpoint` freed): the bundle's config.json is loaded and saved as at create, the cgroup
//! made with its limits, then `criu restore` recreates the processes, their namespaces and mounts
//! in it. The restored init is our child (`--restore-sibling`): without --detach we wait for it
//! as `run` does, then delete the container; with it, we record it and leave.
//!
//! Order: the container directory (locked) → policy → config.json → the cgroup (recorded, made,
//! limits) → `criu restore`, in a mount namespace of its own where the rootfs is bound on
//! `criu-root` (CRIU wants its root to be a mount point; the bind never shows on the host and
//! dies with CRIU) → state.json and the pid file. Any failure before the
//! state is written leaves nothing, as a failed create does.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use oci_spec::runtime::LinuxNamespaceType as T;

use crate::audit::policy;
use crate::cli::Restore;
use crate::commands::{foreground, Global};
use crate::container::{self, hooks, state, Dir, Facts, Status};
use crate::criu::{self, Argv};
use crate::error::{Context, Error, Result};
use crate::linux::{namespaces, pidfd};

const ROOT_DIR: &str = "criu-root";
const PID_FILE: &str = "criu.pid";

pub fn run(g: &Global, criu_bin: &Path, r: &Restore) -> Result<i32> {
    if r.criu.lazy_pages {
        return Err(Error::new("--lazy-pages is not supported"));
    }
    if r.console_socket.is_some() {
        return Err(Error::new("--console-socket: a container with a terminal cannot be checkpointed by testudo, so none is restored"));
    }
    if g.rootless || g.systemd_cgroup {
        return Err(Error::new("restore is supported as root with the cgroupfs driver only (not rootless, not --systemd-cgroup)"));
    }
    let images = super::checkpoint::image_dir(r.criu.image_path.as_deref())?;
    let descriptors =
        std::fs::read(images.join(criu::DESCRIPTORS)).with_context(|| format!("read {:?} (is {images:?} a checkpoint?)", images.join(criu::DESCRIPTORS)))?;
    let descriptors: Vec<String> = serde_json::from_slice(&descriptors).map_err(|e| Error::new(format!("parse {:?}: {e}", images.join(criu::DESCRIPTORS))))?;
    // Blocked before the restore, so no signal meant for the container is lost or kills us first.
    let mask = foreground::block_signals()?;
    container::sweep(&g.root)?;
    let dir = Dir::create(&g.root, &r.id)?;
    let restored = match restore_in(g, criu_bin, r, &dir, &images, &descriptors) {
        Ok(x) => x,
        Err(e) => {
            if let Err(ce) = super::delete::clean_up_creating(&dir) {
                return Err(e.context(format!("restore failed, and so did its cleanup ({ce})")));
            }
            return Err(e);
        }
    };
    let (pidfd_, spec) = restored;
    let facts = dir.facts()?;
    let state_json = super::state_json(&facts, Status::Running).to_string();
    hooks::run_all_warn("poststart", spec.hooks().as_ref().and_then(|h| h.poststart().as_ref()), state_json.as_bytes());
    if r.detach {
        return Ok(0);
    }
    // Unlocked while we wait, so `kill`, `pause` or `exec` from elsewhere are not blocked.
    drop(dir);
    let code = foreground::wait(&pidfd_, None, &mask)?;
    if let Ok((dir, Some(facts))) = super::open(g, &r.id) {
        super::delete::destroy(&dir, &facts)?;
    }
    Ok(code)
}

fn restore_in(g: &Global, criu_bin: &Path, r: &Restore, dir: &Dir, images: &Path, descriptors: &[String]) -> Result<(OwnedFd, oci_spec::runtime::Spec)> {
    let policies = policy::in_force(g.policy.as_deref(), None)?;
    policy::record(&dir.path, &policies)?;
    let bundle = crate::spec::load(&r.bundle)?;
    crate::spec::validate(&bundle.spec)?;
    policy::enforce(&policies, &bundle.spec, "this container")?;
    let spec = bundle.spec;
    criu::supported(&spec)?;
    if let Some(h) = spec.hooks() {
        // runc runs them at CRIU's setup-namespaces notification, which only its RPC sends.
        if h.prestart().as_ref().is_some_and(|v| !v.is_empty()) || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty()) {
            return Err(Error::new("prestart and createRuntime hooks are not run at restore by testudo: refused"));
        }
    }
    let linux = spec.linux().as_ref().ok_or_else(|| Error::new("config.json: linux is missing"))?;
    std::fs::write(dir.file(container::CONFIG_FILE), &bundle.bytes).context("save config.json")?;
    let ns = namespaces::plan(linux.namespaces().as_deref().unwrap_or(&[]))?;
    let cg = crate::spawn::prepare::make_cgroup(linux, dir, false, &ns, true)?.ok_or_else(|| Error::new("no cgroup for the restored container"))?;
    let cg_root = cg
        .path
        .strip_prefix(crate::cgroups::mountpoint()?)
        .map(|p| Path::new("/").join(p))
        .map_err(|_| Error::new(format!("cgroup {:?} is outside the v2 hierarchy", cg.path)))?;

    let mut argv = Argv::new("restore");
    argv.common(&r.criu, images, "restore.log");
    let pid_file = dir.file(PID_FILE);
    argv.push("--pidfile", Some(pid_file.as_os_str()));
    argv.push("--restore-detached", None);
    argv.push("--restore-sibling", None);
    argv.push("--evasive-devices", None);
    argv.push("--cgroup-root", Some(cg_root.as_os_str()));
    for (o, v) in [("--lsm-profile", &r.lsm_profile), ("--lsm-mount-context", &r.lsm_mount_context)] {
        if let Some(v) = v {
            argv.push(o, Some(v.as_ref()));
        }
    }
    let masked: Vec<PathBuf> = linux.masked_paths().clone().unwrap_or_default().into_iter().map(PathBuf::from).collect();
    let mounts = crate::spawn::prepare::absolute_mounts(&spec, &bundle.dir);
    argv.mounts(&criu::external_mounts(&spec, &mounts, &masked, true));
    // Each pipe of the checkpointed stdio gets ours at the same number (CRIU inherits our 0-2).
    for (fd, what) in descriptors.iter().enumerate() {
        if what.starts_with("pipe:") {
            argv.inherit_fd(fd as i32, what);
        }
    }
    // Namespaces joined by path: the net and pid ones as CRIU's inherited fds (held open, not
    // close-on-exec, until CRIU is done), uts and ipc joined by CRIU.
    let mut held = Vec::new();
    for (t, path) in criu::joined(&spec) {
        if matches!(t, T::Network | T::Pid) {
            let fd = nix::fcntl::open(&path, nix::fcntl::OFlag::O_RDONLY, nix::sys::stat::Mode::empty()).with_context(|| format!("namespace {path:?}"))?;
            argv.inherit_fd(fd.as_raw_fd(), criu::ns_key(t));
            held.push(fd);
        } else if let Some(j) = criu::join_ns(t, &path) {
            argv.push("--join-ns", Some(&j));
        }
    }
    // CRIU wants its root to be a mount point: CRIU alone, in a mount namespace of its own, gets
    // the rootfs bound there (`criu::run`); here the directory stays an empty one, which no
    // removal of the container directory can descend from into the rootfs.
    let root = dir.file(ROOT_DIR);
    std::fs::create_dir(&root).with_context(|| format!("create {root:?}"))?;
    argv.push("--root", Some(root.as_os_str()));
    let log = r.criu.work_path.as_deref().unwrap_or(images).join("restore.log");
    let ran = criu::run(criu_bin, &argv, &log, Some((&bundle.rootfs, &root)));
    drop(held);
    std::fs::remove_dir(&root).with_context(|| format!("remove {root:?}"))?;
    ran?;

    let pid: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::new(format!("criu restore wrote no pid to {pid_file:?}")))?;
    let _ = std::fs::remove_file(&pid_file);
    // The restored init is our child (--restore-sibling): a pid that is not is refused.
    let fd = pidfd::open_child(pid)?;
    let facts = Facts {
        id: dir.id.clone(),
        oci_version: spec.version().clone(),
        pid,
        pid_start: state::proc_facts(pid).map(|p| p.start).ok_or_else(|| Error::new("restored init vanished"))?,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        cgroup: Some(cg.path.clone()),
        created: crate::log::rfc3339(SystemTime::now()),
        annotations: spec.annotations().clone().unwrap_or_default(),
    };
    state::write(&dir.file(container::STATE_FILE), &facts)?;
    if let Some(p) = &r.pid_file {
        super::create::write_pid_file(p, pid)?;
    }
    Ok((fd, spec))
}
