//! P2, the container's init: the setup checklist, in this order and no other.
//!
//!  1. user namespace: wait for the id maps, become root in it
//!  2. cgroup namespace (now that we are inside our cgroup), hostname, domainname, lo up
//!     (sandbox), rlimits, a session keyring of its own
//!  3. rootfs: non-shared /, rootfs bind, `mounts[]` in order, each resolved inside the root
//!  4. devices and /dev links; a session of its own: the terminal and /dev/console, or none
//!  5. hooks: prestart + createRuntime in P0, createContainer here
//!  6. sysctl and oom_score_adj through our own verified procfs
//!  7. maskedPaths, readonlyPaths, the cwd, a read-only /dev (mounted writable in 3), root.readonly
//!  8. pivot_root (or move + chroot; chroot alone without a mount namespace); stdio that is the
//!     caller's /dev/null becomes the container's (CRIU must find every open file's mount)
//!  9. memory policy, labels, bounding set, uid/gid, capabilities, nnp, seccomp with a listener;
//!     then (sandbox) die-with-parent
//! 10. args[0] must resolve: "not found" is a create-time error
//! 11. Ready → wait for start → startContainer hooks → close fds, cwd, (sandbox) fork off the
//!     reaper, seccomp, execve (nothing else after the filter)

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::LinuxNamespaceType as T;

use crate::container::hooks;
use crate::error::{Context, Error, Result};
use crate::linux::procfs::Proc;
use crate::linux::{cgroupfs, devices, inroot, keyring, layer, mempolicy, mounts, rlimits, rootfs, sysctl, tty};
use crate::security::selinux;
use crate::spawn::finish;
use crate::spawn::prepare::Prepared;
use crate::spawn::sync::{Channel, Msg};

