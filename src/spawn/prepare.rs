//! P0's preparation: everything checked, computed and opened on the host before the first
//! clone — the spec validated against what this host can enforce, capabilities planned, seccomp
//! compiled, config.json saved, the cgroup recorded then made with its limits, exec.fifo, the
//! detached trees of idmapped mounts. After any failure the caller cleans up from what the
//! container directory records (`commands::delete::clean_up_creating`).

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType as T, Mount, Process, Spec};

use crate::audit::policy;
use crate::cgroups::{self, Cgroup};
use crate::cli::CreateOpts;
use crate::commands::Global;
use crate::container::{self, state, CgroupRecord, Dir};
use crate::error::{Context, Error, Result};
use crate::linux::namespaces::{self, Plan};
use crate::linux::procfs::Proc;
use crate::linux::{fds, idmap, mounts, rlimits, subid, sysctl, tty};
use crate::security::{capabilities, landlock, seccomp};

#[derive(PartialEq, Eq, Clone, Copy)]
pub enum StartBy {
    /// `create`: init waits on exec.fifo for a later `start`.
    Fifo,
    /// `run`: init waits for Start on the sync socket from this same process.
    Socket { detach: bool },
}

/// What only `sandbox` asks of the spawn path: never read from config.json nor set by runc's
/// flags, so `create` and `run` of an OCI bundle behave as runc's do.
#[derive(Clone, Copy, Debug, Default)]
pub struct Lifecycle {
    /// pid 1 is a reaper and the process its only child (`spawn::reaper`).
    pub reaper: bool,
    /// The init gets SIGKILL when P0 dies (PR_SET_PDEATHSIG), and its pid namespace goes with it.
    pub die_with_parent: bool,
    /// `lo` is brought up in the container's new network namespace.
    pub loopback: bool,
    /// With a terminal, fd 0 stays the one init was given (`sandbox --tty --stdin`): the pty is
    /// stdout and stderr only.
    pub keep_stdin: bool,
}

/// What the children need, all of it checked, computed or opened by P0.
pub struct Prepared {
    pub id: String,
    pub spec: Spec,
    pub process: Process,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// `mounts[]` with bind sources made absolute (relative ones are relative to the bundle).
    pub mounts: Vec<Mount>,
    /// One per mount: the detached tree of an idmapped bind mount, made here (see
    /// `mounts::detached_bind`); init inherits the fds and attaches them.
    pub mount_trees: Vec<Option<OwnedFd>>,
    /// The trees are made by P0 after the clone and sent to the init (`parent::after_maps`):
    /// `mount_trees` is all None then.
    pub trees_later: bool,
    /// The cgroup was made bare, its limits and device program written by P0 after the clone
    /// (`parent::after_maps`), before P0 reads the init's hooks request or Ready.
    pub limits_later: bool,
    pub ns: Plan,
    pub caps: capabilities::Plan,
    pub seccomp: Option<seccomp::Program>,
    /// None: rootless, and no cgroup delegated to the user (`cgroups::rootless`).
    pub cgroup: Option<Cgroup>,
    /// The process the systemd scope was started around (`--systemd-cgroup`), killed once P1 is
    /// in the scope (`cgroups::systemd::placeholder`).
    pub scope_placeholder: Option<cgroups::systemd::Placeholder>,
    pub cgroup_fd: Option<OwnedFd>,
    /// `tasks` of the container's v1 directories on a hybrid host (cgroups::v1).
    pub legacy_tasks: Vec<OwnedFd>,
    /// exec.fifo opened read-write (create): init blocks reading it until `start` writes.
    pub fifo: Option<OwnedFd>,
    /// `--console-socket`, connected.
    pub console: Option<OwnedFd>,
    pub preserve_fds: u32,
    /// Landlock, from the annotations (`security::landlock`).
    pub landlock: Option<landlock::Plan>,
    /// Without privilege over the host (`container::rootless`): in a user namespace already, as
    /// under rootless podman, even when the spec makes none.
    pub rootless: bool,
    pub no_pivot: bool,
    pub new_keyring: bool,
    /// `sandbox`: the root is a private layer over the rootfs (`linux::layer`).
    pub layer: bool,
    pub lifecycle: Lifecycle,
    /// The container directory's lock fd: children must not inherit the flock, or `start`
    /// would wait on a lock held by the very init it is to start.
    pub lock_fd: std::os::fd::RawFd,
}

