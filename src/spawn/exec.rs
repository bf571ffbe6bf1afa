//! `exec`: a new process in a running container. P1 is born in the container's cgroup, joins all
//! of the init's namespaces at once with setns(pidfd) and forks P2 (CLONE_PARENT, so P0 can wait
//! for it), which runs the same final steps as init. Success is EOF on the sync socket.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use oci_spec::runtime::{LinuxNamespaceType as T, Process};

use crate::error::{Context, Error, Result};
use crate::linux::clone::{self, Forked};
use crate::linux::namespaces;
use crate::linux::procfs::Proc;
use crate::linux::{fds, inroot, pidfd, rlimits, tty};
use crate::security::{capabilities, seccomp};
use crate::spawn::finish;
use crate::spawn::sync::{self, Channel, Msg};

pub struct Request {
    pub process: Process,
    pub caps: capabilities::Plan,
    pub seccomp: Option<seccomp::Program>,
    pub init_pid: i32,
    pub init_pidfd: OwnedFd,
    /// The init's root directory (/proc/PID/root, O_PATH).
    pub init_root: OwnedFd,
    pub cgroup_fd: Option<OwnedFd>,
    /// `tasks` of the container's v1 directories on a hybrid host (cgroups::v1).
    pub legacy_tasks: Vec<OwnedFd>,
    pub console: Option<OwnedFd>,
    pub preserve_fds: u32,
    /// The container's linux.personality.
    pub personality: Option<oci_spec::runtime::LinuxPersonality>,
    /// The container's Landlock policy (annotations), for this process too.
    pub landlock: Option<crate::security::landlock::Plan>,
    /// The container's OCI state JSON, for a seccomp listener.
    pub container_state: Vec<u8>,
}

/// The namespaces of `pid` that differ from ours, as setns flags.
fn namespaces_of(pid: i32) -> Result<(libc::c_int, bool)> {
    let mut flags = 0;
    let mut userns = false;
    for t in namespaces::ALL {
        let name = namespaces::proc_name(t);
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{name}"));
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
        use std::os::unix::fs::MetadataExt;
        match (theirs, ours) {
            (Ok(a), Ok(b)) if a.ino() != b.ino() || a.dev() != b.dev() => {
                flags |= namespaces::flag(t).bits();
                userns |= t == T::User;
            }
            (Err(e), _) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::new(format!("container init's {name} namespace: {e}")));
            }
            _ => {}
        }
    }
    Ok((flags, userns))
}

/// The exec'd process, and its pty master when the caller relays it (`commands::foreground`).
pub struct Launched {
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub pty: Option<OwnedFd>,
}

/// A terminal without --console-socket: the master comes back to P0 for the caller to drive.
fn foreground_pty(r: &Request) -> bool {
    r.process.terminal().unwrap_or(false) && r.console.is_none()
}

pub fn launch(r: &Request) -> Result<Launched> {
    let (flags, userns) = namespaces_of(r.init_pid)?;
    let (ours, theirs) = sync::pair()?;
    nix::sys::prctl::set_dumpable(false).context("set non-dumpable")?;
    let forked = clone::clone3(&clone::Args { flags: 0, cgroup: r.cgroup_fd.as_ref(), pidfd: true })?;
    let (p1, p1_fd) = match forked {
        Forked::Child => {
            drop(ours);
            crate::spawn::child_main(&theirs, || {
                crate::cgroups::v1::enter(&r.legacy_tasks)?;
                // The host's cgroup directory and v1 tasks files end here (see
                // fds::close_all_but); the init's pidfd and root go once joined.
                let keep = [Some(theirs.raw()), Some(r.init_pidfd.as_raw_fd()), Some(r.init_root.as_raw_fd()), r.console.as_ref().map(AsRawFd::as_raw_fd)];
                fds::close_all_but(r.preserve_fds, &keep)?;
                join(r, &theirs, flags, userns)
            })
        }
        Forked::Parent { pid, pidfd } => (pid, pidfd.ok_or_else(|| Error::new("clone3 returned no pidfd"))?),
    };
    drop(theirs);
    let mut p2: Option<(i32, OwnedFd)> = None;
    // P1 sends P2's pid after forking it, and P2 may send its notify fd first: both come over
    // the one socket, in either order. A notify fd that is early waits here for the pid.
    let mut early_notify: Option<OwnedFd> = None;
    let mut pty: Option<OwnedFd> = None;
    // The other end of the socket is in P2's hands too, which the container can see, ptrace
    // (with CAP_SYS_PTRACE) and take fds from: what comes over it is untrusted. The pid is taken
    // once, and only if the kernel says it is our child (pidfd::open_child); every signal and
    // wait below goes to a pidfd so verified, never to a number read from the socket.
    let abort = |p2: &Option<(i32, OwnedFd)>, e: Error| {
        for fd in p2.as_ref().map(|(_, fd)| fd).into_iter().chain([&p1_fd]) {
            let _ = pidfd::send_signal(fd, nix::sys::signal::Signal::SIGKILL);
            let _ = pidfd::wait(fd);
        }
        Err(e)
    };
    loop {
        let got = ours.recv_watching(p2.as_ref().map(|(pid, _)| *pid)).map_err(|e| e.context("exec"));
        let (msg, fd) = match got {
            Ok(Some((m, fd))) => (Some(m), fd),
            Ok(None) => (None, None),
            Err(e) => return abort(&p2, e),
        };
        match msg {
            // The pty master (sync::Channel::send_fd): once, and only when we asked for one.
            Some(Msg::Ack) if fd.is_some() && pty.is_none() && foreground_pty(r) => pty = fd,
            Some(Msg::SeccompFd) => {
                let fd = fd.ok_or_else(|| Error::new("sync socket: seccomp notify message without an fd"))?;
                match &p2 {
                    Some((pid, p2_fd)) => to_listener(r, *pid, p2_fd, &fd)?,
                    None => early_notify = Some(fd),
                }
            }
            Some(Msg::Pid(pid)) => {
                if p2.is_some() || pid == p1 {
                    return abort(&p2, Error::new(format!("exec: a second process id ({pid}) from the setup process: refused")));
                }
                let p2_fd = match pidfd::open_child(pid) {
                    Ok(fd) => fd,
                    Err(e) => return abort(&p2, e.context("exec")),
                };
                let _ = pidfd::wait(&p1_fd);
                if let Some(fd) = early_notify.take() {
                    to_listener(r, pid, &p2_fd, &fd)?;
                }
                p2 = Some((pid, p2_fd));
            }
            Some(Msg::Fail(e)) => {
                if let Some((_, fd)) = &p2 {
                    let _ = pidfd::wait(fd);
                } else {
                    let _ = pidfd::wait(&p1_fd);
                }
                return Err(e);
            }
            Some(other) => return abort(&p2, Error::new(format!("sync socket: unexpected {other:?}"))),
            None => {
                return match p2 {
                    Some(_) if foreground_pty(r) && pty.is_none() => abort(&p2, Error::new("exec: the process started without sending its pty")),
                    Some((pid, pidfd)) => Ok(Launched { pid, pidfd, pty }),
                    None => {
                        let _ = pidfd::wait(&p1_fd);
                        Err(Error::new("exec: join stage exited without starting the process"))
                    }
                };
            }
        }
    }
}