pub fn run(p: &Prepared, chan: &Channel, direct: bool) -> Result<()> {
    let linux = p.spec.linux().as_ref();
    // 1.
    if p.ns.creates(T::User) && direct {
        crate::spawn::request_id_maps(chan)?;
    }
    let userns = p.ns.has(T::User);
    // A user's sandbox maps only the job's id (sandbox::user_namespace): there is no root to
    // become, and this process, which made the namespace, holds every capability in it as it is
    // until `finish::identity` drops them all.
    let no_root = p.layer && p.rootless && std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| crate::linux::idmap::outer(&m, 0).is_none());
    if userns && !no_root {
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0)).context("become root in the user namespace (is gid 0 mapped?)")?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0)).context("become root in the user namespace (is uid 0 mapped?)")?;
    }
    // 2.
    if p.ns.creates(T::Cgroup) {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).context("unshare cgroup namespace")?;
    }
    if let Some(h) = p.spec.hostname() {
        nix::unistd::sethostname(h).with_context(|| format!("hostname {h:?}"))?;
    }
    if let Some(d) = p.spec.domainname() {
        setdomainname(d)?;
    }
    if p.lifecycle.loopback && p.ns.creates(T::Network) {
        crate::linux::netdev::loopback_up()?;
    }
    rlimits::apply(p.process.rlimits().as_deref().unwrap_or(&[]))?;
    if p.new_keyring {
        selinux::keycreate(p.process.selinux_label().as_deref().filter(|s| !s.is_empty()), || keyring::join_new(&p.id))?;
    }
    // 3. Without a mount namespace of its own, nothing is mounted (spec validation refused what
    // would need it) and step 8 is a chroot.
    let own_mnt = p.ns.has(T::Mount);
    let prop = rootfs::propagation(linux.and_then(|l| l.rootfs_propagation().as_deref()))?;
    let root = if !own_mnt {
        rootfs::open_in_host_ns(&p.rootfs, p.no_pivot)?
    } else if p.layer {
        // `sandbox`: the caller's rootfs stays as it is; mount points go on a layer of our own.
        rootfs::non_shared(prop)?;
        let points: Vec<&Path> = p.mounts.iter().map(|m| m.destination().as_path()).collect();
        layer::attach(&p.rootfs, &points, p.process.cwd())?
    } else {
        rootfs::prepare(&p.rootfs, prop)?
    };
    // Opened here, in our own mount namespace (a mount of another namespace cannot be cloned).
    let dev_null = rootfs::open_dev_null()?;
    let label = linux.and_then(|l| l.mount_label().as_deref());
    // On a hybrid host a `cgroup` mount shows the container's v1 cgroups too (linux::cgroupfs).
    let cg = p.cgroup.as_ref().filter(|_| p.mounts.iter().any(|m| m.typ().as_deref() == Some("cgroup")));
    let hybrid = cg.map(|c| (c, c.legacy())).filter(|(_, l)| !l.dirs.is_empty());
    let hybrid = hybrid.map(|(c, l)| cgroupfs::Hybrid { v2: &c.path, v1: l.hierarchies() });
    let cgroup2_host = if p.ns.has(T::Cgroup) || !p.mounts.iter().any(|m| matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2"))) {
        None
    } else {
        Some(crate::cgroups::mountpoint()?)
    };
    let ctx = mounts::Ctx { root: &root, label, hybrid: hybrid.as_ref(), cgroup2_host: cgroup2_host.as_deref(), nofollow: p.layer };
    let mut proc: Option<Proc> = None;
    let mut dev_readonly = false;
    let later = if p.trees_later { take_trees(chan, p.mounts.len())? } else { Vec::new() };
    let trees = if p.trees_later { &later } else { &p.mount_trees };
    for (m, tree) in p.mounts.iter().zip(trees) {
        match mounts::dev_writable_first(m) {
            Some(writable) => {
                dev_readonly = true;
                mounts::mount(&ctx, &writable, tree.as_ref())?;
            }
            None => mounts::mount(&ctx, m, tree.as_ref())?,
        }
        // The superblock is the IPC namespace's: in the host's namespace (or one joined by path)
        // it keeps its owner's label, as the queues in it are not the container's.
        if let Some(label) = label.filter(|_| m.typ().as_deref() == Some("mqueue") && p.ns.creates(T::Ipc)) {
            let top = inroot::open(&root, m.destination(), OFlag::O_RDONLY | OFlag::O_DIRECTORY).context("mqueue: reopen")?;
            selinux::label_file(&top, label)?;
        }
        if m.typ().as_deref() == Some("proc") && m.destination() == Path::new("/proc") {
            let fd = inroot::open(&root, Path::new("/proc"), OFlag::O_PATH | OFlag::O_DIRECTORY).context("open /proc")?;
            proc = Some(Proc::verify(fd, Path::new("/proc"))?);
        }
    }
    // 4.
    let mut devs = Vec::new();
    for d in linux.and_then(|l| l.devices().as_ref()).into_iter().flatten() {
        devs.push(devices::from_spec(d)?);
    }
    // A default node the spec lists itself is made once, as the spec says.
    let defaults: Vec<devices::Device> = devices::defaults().into_iter().filter(|d| !devs.iter().any(|s| s.path == d.path)).collect();
    devs.splice(0..0, defaults);
    // In a user namespace (ours, or the one a rootless runtime runs in) mknod is refused.
    for d in &devs {
        devices::create(&root, d, userns || p.rootless)?;
    }
    devices::links(&root, devices::has_devpts(&p.mounts))?;
    // A session of its own either way, never the caller's (tty::new_session).
    let pty = if p.process.terminal().unwrap_or(false) {
        Some(terminal(p, &root, chan)?)
    } else {
        tty::new_session()?;
        None
    };
    // 5.
    let state = create_hooks(p, chan)?;
    // 6.
    if let Some(s) = linux.and_then(|l| l.sysctl().as_ref()).filter(|s| !s.is_empty()) {
        sysctl::apply(need_proc(&proc, "sysctl")?, s)?;
    }
    if let Some(adj) = p.process.oom_score_adj() {
        need_proc(&proc, "oomScoreAdj")?.write("self/oom_score_adj", adj.to_string().as_bytes()).context("oomScoreAdj")?;
    }
    // 7.
    for path in linux.and_then(|l| l.masked_paths().as_ref()).into_iter().flatten() {
        rootfs::mask(&root, Path::new(path), &dev_null)?;
    }
    for path in linux.and_then(|l| l.readonly_paths().as_ref()).into_iter().flatten() {
        rootfs::freeze(&root, Path::new(path))?;
    }
    inroot::ensure(&root, p.process.cwd(), inroot::Kind::Dir, 0o755).context("cwd")?;
    if dev_readonly {
        // The /dev mount itself, not what is mounted below it (devpts, shm, mqueue): runc's.
        let dev = inroot::open(&root, Path::new("/dev"), OFlag::O_PATH | OFlag::O_DIRECTORY).context("open /dev")?;
        mounts::setattr(&dev, libc::MOUNT_ATTR_RDONLY, 0, 0, None, false).context("make /dev read-only")?;
    }
    if p.spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false) {
        rootfs::make_readonly(&root)?;
    }
    // 8.
    if !own_mnt {
        rootfs::chroot(&root)?;
    } else if p.no_pivot {
        rootfs::move_and_chroot(&root)?;
        rootfs::apply_propagation(prop)?;
    } else {
        rootfs::pivot(&root)?;
        rootfs::apply_propagation(prop)?;
    }
    drop(root);
    if own_mnt {
        rootfs::reopen_dev_null()?;
    }
    // 9.
    if let Some(mp) = linux.and_then(|l| l.memory_policy().as_ref()) {
        mempolicy::apply(mp)?;
    }
    let personality = linux.and_then(|l| l.personality().as_ref());
    // execCPUAffinity is for exec'd processes only ("not applicable to the container's init").
    let mut process = p.process.clone();
    process.set_exec_cpu_affinity(None);
    let id = finish::Identity {
        process: &process,
        caps: &p.caps,
        seccomp: p.seccomp.as_ref(),
        proc: proc.as_ref(),
        userns,
        personality,
        landlock: p.landlock.as_ref(),
        reaper: p.lifecycle.reaper,
    };
    let done = finish::identity(&id, chan)?;
    if p.lifecycle.die_with_parent {
        // After the last credential change, which clears it (commit_creds), and tied to P0, our
        // parent (also with a join stage: CLONE_PARENT). getppid cannot tell whether P0 died
        // before this (a parent outside our pid namespace reads as 0); the Ready and Start round
        // trip below does: a P0 gone by then fails it, and one that dies later kills us.
        nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).context("die with parent")?;
    }
    // 10.
    let exe = finish::resolve_executable(&p.process)?;
    chan.send(&Msg::Ready)?;
    // 11.
    wait_for_start(p, chan)?;
    let start_hooks = p.spec.hooks().as_ref().and_then(|h| h.start_container().as_ref());
    if let Err(e) = hooks::run_all_env("startContainer", start_hooks, &state, Some(&p.process.env().clone().unwrap_or_default())) {
        finish::fail(chan, e);
    }
    drop(pty);
    finish::exec(&id, done, &exe, p.preserve_fds, chan, p.fifo.as_ref().map(AsRawFd::as_raw_fd))
}

