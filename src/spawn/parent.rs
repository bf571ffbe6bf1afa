//! P0 after its preparation (`spawn::prepare`): the clone, then the parent's half of the sync
//! protocol.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use oci_spec::runtime::LinuxNamespaceType as T;

use crate::cgroups::Cgroup;
use crate::container::hooks;
use crate::error::{Context, Error, Result};
use crate::linux::clone::{self, Forked};
use crate::linux::namespaces::{self, Plan};
use crate::linux::procfs::Proc;
use crate::linux::{fds, idmap, pidfd};
use crate::security::seccomp;
use crate::spawn::prepare::Prepared;
use crate::spawn::sync::{self, Channel, Msg};
use crate::spawn::{init, join};

pub struct Launched {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub chan: Channel,
    /// The pty master when `run` owns the terminal itself.
    pub pty: Option<OwnedFd>,
}

pub fn launch(p: &Prepared) -> Result<Launched> {
    // Only needed to write user namespace id maps.
    let proc = if p.ns.creates(T::User) { Some(Proc::open(Path::new("/proc"))?) } else { None };
    let (ours, theirs) = sync::pair()?;
    // Everything cloned from here on is non-dumpable until it execs the container's program: no
    // process in the container can ptrace it or open its /proc files (CVE-2019-5736 family).
    nix::sys::prctl::set_dumpable(false).context("set non-dumpable")?;
    let direct = !join::needed(&p.ns);
    let flags = if direct { clone_flags(&p.ns) } else { 0 };
    // The heap's free pages go back before the clone: the init's copy of P0's memory then has
    // fewer pages to map, and neither side takes a copy-on-write fault for memory that only held
    // what P0 parsed and dropped (`sandbox -- true`: 447 -> 404 page faults, ~0.3 ms).
    // SAFETY: malloc_trim only returns free memory to the kernel; P0 is single-threaded here.
    unsafe { libc::malloc_trim(0) };
    let forked = clone::clone3(&clone::Args { flags, cgroup: p.cgroup_fd.as_ref(), pidfd: true })?;
    let (child, child_fd) = match forked {
        Forked::Child => {
            drop(ours);
            // SAFETY: the File owning this fd lives in a frame of P0 this child never returns to.
            unsafe { libc::close(p.lock_fd) };
            crate::spawn::child_main(&theirs, || {
                // First, before anything can fork: every process of the container is in them.
                crate::cgroups::v1::enter(&p.legacy_tasks)?;
                // Then nothing of the host's stays open that the container does not need: the
                // cgroup directory (used by clone3 only), the v1 tasks files, P0's /proc.
                // The namespaces to join by path stay open for the join stage, which closes them.
                let mut keep = child_fds(p, &theirs);
                keep.extend(p.ns.join.iter().map(|j| Some(j.fd.as_raw_fd())));
                fds::close_all_but(p.preserve_fds, &keep)?;
                if direct {
                    init::run(p, &theirs, true)
                } else {
                    join::run(p, &theirs)
                }
            })
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd.ok_or_else(|| Error::new("clone3 returned no pidfd"))?),
    };
    drop(theirs);
    crate::log::debug(|| format!("clone3: {} {child}", if direct { "init" } else { "join stage" }));
    match handshake(p, proc.as_ref(), &ours, child, &child_fd, direct) {
        Ok((pid, pidfd, pty)) => Ok(Launched { pid, pidfd, chan: ours, pty }),
        Err(e) => {
            // Leave no process behind: the whole cgroup is killed by the caller's cleanup, but
            // the direct child is ours to reap.
            let _ = pidfd::send_signal(&child_fd, nix::sys::signal::Signal::SIGKILL);
            let _ = pidfd::wait(&child_fd);
            Err(e)
        }
    }
}

