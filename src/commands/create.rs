//! `create`: set up a container and leave its init waiting on exec.fifo. Also the first half of
//! `run`. After any failure nothing is left: no state dir, no cgroup, no process, no mount.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::SystemTime;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::cgroups::{self, Cgroup};
use crate::cli::CreateOpts;
use crate::commands::Global;
use crate::container::{self, state, CgroupRecord, Dir, Facts};
use crate::error::{Context, Error, Result};
use crate::linux::{fds, namespaces, rlimits, sysctl, tty};
use crate::security::{capabilities, seccomp};
use crate::spawn::parent::{self, Launched, Prepared};

pub fn run(g: &Global, opts: &CreateOpts, id: &str) -> Result<i32> {
    create(g, opts, id, StartBy::Fifo)?;
    Ok(0)
}

#[derive(PartialEq, Eq, Clone, Copy)]
pub enum StartBy {
    /// `create`: init waits on exec.fifo for a later `start`.
    Fifo,
    /// `run`: init waits for Start on the sync socket from this same process.
    Socket { detach: bool },
}

pub struct Created {
    pub dir: Dir,
    pub prepared: Prepared,
    pub launched: Launched,
}

pub fn create(g: &Global, opts: &CreateOpts, id: &str, mode: StartBy) -> Result<Created> {
    let dir = Dir::create(&g.root, id)?;
    match build(&g.root, g.systemd_cgroup, opts, &dir, mode) {
        Ok((prepared, launched)) => Ok(Created { dir, prepared, launched }),
        Err(e) => {
            // What cleanup needs is in the directory, as for a create that was killed.
            if let Err(ce) = super::delete::clean_up_creating(&dir) {
                return Err(e.context(format!("create failed, and so did its cleanup ({ce})")));
            }
            Err(e)
        }
    }
}

fn build(root: &Path, systemd: bool, opts: &CreateOpts, dir: &Dir, mode: StartBy) -> Result<(Prepared, Launched)> {
    let bundle = crate::spec::load(&opts.bundle)?;
    crate::spec::validate(&bundle.spec)?;
    let spec = &bundle.spec;
    let mut process = spec.process().clone().ok_or_else(|| Error::new("config.json: process is missing"))?;
    let linux = spec.linux().as_ref().ok_or_else(|| Error::new("config.json: linux is missing"))?;
    let terminal = process.terminal().unwrap_or(false);
    let detached = !matches!(mode, StartBy::Socket { detach: false });
    tty::require_socket_or_foreground(terminal, opts.console_socket.is_some(), detached)?;

    let ns = namespaces::plan(linux.namespaces().as_deref().unwrap_or(&[]))?;
    namespaces::check(&ns, spec)?;
    if let Some(s) = linux.sysctl() {
        sysctl::check(s, &ns)?;
    }
    rlimits::check(process.rlimits().as_deref().unwrap_or(&[]))?;
    let caps = capabilities::plan(process.capabilities().as_ref())?;
    let seccomp = linux.seccomp().as_ref().map(|s| seccomp::load(root, s)).transpose()?;
    let preserve_fds = fds::preserved(opts.preserve_fds)?;
    fds::check_open(preserve_fds)?;
    if let Some(vars) = fds::listen_env() {
        let mut env: Vec<String> =
            process.env().clone().unwrap_or_default().into_iter().filter(|kv| !kv.starts_with("LISTEN_FDS=") && !kv.starts_with("LISTEN_PID=")).collect();
        env.extend(vars);
        process.set_env(Some(env));
    }
    let console = opts.console_socket.as_deref().map(tty::connect).transpose()?;
    std::fs::write(dir.file(container::CONFIG_FILE), &bundle.bytes).context("save config.json")?;

    // Always: without device rules the device program still denies all but the default nodes.
    let none = oci_spec::runtime::LinuxResources::default();
    // Recorded before anything is made: a create killed from here on leaves delete what to remove.
    let (cg, placeholder) = if systemd {
        let annotations = spec.annotations().clone().unwrap_or_default();
        cgroups::systemd::create(
            &dir.file(container::CGROUP_FILE),
            linux.cgroups_path().as_deref(),
            &dir.id,
            linux.resources().as_ref().unwrap_or(&none),
            &annotations,
        )?
    } else {
        let cg_path = cgroups::resolve(linux.cgroups_path().as_deref(), &dir.id)?;
        let made = Cgroup::claim(&cg_path)?;
        state::write(&dir.file(container::CGROUP_FILE), &CgroupRecord { path: cg_path.clone(), made, unit: None })?;
        (Cgroup::create(cg_path, made)?, None)
    };
    let cgroup_fd = cg.open()?;
    let legacy_procs = cg.legacy().open_procs()?;
    cgroups::resources::apply(&cg, linux.resources().as_ref().unwrap_or(&none), linux.devices().as_deref().unwrap_or(&[]), false)?;
    let fifo = match mode {
        StartBy::Fifo => Some(make_fifo(&dir.file(container::FIFO_FILE))?),
        StartBy::Socket { .. } => None,
    };
    let mounts = parent::absolute_mounts(spec, &bundle.dir);
    let mount_trees = parent::idmapped_trees(spec, &mounts, &ns)?;
    let prepared = Prepared {
        id: dir.id.clone(),
        spec: bundle.spec,
        process,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        mounts,
        mount_trees,
        ns,
        caps,
        seccomp,
        cgroup: cg,
        cgroup_fd,
        legacy_procs,
        fifo,
        console,
        preserve_fds,
        no_pivot: opts.no_pivot,
        new_keyring: !opts.no_new_keyring,
        lock_fd: dir.lock_fd(),
    };
    let launched = parent::launch(&prepared)?;
    // P1 is in the systemd scope now: the scope no longer needs its placeholder.
    drop(placeholder);
    let facts = Facts {
        id: dir.id.clone(),
        oci_version: prepared.spec.version().clone(),
        pid: launched.pid,
        pid_start: state::proc_facts(launched.pid).map(|p| p.start).ok_or_else(|| Error::new("container init vanished"))?,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        cgroup: prepared.cgroup.path.clone(),
        created: crate::log::rfc3339(SystemTime::now()),
        annotations: prepared.spec.annotations().clone().unwrap_or_default(),
    };
    state::write(&dir.file(container::STATE_FILE), &facts)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, launched.pid)?;
    }
    Ok((prepared, launched))
}

/// exec.fifo, opened read-write: init blocks reading it; `start` opens it write-only and
/// non-blocking (ENXIO there means init is gone) and writes one byte.
fn make_fifo(path: &Path) -> Result<OwnedFd> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600)).with_context(|| format!("mkfifo {path:?}"))?;
    nix::fcntl::open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).with_context(|| format!("open {path:?}"))
}

/// Written atomically: the shim reads the pid file as soon as create returns.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let abs = std::path::absolute(path).with_context(|| format!("pid file {path:?}"))?;
    let tmp = abs.with_file_name(format!(".{}.tmp", abs.file_name().and_then(|n| n.to_str()).unwrap_or("pid")));
    std::fs::write(&tmp, pid.to_string()).with_context(|| format!("write pid file {tmp:?}"))?;
    std::fs::rename(&tmp, &abs).with_context(|| format!("rename pid file to {abs:?}"))
}
