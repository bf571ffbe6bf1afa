//! `process.terminal`: a pty allocated inside the container's own devpts, made the container's
//! stdio, controlling terminal and /dev/console; the master goes to `--console-socket` with
//! SCM_RIGHTS and the pty name as payload (the protocol go-runc and conmon speak).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::{Context, Error, Result};
use crate::linux::{inroot, mounts, procfs};

pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Open a new pty from the container's /dev/pts/ptmx. The slave is opened from the master with
/// TIOCGPTPEER, never by the path /dev/pts/N, which the container could have redirected
/// (CVE-2025-52565).
pub fn open(root: &OwnedFd) -> Result<Pty> {
    let master =
        inroot::open(root, Path::new("/dev/pts/ptmx"), OFlag::O_RDWR | OFlag::O_NOCTTY).context("open /dev/pts/ptmx (is devpts mounted at /dev/pts?)")?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int through the pointer, which lives across the call.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(crate::error::last_os("unlock pty"));
    }
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd for the peer.
    let slave = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if slave < 0 {
        return Err(crate::error::last_os("open pty peer"));
    }
    // SAFETY: a new fd from the kernel that nothing else owns.
    let slave = unsafe { procfs::own(slave) };
    Ok(Pty { master, slave })
}

pub fn name(master: &OwnedFd) -> Result<String> {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes the pty number into `n`, which lives across the call.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } < 0 {
        return Err(crate::error::last_os("pty number"));
    }
    Ok(format!("/dev/pts/{n}"))
}

pub fn set_size(master: &OwnedFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a winsize through the pointer, which lives across the call.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(crate::error::last_os("set console size"));
    }
    Ok(())
}

/// Give the pty `to` the window size of the terminal `from`; false when `from` is not a terminal.
pub fn copy_size(from: BorrowedFd, to: &OwnedFd) -> bool {
    // SAFETY: TIOCGWINSZ and TIOCSWINSZ write and read a winsize through a pointer to a local
    // that lives across both calls.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) == 0 && libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &ws) == 0
    }
}

/// Bind the slave onto /dev/console inside the root.
pub fn mount_console(root: &OwnedFd, slave: &OwnedFd) -> Result<()> {
    // CVE-2025-52565: a /dev/console that is a symlink would have the pty mounted wherever it
    // leads inside the root, over a procfs file for instance. Refuse it; a missing one is made.
    let dev = inroot::ensure(root, Path::new("/dev"), inroot::Kind::Dir, 0o755).context("/dev")?;
    match nix::sys::stat::fstatat(&dev, "console", nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => return Err(Error::new("/dev/console in the rootfs is a symlink")),
        Ok(_) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(Error::sys("/dev/console", e)),
    }
    let target = inroot::ensure(root, Path::new("/dev/console"), inroot::Kind::File, 0o600).context("/dev/console")?;
    let tree = mounts::open_tree(slave.as_raw_fd(), Path::new(""), false).context("bind /dev/console")?;
    mounts::move_mount(&tree, &target).context("bind /dev/console")
}

/// A session of this process's own, with no controlling terminal. Every container and exec
/// process gets one: left in the caller's session, a process whose stdio is the caller's
/// terminal has it as its controlling tty, and TIOCSTI on it types commands into the caller's
/// shell (CVE-2017-5226, CVE-2016-7545 class); without it, the kernel refuses TIOCSTI to any
/// process not holding CAP_SYS_ADMIN in the host's user namespace (the seccomp profiles deny it
/// by argument for those that do).
pub fn new_session() -> Result<()> {
    nix::unistd::setsid().context("setsid")?;
    Ok(())
}

/// Make the slave this process's controlling terminal and its stdout and stderr, and its stdin
/// when `stdin_too`.
pub fn make_controlling(slave: &OwnedFd, stdin_too: bool) -> Result<()> {
    new_session()?;
    // SAFETY: TIOCSCTTY with argument 0 on an fd we own.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(crate::error::last_os("set controlling terminal"));
    }
    for target in if stdin_too { 0 } else { 1 }..3 {
        dup_onto(slave.as_raw_fd(), target)?;
    }
    Ok(())
}

fn dup_onto(fd: RawFd, target: RawFd) -> Result<()> {
    // SAFETY: dup2 onto a stdio number; both are plain integers and the old target is replaced.
    if unsafe { libc::dup2(fd, target) } < 0 {
        return Err(crate::error::last_os(format!("dup pty to fd {target}")));
    }
    Ok(())
}

/// Send `fd` with `payload` over a unix socket (SCM_RIGHTS).
pub fn send_fd(sock: RawFd, fd: RawFd, payload: &[u8]) -> Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(payload)];
    // MSG_NOSIGNAL: a console socket closed by its peer is an EPIPE to report, not a SIGPIPE.
    sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None).context("send pty master")?;
    Ok(())
}

/// Connect to `--console-socket` (done by the parent, on the host, before the clone).
pub fn connect(path: &Path) -> Result<OwnedFd> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let sock = socket(AddressFamily::Unix, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).context("console socket")?;
    let addr = UnixAddr::new(path).with_context(|| format!("console socket {path:?}"))?;
    connect(sock.as_raw_fd(), &addr).with_context(|| format!("connect console socket {path:?}"))?;
    Ok(sock)
}

pub fn require_socket_or_foreground(terminal: bool, socket: bool, detached: bool) -> Result<()> {
    if terminal && !socket && detached {
        return Err(Error::new("process.terminal needs --console-socket when detached"));
    }
    if !terminal && socket {
        return Err(Error::new("--console-socket given but process.terminal is false"));
    }
    Ok(())
}