/// Hand P2's notify fd to the listener; without its listener the process must not run at all.
fn to_listener(r: &Request, pid: i32, p2_fd: &OwnedFd, fd: &OwnedFd) -> Result<()> {
    let l = r.seccomp.as_ref().and_then(|s| s.listener.as_ref()).ok_or_else(|| Error::new("sync socket: unexpected seccomp notify fd"))?;
    if let Err(e) = seccomp::notify_listener(l, fd, pid, &r.container_state) {
        let _ = pidfd::send_signal(p2_fd, nix::sys::signal::Signal::SIGKILL);
        let _ = pidfd::wait(p2_fd);
        return Err(e);
    }
    Ok(())
}

fn join(r: &Request, chan: &Channel, flags: libc::c_int, userns: bool) -> Result<()> {
    nix::sched::setns(&r.init_pidfd, nix::sched::CloneFlags::from_bits_retain(flags)).context("join the container's namespaces")?;
    // setns puts us at the mount namespace's "/", which is the container's root only while
    // nothing in the container has unmounted it: after --no-pivot the rootfs is a mount over the
    // host's "/", and a container with CAP_SYS_ADMIN that lazily unmounts it would have every
    // later exec land in the host's root filesystem. The init's root is the container's root
    // whatever was unmounted since.
    nix::unistd::fchdir(&r.init_root).context("enter the init's root")?;
    nix::unistd::chroot(".").context("chroot to the init's root")?;
    fds::close_all_but(r.preserve_fds, &[Some(chan.raw()), r.console.as_ref().map(AsRawFd::as_raw_fd)])?;
    match clone::clone3(&clone::Args { flags: libc::CLONE_PARENT as u64, cgroup: None, pidfd: false })? {
        Forked::Child => crate::spawn::child_main(chan, || process(r, chan, userns)),
        Forked::Parent { pid, .. } => chan.send(&Msg::Pid(pid)),
    }
}

fn process(r: &Request, chan: &Channel, userns: bool) -> Result<()> {
    let proc = Proc::open(Path::new("/proc")).ok();
    if r.process.terminal().unwrap_or(false) {
        let root = inroot::open(
            &nix::fcntl::open("/", nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).context("open /")?,
            Path::new("/"),
            nix::fcntl::OFlag::O_PATH,
        )
        .context("open /")?;
        let pty = tty::open(&root)?;
        if let Some(size) = r.process.console_size() {
            tty::set_size(&pty.master, size.height() as u16, size.width() as u16)?;
        }
        // Relayed by P0, the pty has the caller's size (fd 0 is still the caller's stdin here)
        // before the process runs: set by P0 once it has the master, it came after the process
        // had read 0x0 under load.
        if r.console.is_none() {
            // SAFETY: fd 0, ours until make_controlling replaces it, borrowed for the call only.
            tty::copy_size(unsafe { std::os::fd::BorrowedFd::borrow_raw(0) }, &pty.master);
        }
        // To --console-socket, or to P0, which relays it to the caller's stdio. Either way the
        // slave replaces our stdio (the caller's terminal, perhaps) before anything of the
        // container's runs, in a session of its own.
        match &r.console {
            Some(sock) => tty::send_fd(sock.as_raw_fd(), pty.master.as_raw_fd(), tty::name(&pty.master)?.as_bytes())?,
            None => chan.send_fd(pty.master.as_raw_fd())?,
        }
        tty::make_controlling(&pty.slave, true)?;
    } else {
        // Never the caller's session (tty::new_session).
        tty::new_session()?;
    }
    rlimits::apply(r.process.rlimits().as_deref().unwrap_or(&[]))?;
    let id = finish::Identity {
        process: &r.process,
        caps: &r.caps,
        seccomp: r.seccomp.as_ref(),
        proc: proc.as_ref(),
        userns,
        personality: r.personality.as_ref(),
        landlock: r.landlock.as_ref(),
        reaper: false,
    };
    let done = finish::identity(&id, chan)?;
    let exe = finish::resolve_executable(&r.process)?;
    finish::exec(&id, done, &exe, r.preserve_fds, chan, None)
}
