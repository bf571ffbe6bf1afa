//! The job's standard streams as testudo hands them over: stdin is /dev/null or, with `--stdin`,
//! the caller's pipe or file (never a terminal); stdout and stderr are pipes testudo reads and
//! relays (`watch`), one pipe when the caller's two are one file, so `2>&1` keeps its order. They
//! become fds 0, 1 and 2 only for the clone of the job's init (`with_stdio`). With `--tty` the
//! job's init makes a new pty in the job's own devpts and puts its slave over them (`linux::tty`,
//! stdin too unless `--stdin`); testudo relays the master (`take_pty`), never the caller's
//! terminal, which the job does not get (CVE-2017-5226 class).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;

use crate::error::{Context, Error, Result};

/// The job's fds 0, 1 and 2 until its init is cloned, and the ends testudo relays.
pub struct Streams {
    /// Given to the clone (`hand_over`), then closed: the job's exit is EOF on the pipes.
    given: Option<[OwnedFd; 3]>,
    /// What testudo reads, and which of its own fds (1 or 2) it goes to.
    pub relayed: Vec<(OwnedFd, i32)>,
    /// stdout and stderr are one stream: what came from which is not known.
    pub merged: bool,
}

impl Streams {
    /// Made before the container's directory exists: a refusal here leaves nothing to clean.
    pub fn new(callers_stdin: bool, tty: bool) -> Result<Streams> {
        let stdin = job_stdin(callers_stdin)?;
        if tty {
            // Until the init puts the pty's slave over them; the master comes later (`take_pty`).
            let null = || nix::fcntl::open("/dev/null", OFlag::O_WRONLY | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty()).context("open /dev/null");
            return Ok(Streams { given: Some([stdin, null()?, null()?]), relayed: Vec::new(), merged: true });
        }
        // The caller's 1 and 2 one file (`2>&1`): one pipe, or the order of the lines would be lost.
        let merged = same_file(1, 2);
        let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("stdout pipe")?;
        let mut relayed = vec![(out_r, 1)];
        let err_w = if merged {
            out_w.try_clone().context("dup stdout pipe")?
        } else {
            let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("stderr pipe")?;
            relayed.push((err_r, 2));
            err_w
        };
        Ok(Streams { given: Some([stdin, out_w, err_w]), relayed, merged })
    }

    /// The job's pty master, sent by its init (`tty`): sized as the caller's terminal if it has
    /// one (stdout's, stderr's, or stdin's), else 24 rows of 80 columns; relayed to our stdout.
    pub fn take_pty(&mut self, master: Option<&OwnedFd>) -> Result<()> {
        let Some(master) = master.map(|m| m.try_clone().context("dup pty master")).transpose()? else { return Ok(()) };
        if !callers_size(&master) {
            crate::linux::tty::set_size(&master, 24, 80)?;
        }
        self.relayed.push((master, 1));
        Ok(())
    }

    /// Run `f`, the clone of the job's init, with the job's fds as 0, 1 and 2; then close ours.
    pub fn hand_over<T>(&mut self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let given = self.given.take().ok_or_else(|| Error::new("sandbox: stdio handed over twice"))?;
        with_stdio([&given[0], &given[1], &given[2]], f)
    }
}

/// Give the pty `master` the window size of the caller's terminal: its stdout's, stderr's or
/// stdin's (only the size is read from it); false when none is a terminal.
pub fn callers_size(master: &OwnedFd) -> bool {
    // SAFETY: our own stdio numbers, borrowed for the calls only.
    let callers = unsafe { [BorrowedFd::borrow_raw(1), BorrowedFd::borrow_raw(2), BorrowedFd::borrow_raw(0)] };
    callers.into_iter().any(|fd| crate::linux::tty::copy_size(fd, master))
}

/// Whether fds `a` and `b` are one open file: the same inode, and the same status flags.
fn same_file(a: i32, b: i32) -> bool {
    // SAFETY: our own stdio numbers, borrowed for the calls only.
    let (a, b) = unsafe { (BorrowedFd::borrow_raw(a), BorrowedFd::borrow_raw(b)) };
    let flags = |fd| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).ok();
    match (nix::sys::stat::fstat(a), nix::sys::stat::fstat(b)) {
        (Ok(x), Ok(y)) => (x.st_dev, x.st_ino) == (y.st_dev, y.st_ino) && flags(a) == flags(b),
        _ => false,
    }
}

/// The job's stdin: /dev/null, or with `--stdin` the caller's, which must not be a terminal. The
/// job never holds the caller's terminal: with it, it could read what the caller types and, with
/// TIOCSTI, type into the caller's shell (CVE-2017-5226 class).
fn job_stdin(callers: bool) -> Result<OwnedFd> {
    if !callers {
        return nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
            .context("sandbox: open /dev/null for the job's stdin");
    }
    if nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        return Err(Error::new("--stdin: standard input is a terminal, which the job never gets: pipe the input in (… | testudo sandbox --stdin …)"));
    }
    dup_cloexec(0)
}

/// Run `f` with fds 0, 1 and 2 replaced by `fds` (the container inherits them), then put the
/// caller's back (closed again where the caller had none: CI may run us without stdin).
fn with_stdio<T>(fds: [&OwnedFd; 3], f: impl FnOnce() -> Result<T>) -> Result<T> {
    let mut saved = Vec::with_capacity(3);
    for fd in 0..3 {
        saved.push(match dup_cloexec(fd) {
            Err(e) if e.errno() == Some(Errno::EBADF) => None,
            other => Some(other?),
        });
    }
    for (to, from) in fds.iter().enumerate() {
        // SAFETY: dup2 onto our own stdio numbers; the old ones are saved above.
        if unsafe { libc::dup2(from.as_raw_fd(), to as i32) } < 0 {
            return Err(crate::error::last_os("sandbox: redirect stdio"));
        }
    }
    let r = f();
    for (to, from) in saved.iter().enumerate() {
        match from {
            // SAFETY: as above, putting the saved descriptors back.
            Some(from) => unsafe { libc::dup2(from.as_raw_fd(), to as i32) },
            // SAFETY: closing our own stdio number, which the caller did not have open.
            None => unsafe { libc::close(to as i32) },
        };
    }
    r
}

fn dup_cloexec(fd: i32) -> Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on one of our stdio fds returns a new fd nothing else owns.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(crate::error::last_os(format!("dup fd {fd}")));
    }
    // SAFETY: the kernel just returned this fd to us.
    Ok(unsafe { crate::linux::procfs::own(n) })
}