impl Prepared {
    /// The OCI state JSON handed to hooks.
    pub fn hook_state(&self, status: &str, pid: i32) -> Vec<u8> {
        let v = serde_json::json!({
            "ociVersion": self.spec.version(),
            "id": self.id,
            "status": status,
            "pid": pid,
            "bundle": self.bundle,
            "annotations": self.spec.annotations().clone().unwrap_or_default(),
        });
        v.to_string().into_bytes()
    }
}

/// `given`: the spec made in memory (`sandbox`) rather than read from the bundle's config.json.
pub fn prepare(g: &Global, opts: &CreateOpts, given: Option<crate::spec::Bundle>, dir: &Dir, mode: StartBy, policies: &[policy::Named]) -> Result<Prepared> {
    let (root, rootless, systemd) = (g.root.as_path(), g.rootless, g.systemd_cgroup);
    let bundle = match given {
        Some(b) => b,
        None => crate::spec::load(&opts.bundle)?,
    };
    crate::log::debug(|| format!("spec: {:?} loaded (ociVersion {})", bundle.dir.join("config.json"), bundle.spec.version()));
    crate::spec::validate(&bundle.spec)?;
    policy::enforce(policies, &bundle.spec, "this container")?;
    let spec = &bundle.spec;
    let mut process = spec.process().clone().ok_or_else(|| Error::new("config.json: process is missing"))?;
    let linux = spec.linux().as_ref().ok_or_else(|| Error::new("config.json: linux is missing"))?;
    let terminal = process.terminal().unwrap_or(false);
    let detached = !matches!(mode, StartBy::Socket { detach: false });
    tty::require_socket_or_foreground(terminal, opts.console_socket.is_some(), detached)?;

    let ns = namespaces::plan(linux.namespaces().as_deref().unwrap_or(&[]))?;
    namespaces::check(&ns, spec)?;
    crate::linux::netdev::check(spec, &ns, rootless)?;
    if ns.creates(T::User) {
        // Rootless maps beyond the caller's own id need newuidmap/newgidmap: found before any clone.
        subid::check(linux.uid_mappings().as_deref().unwrap_or(&[]), linux.gid_mappings().as_deref().unwrap_or(&[]))?;
    }
    if let Some(s) = linux.sysctl() {
        sysctl::check(s, &ns)?;
    }
    rlimits::check(process.rlimits().as_deref().unwrap_or(&[]))?;
    let caps = capabilities::plan(process.capabilities().as_ref())?;
    let landlock = landlock::plan(spec.annotations().as_ref())?;
    if opts.watch.is_some() {
        // Watched (recording what the profile allows, or listing what it denies), the filter goes
        // on right before the execve, which needs no_new_privileges (`seccomp::recorder`).
        process.set_no_new_privileges(Some(true));
    }
    let seccomp = seccomp::load_watched(root, linux.seccomp().as_ref(), opts.watch)?;
    if let Some(s) = &seccomp {
        crate::log::debug(|| format!("seccomp: filter of {} instructions ready", s.filter.len()));
    }
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

    // Into a new user namespace from a direct init, the init waits for its id maps and then mounts
    // for a while: P0 makes what the init does not need before then after the clone, in that
    // while (`parent::after_maps`): the bind mounts' trees, and the cgroup's limits.
    let later = !rootless && ns.creates(T::User) && !crate::spawn::join::needed(&ns);
    let (cg, scope_placeholder) = if systemd {
        let (cg, placeholder) = cgroups::systemd::create(&dir.file(container::CGROUP_FILE), linux, &dir.id, spec.annotations().as_ref(), rootless)?;
        (Some(cg), placeholder)
    } else {
        (make_cgroup(linux, dir, rootless, &ns, !later)?, None)
    };
    if let Some(c) = &cg {
        crate::log::debug(|| format!("cgroup: {:?}", c.path));
    }
    let cgroup_fd = cg.as_ref().map(Cgroup::open).transpose()?;
    let legacy_tasks = cg.as_ref().map(|c| c.legacy().open_tasks()).transpose()?.unwrap_or_default();
    let fifo = match mode {
        StartBy::Fifo => Some(make_fifo(&dir.file(container::FIFO_FILE))?),
        StartBy::Socket { .. } => None,
    };
    let mounts = absolute_mounts(spec, &bundle.dir);
    // A user cannot clone a mount of the host's namespace: init opens a sandbox's binds itself
    // (`mounts::Ctx::nofollow`).
    let mount_trees = if later {
        std::iter::repeat_with(|| None).take(mounts.len()).collect()
    } else {
        idmapped_trees(spec, &mounts, &ns, opts.sandbox && !rootless, rootless)?
    };
    let prepared = Prepared {
        id: dir.id.clone(),
        spec: bundle.spec,
        process,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        mounts,
        mount_trees,
        trees_later: later,
        limits_later: later && !systemd,
        ns,
        caps,
        seccomp,
        cgroup: cg,
        scope_placeholder,
        cgroup_fd,
        legacy_tasks,
        fifo,
        console,
        preserve_fds,
        landlock,
        rootless,
        no_pivot: opts.no_pivot,
        new_keyring: !opts.no_new_keyring,
        layer: opts.sandbox,
        lifecycle: opts.lifecycle,
        lock_fd: dir.lock_fd(),
    };
    Ok(prepared)
}