/// What the join stage and init use of P0's fds: the sync socket, exec.fifo, the console socket
/// and the detached trees of idmapped mounts.
pub fn child_fds(p: &Prepared, chan: &Channel) -> Vec<Option<RawFd>> {
    let mut keep = vec![Some(chan.raw()), p.fifo.as_ref().map(AsRawFd::as_raw_fd), p.console.as_ref().map(AsRawFd::as_raw_fd)];
    keep.extend(p.mount_trees.iter().map(|t| t.as_ref().map(AsRawFd::as_raw_fd)));
    keep
}

fn clone_flags(ns: &Plan) -> u64 {
    // The cgroup namespace is unshared by init once it is in its cgroup, so that the namespace's
    // root is the container's cgroup and not ours.
    let mut f = ns.new;
    f.remove(namespaces::flag(T::Cgroup));
    f.bits() as u64
}

fn handshake(p: &Prepared, proc: Option<&Proc>, chan: &Channel, child: i32, child_fd: &OwnedFd, direct: bool) -> Result<(i32, OwnedFd, Option<OwnedFd>)> {
    let mut init: Option<(i32, OwnedFd)> = if direct { Some((child, dup(child_fd)?)) } else { None };
    // linux.netDevices: once the init's network namespace exists, before any hook runs in it.
    let net_devices = p.spec.linux().as_ref().and_then(|l| l.net_devices().as_ref());
    if let (Some(devs), Some((_, fd))) = (net_devices, &init) {
        crate::linux::netdev::move_into(fd, devs)?;
    }
    let mut pty = None;
    // With a join stage, its Pid(init) and init's own notify fd share the socket and may come in
    // either order: an early notify fd waits for the pid.
    let mut early_notify: Option<OwnedFd> = None;
    let to_listener = |pid: i32, fd: &OwnedFd| {
        let l = p.seccomp.as_ref().and_then(|s| s.listener.as_ref()).ok_or_else(|| Error::new("seccomp notify fd without a listenerPath"))?;
        seccomp::notify_listener(l, fd, pid, &p.hook_state("creating", pid))
    };
    loop {
        let Some((msg, fd)) = chan.recv_watching(init.as_ref().map(|(pid, _)| *pid)).context("container init")? else {
            return Err(died(child_fd, direct, p.cgroup.as_ref(), p.seccomp.is_some()));
        };
        if let Msg::SeccompFd = msg {
            let fd = fd.ok_or_else(|| Error::new("sync socket: seccomp notify message without an fd"))?;
            match &init {
                Some((pid, _)) => to_listener(*pid, &fd)?,
                None => early_notify = Some(fd),
            }
            continue;
        }
        if let Some(fd) = fd {
            pty = Some(fd);
            continue;
        }
        match msg {
            Msg::MapIds => {
                let linux = p.spec.linux().as_ref();
                let uids = linux.and_then(|l| l.uid_mappings().clone()).unwrap_or_default();
                let gids = linux.and_then(|l| l.gid_mappings().clone()).unwrap_or_default();
                let proc = proc.ok_or_else(|| Error::new("id maps asked for without a new user namespace"))?;
                idmap::write(proc, child, &uids, &gids).context("user namespace")?;
                crate::log::debug(|| "user namespace: id maps written".to_string());
                chan.send(&Msg::Ack)?;
                after_maps(p, chan)?;
            }
            Msg::Pid(pid) => {
                // P2 is our child (CLONE_PARENT), so its pid cannot be reused before we reap it;
                // one pid, and only a child of ours, is taken (see exec::launch).
                if init.is_some() || pid == child {
                    return Err(Error::new(format!("a second process id ({pid}) from the join stage: refused")));
                }
                init = Some((pid, pidfd::open_child(pid)?));
                if let (Some(devs), Some((_, fd))) = (net_devices, &init) {
                    crate::linux::netdev::move_into(fd, devs)?;
                }
                let _ = pidfd::wait(child_fd);
                if let Some(fd) = early_notify.take() {
                    to_listener(pid, &fd)?;
                }
            }
            Msg::Hooks => {
                let pid = init.as_ref().map_or(0, |(pid, _)| *pid);
                let h = p.spec.hooks().as_ref();
                #[allow(deprecated)]
                let prestart = h.and_then(|h| h.prestart().as_ref());
                hooks::run_all("prestart", prestart, &p.hook_state("created", pid))?;
                hooks::run_all("createRuntime", h.and_then(|h| h.create_runtime().as_ref()), &p.hook_state("creating", pid))?;
                crate::log::debug(|| "hooks: prestart and createRuntime done".to_string());
                chan.send(&Msg::State(p.hook_state("created", pid)))?;
            }
            Msg::Ready => {
                let (pid, fd) = init.ok_or_else(|| Error::new("container init reported ready before its pid"))?;
                crate::log::debug(|| format!("init {pid}: ready, waiting for start"));
                return Ok((pid, fd, pty));
            }
            Msg::Fail(e) => return Err(e),
            other => return Err(Error::new(format!("sync socket: unexpected {other:?} from the container"))),
        }
    }
}