/// The trees P0 made after the clone (`parent::after_maps`), by mount index, up to its Ack.
fn take_trees(chan: &Channel, n: usize) -> Result<Vec<Option<OwnedFd>>> {
    let mut trees: Vec<Option<OwnedFd>> = std::iter::repeat_with(|| None).take(n).collect();
    loop {
        match chan.recv_any()? {
            Some((Msg::Tree(i), Some(fd))) if (i as usize) < n && trees[i as usize].is_none() => trees[i as usize] = Some(fd),
            Some((Msg::Ack, None)) => return Ok(trees),
            Some((Msg::Fail(e), _)) => return Err(e),
            Some((m, _)) => return Err(Error::new(format!("sync socket: expected a mount tree, got {m:?}"))),
            None => return Err(Error::new("sync socket: parent went away")),
        }
    }
}

fn need_proc<'a>(proc: &'a Option<Proc>, what: &str) -> Result<&'a Proc> {
    proc.as_ref().ok_or_else(|| Error::new(format!("{what} needs a proc mount at /proc")))
}

fn setdomainname(d: &str) -> Result<()> {
    // SAFETY: setdomainname reads `len` bytes from the pointer, which points into `d`.
    if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } < 0 {
        return Err(crate::error::last_os(format!("domainname {d:?}")));
    }
    Ok(())
}

/// The pty: master to the console socket (or to P0 for a foreground `run`), slave as stdio.
fn terminal(p: &Prepared, root: &OwnedFd, chan: &Channel) -> Result<OwnedFd> {
    let pty = tty::open(root)?;
    if let Some(size) = p.process.console_size() {
        tty::set_size(&pty.master, size.height() as u16, size.width() as u16)?;
    }
    tty::mount_console(root, &pty.slave)?;
    let name = tty::name(&pty.master)?;
    match &p.console {
        Some(sock) => tty::send_fd(std::os::fd::AsRawFd::as_raw_fd(sock), std::os::fd::AsRawFd::as_raw_fd(&pty.master), name.as_bytes())?,
        None => chan.send_fd(std::os::fd::AsRawFd::as_raw_fd(&pty.master))?,
    }
    tty::make_controlling(&pty.slave, !p.lifecycle.keep_stdin)?;
    Ok(pty.slave)
}

/// Ask P0 for prestart/createRuntime hooks, run createContainer ones here; returns the state JSON
/// for startContainer hooks.
fn create_hooks(p: &Prepared, chan: &Channel) -> Result<Vec<u8>> {
    let Some(h) = p.spec.hooks().as_ref() else { return Ok(Vec::new()) };
    chan.send(&Msg::Hooks)?;
    let state = match chan.recv()? {
        Some(Msg::State(s)) => s,
        Some(Msg::Fail(e)) => return Err(e),
        _ => return Err(Error::new("sync socket: expected the container state after hooks")),
    };
    // A hook without env of its own gets the container process's, as runc's init has it.
    hooks::run_all_env("createContainer", h.create_container().as_ref(), &state, Some(&p.process.env().clone().unwrap_or_default()))?;
    Ok(state)
}

/// `create`: block reading exec.fifo until `start` writes it. `run`: wait for P0's Start.
fn wait_for_start(p: &Prepared, chan: &Channel) -> Result<()> {
    match &p.fifo {
        Some(fifo) => {
            let mut f = std::fs::File::from(fifo.try_clone().context("exec.fifo")?);
            let mut byte = [0u8; 1];
            f.read_exact(&mut byte).context("wait for start on exec.fifo")
        }
        None => match chan.recv()? {
            Some(Msg::Start) => Ok(()),
            _ => Err(Error::new("sync socket: expected start")),
        },
    }
}