/// The container's cgroup, recorded then made, with its limits; rootless, the one delegated to the
/// user or none (`cgroups::rootless`).
pub fn make_cgroup(linux: &oci_spec::runtime::Linux, dir: &Dir, rootless: bool, ns: &Plan, limited: bool) -> Result<Option<Cgroup>> {
    let spec_path = linux.cgroups_path().as_deref().filter(|p| !p.as_os_str().is_empty());
    let mut cg_path = cgroups::resolve(spec_path, &dir.id)?;
    if rootless {
        match cgroups::rootless::choose(cg_path, spec_path.is_some(), linux.resources().as_ref(), ns.creates(T::Pid))? {
            Some(p) => cg_path = p,
            None => return Ok(None),
        }
    }
    // Issue 25: not inside another container's cgroup (its ancestors are refused by `claim`).
    let root = dir.path.parent().unwrap_or(Path::new("/"));
    if let Some((other, its)) = container::cgroup_owner(root, &dir.id, &cg_path)? {
        return Err(Error::new(format!(
            "cgroup {cg_path:?} is inside {its:?}, the cgroup of container {other:?}: a container cannot be nested in another's cgroup"
        )));
    }
    // Recorded before anything is made: a create killed from here on leaves delete what to remove.
    // A cgroup that is there may lack its v1 directories (a client made it in v2 alone): those,
    // and their parents, are this create's to remove.
    let made = Cgroup::claim(&cg_path)?;
    let planned = Cgroup::at(cg_path.clone());
    let (parents, v1_made) = (planned.missing_parents(), Some(planned.legacy().missing()));
    let record = CgroupRecord { path: cg_path.clone(), made, unit: None, user_bus: None, parents, v1_made };
    state::write(&dir.file(container::CGROUP_FILE), &record)?;
    let cg = Cgroup::create(cg_path, made)?;
    if limited {
        limit(&cg, linux, rootless)?;
    }
    Ok(Some(cg))
}