/// What P0 left for after the clone (`prepare`), done now that the init has its id maps and is
/// busy with what needs none of it. The detached trees of the bind mounts
/// (`prepare::idmapped_trees`) each go to the init with its index, and an Ack ends them
/// (`init::take_trees`); ours are closed once sent. Then the cgroup's limits and device program:
/// P0 reads the init's next message (hooks, Ready) only after them, and the container's process
/// is started only after Ready, so it never runs without them.
fn after_maps(p: &Prepared, chan: &Channel) -> Result<()> {
    if p.trees_later {
        let trees = crate::spawn::prepare::idmapped_trees(&p.spec, &p.mounts, &p.ns, p.layer && !p.rootless, p.rootless)?;
        let mut indexed = trees.iter().enumerate().filter_map(|(i, t)| t.as_ref().map(|fd| (i, fd)));
        let sent = indexed.try_for_each(|(i, fd)| chan.send_tree(i as u32, fd.as_raw_fd())).and_then(|()| chan.send(&Msg::Ack));
        if sent.is_err() {
            // The init is gone (it failed right after its maps): why is on the socket, for the
            // handshake to read next.
            return Ok(());
        }
    }
    if let (true, Some(cg), Some(linux)) = (p.limits_later, &p.cgroup, p.spec.linux()) {
        crate::spawn::prepare::limit(cg, linux, p.rootless)?;
    }
    Ok(())
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd> {
    fd.try_clone().context("dup pidfd")
}

/// The child closed the socket without a word: say how it ended. The cgroup's memory.events
/// tells an OOM kill from another SIGKILL.
fn died(fd: &OwnedFd, direct: bool, cgroup: Option<&Cgroup>, filtered: bool) -> Error {
    let who = if direct { "container init" } else { "join stage" };
    match pidfd::wait(fd) {
        Ok(pidfd::Exit(137)) if cgroup.and_then(Cgroup::oom_kills).is_some_and(|n| n > 0) => {
            Error::new(format!("{who} was killed by the OOM killer during setup (memory limit too low?)"))
        }
        Ok(pidfd::Exit(137)) => Error::new(format!("{who} was killed during setup (SIGKILL; memory limit too low?)")),
        Ok(pidfd::Exit(code)) if code == 128 + libc::SIGSYS && filtered => {
            Error::new(format!("{who} was killed during setup by SIGSYS (a syscall the seccomp profile kills)"))
        }
        Ok(pidfd::Exit(code)) if code > 128 => Error::new(format!("{who} was killed during setup by signal {}", code - 128)),
        // A failing child sends its error; one that could not (its sendmsg denied) writes it to
        // the container's stderr (`spawn::tell`).
        Ok(pidfd::Exit(code)) if filtered => {
            Error::new(format!("{who} exited during setup with status {code} without a reason (sendmsg denied by the seccomp profile? see its stderr)"))
        }
        Ok(pidfd::Exit(code)) => Error::new(format!("{who} exited during setup with status {code}")),
        Err(e) => e.context(format!("{who} exited during setup")),
    }
}