/// The cgroup's limits and device program.
pub fn limit(cg: &Cgroup, linux: &oci_spec::runtime::Linux, rootless: bool) -> Result<()> {
    let none = oci_spec::runtime::LinuxResources::default();
    let r = linux.resources().as_ref().unwrap_or(&none);
    if rootless {
        // No device program: a user cannot load one (cgroups::rootless checked the rules).
        cgroups::resources::apply_limits(cg, r)
    } else {
        // Always: without device rules the device program still denies all but the default nodes.
        cgroups::resources::apply(cg, r, linux.devices().as_deref().unwrap_or(&[]), false)
    }
}

/// exec.fifo, opened read-write: init blocks reading it; `start` opens it write-only and
/// non-blocking (ENXIO there means init is gone) and writes one byte.
fn make_fifo(path: &Path) -> Result<OwnedFd> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o600)).with_context(|| format!("mkfifo {path:?}"))?;
    nix::fcntl::open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).with_context(|| format!("open {path:?}"))
}

/// The detached trees of idmapped bind mounts, one entry per mount. A mount's own mappings, or
/// for "idmap"/"ridmap" alone the container's (the same maps give the same idmapping).
/// `sandbox`: every bind gets its tree here, its source opened with the caller's credentials and
/// without following a symlink (`nofollow`: a job may have planted one in its workspace). Into a
/// new user namespace (not rootless), every bind gets its tree here too.
pub fn idmapped_trees(spec: &Spec, mounts: &[Mount], ns: &Plan, sandbox: bool, rootless: bool) -> Result<Vec<Option<OwnedFd>>> {
    let mut proc = None;
    let mut out = Vec::with_capacity(mounts.len());
    let linux = spec.linux().as_ref();
    for m in mounts {
        let what = || format!("mount {:?}", m.destination());
        let is_bind = mounts::parse(m.typ().as_deref(), m.options().as_deref().unwrap_or(&[])).bind;
        let opened = match m.source() {
            Some(src) if sandbox && is_bind => Some(crate::linux::nofollow::open(&what(), src, OFlag::O_PATH)?),
            _ => None,
        };
        if !mounts::wants_idmap(m) {
            // Into a new user namespace, the container's root is a mapped id that may not search
            // the way to a bind's source (a 0700 parent): a privileged P0 makes the tree with the
            // caller's credentials, as runc opens such sources on the host side. (Rootless, P0
            // may not clone a mount; the init, root of its own namespace, binds as the user.)
            let host_side = opened.is_some() || (is_bind && ns.creates(T::User) && !rootless);
            out.push(host_side.then(|| mounts::detached_bind(m, opened.as_ref(), None).with_context(what)).transpose()?);
            continue;
        }
        let (uids, gids) = match (m.uid_mappings(), m.gid_mappings()) {
            (Some(u), Some(g)) => (u.clone(), g.clone()),
            _ if ns.creates(T::User) => {
                (linux.and_then(|l| l.uid_mappings().clone()).unwrap_or_default(), linux.and_then(|l| l.gid_mappings().clone()).unwrap_or_default())
            }
            _ => return Err(Error::new(format!("{}: idmap needs uidMappings/gidMappings or a new user namespace", what()))),
        };
        if proc.is_none() {
            proc = Some(Proc::open(Path::new("/proc"))?);
        }
        let proc = proc.as_ref().ok_or_else(|| Error::new("/proc"))?;
        let userns = idmap::mount_userns(proc, &uids, &gids).with_context(what)?;
        out.push(Some(mounts::detached_bind(m, opened.as_ref(), Some(&userns)).with_context(what)?));
    }
    Ok(out)
}

/// `mounts[]` with relative bind sources resolved against the bundle.
pub fn absolute_mounts(spec: &Spec, bundle: &Path) -> Vec<Mount> {
    let mut out = spec.mounts().clone().unwrap_or_default();
    for m in &mut out {
        if let Some(src) = m.source().clone() {
            let is_bind = m.typ().as_deref() == Some("bind") || m.options().iter().flatten().any(|o| o == "bind" || o == "rbind");
            if is_bind && src.is_relative() {
                m.set_source(Some(bundle.join(src)));
            }
        }
    }
    out
}
