//! The last steps before execve, shared by a container's init and by `exec`.

use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxPersonality, Process};

use crate::error::{Context, Error, Result};
use crate::linux::procfs::Proc;
use crate::linux::{affinity, creds, fds, inroot, ioprio, personality, sched};
use crate::security::{apparmor, capabilities, landlock, seccomp, selinux};
use crate::spawn::sync::Channel;

pub struct Identity<'a> {
    pub process: &'a Process,
    pub caps: &'a capabilities::Plan,
    pub seccomp: Option<&'a seccomp::Program>,
    /// The container's procfs, verified, for LSM label writes.
    pub proc: Option<&'a Proc>,
    pub userns: bool,
    /// linux.personality, from the container's config (exec processes get it too).
    pub personality: Option<&'a LinuxPersonality>,
    /// Landlock, applied once no_new_privileges is set and before seccomp.
    pub landlock: Option<&'a landlock::Plan>,
    /// Fork the process from a reaper that stays pid 1 (`spawn::reaper`), right before seccomp.
    pub reaper: bool,
}

fn nnp(p: &Process) -> bool {
    p.no_new_privileges().unwrap_or(false)
}

/// When the filter goes on (see `security::seccomp`): with a listener, at the end of `identity`
/// (its fd must reach P0 before ready); else in `exec`, as the last step before execve, with or
/// without no_new_privileges. Without it seccomp(2) needs CAP_SYS_ADMIN, which is held in the
/// permitted set until then (`capabilities::must_hold_admin`) and raised right before: after
/// the filter the process makes one syscall, execve, which every profile that runs the workload
/// at all allows (a profile recorded by `profile`, from the execve on, too).
///
/// After a listener's filter the runtime still calls, and the profile must allow (as runc's
/// does): capset (without no_new_privileges), sendmsg, recvfrom, recvmsg, read, close_range
/// (else close), fcntl, chdir, getcwd, umask, rt_sigprocmask, personality (with
/// linux.personality), execve, and what startContainer hooks need to be spawned.
#[derive(PartialEq, Eq)]
enum SeccompAt {
    Listener,
    Execve,
}

fn seccomp_at(i: &Identity) -> SeccompAt {
    if i.seccomp.is_some_and(|s| s.listener.is_some()) {
        SeccompAt::Listener
    } else {
        SeccompAt::Execve
    }
}

/// Whether CAP_SYS_ADMIN is held beyond the plan for the filter (see `SeccompAt`).
fn holds_admin(i: &Identity) -> bool {
    capabilities::must_hold_admin(i.caps, i.seccomp.is_some() && !nnp(i.process))
}

/// What `identity` leaves for `exec`: whether it entered process.cwd already
/// (`enter_cwd_privileged`), and whether CAP_SYS_ADMIN is held for the filter (`SeccompAt`).
#[derive(Clone, Copy)]
pub struct Identified {
    cwd_entered: bool,
    admin_held: bool,
}

/// Enter process.cwd while still root in the container, as runc does: a user who may use a
/// directory but not search a parent on the way (a 0700 home the process is given as its cwd)
/// still starts there. The walk refuses magic links (CVE-2024-21626: the host fds still open
/// here must not be reachable as /proc/self/fd/N), and `try_exec` checks after the fds are
/// closed that the cwd is inside the root, as for any cwd. On any failure it is left to
/// `try_exec`, which enters it as the user, once the fds are closed, and reports the error.
fn enter_cwd_privileged(p: &Process) -> bool {
    let Ok(root) = nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()) else {
        return false;
    };
    inroot::open(&root, p.cwd(), OFlag::O_PATH | OFlag::O_DIRECTORY).is_ok_and(|dir| nix::unistd::fchdir(&dir).is_ok())
}

/// Labels, scheduler and I/O priority, the cwd, then the bounding set, uid/gid, the exact
/// capability sets (CAP_SYS_ADMIN held for a filter without no_new_privileges), and
/// no_new_privileges; a filter with a listener last.
pub fn identity(i: &Identity, chan: &Channel) -> Result<Identified> {
    let p = i.process;
    if let Some(profile) = p.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        let proc = i.proc.ok_or_else(|| Error::new("apparmorProfile needs a proc mount at /proc"))?;
        apparmor::apply_on_exec(proc, profile)?;
    }
    if let Some(label) = p.selinux_label().as_deref().filter(|s| !s.is_empty()) {
        let proc = i.proc.ok_or_else(|| Error::new("selinuxLabel needs a proc mount at /proc"))?;
        selinux::apply_on_exec(proc, label)?;
    }
    // Real-time scheduling and I/O classes need CAP_SYS_NICE / CAP_SYS_ADMIN: before the drop.
    if let Some(s) = p.scheduler() {
        sched::apply(s)?;
    }
    if let Some(io) = p.io_priority() {
        ioprio::apply(io)?;
    }
    // We are in the container's cgroup already (cloned into it): the "final" CPUs.
    if let Some(a) = p.exec_cpu_affinity() {
        affinity::apply("process.execCPUAffinity.final", a.cpu_affinity_final().as_deref())?;
    }
    // Read before any filter: every syscall we can move ahead of it is one a profile need not allow.
    let setgroups = !i.userns || std::fs::read_to_string("/proc/self/setgroups").map_or(true, |s| s.trim() != "deny");
    if i.seccomp.is_some() && seccomp_at(i) == SeccompAt::Listener {
        fds::note_table_size(i.proc);
    }
    let hold_admin = holds_admin(i);
    if hold_admin && i.reaper {
        // The reaper forks right before the filter and lives on: it would keep CAP_SYS_ADMIN.
        return Err(Error::new("a seccomp filter under a reaper needs no_new_privileges"));
    }
    let cwd_entered = enter_cwd_privileged(p);
    capabilities::drop_bounding(i.caps)?;
    creds::become_user(p.user(), setgroups)?;
    capabilities::apply(i.caps, hold_admin)?;
    if nnp(p) {
        nix::sys::prctl::set_no_new_privs().context("no_new_privileges")?;
    }
    if let Some(l) = i.landlock {
        landlock::apply(l)?;
    }
    if let (Some(prog), SeccompAt::Listener) = (i.seccomp, seccomp_at(i)) {
        if hold_admin {
            capabilities::raise_admin(i.caps)?;
        }
        let fd = seccomp::install(prog)?;
        if hold_admin {
            capabilities::drop_admin(i.caps)?;
        }
        if let Some(fd) = fd {
            chan.send_seccomp_fd(fd.as_raw_fd())?;
        }
    }
    Ok(Identified { cwd_entered, admin_held: hold_admin })
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn env_value<'a>(p: &'a Process, key: &str) -> Option<&'a str> {
    p.env().iter().flatten().find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// args[0] as execvp would find it, with the container's PATH, in the container's root.
pub fn resolve_executable(p: &Process) -> Result<PathBuf> {
    let arg0 = p.args().as_ref().and_then(|a| a.first()).ok_or_else(|| Error::new("process.args is empty"))?;
    if arg0.contains('/') {
        let path = if Path::new(arg0).is_absolute() { PathBuf::from(arg0) } else { p.cwd().join(arg0) };
        return match nix::unistd::access(&path, nix::unistd::AccessFlags::X_OK) {
            Ok(()) => Ok(path),
            Err(e) => Err(Error::sys(format!("exec: {arg0:?}"), e)),
        };
    }
    let path = env_value(p, "PATH").unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        if is_file(&candidate) && nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK).is_ok() {
            return Ok(candidate);
        }
    }
    Err(Error::new(format!("exec: {arg0:?}: executable file not found in $PATH")))
}

/// Close every fd but stdio, the preserved ones, the sync socket and `exec_fifo` (both
/// close-on-exec), enter the cwd, install seccomp last (without a listener), and execve.
/// Never returns: once the fds are closed, the `OwnedFd`s in our callers' frames name closed (or
/// reused) numbers, so an error is sent from here and the process ends without unwinding into
/// them. `exec_fifo` is init's read end of exec.fifo: `start` returns when the last reader is
/// gone, so it must close at execve itself, not here.
pub fn exec(i: &Identity, done: Identified, exe: &Path, preserve: u32, chan: &Channel, exec_fifo: Option<RawFd>) -> ! {
    // CVE-2024-21626: no host fd may be open while the cwd and args[0] are resolved, or a
    // "/proc/self/fd/N" path would lead out of the root. Close them, don't just mark them. The
    // two kept are a socket and a fifo: neither resolves as a directory or executes.
    let e = match fds::close_all_but(preserve, &[Some(chan.raw()), exec_fifo]) {
        Ok(()) => after_close(i, done, exe, preserve, chan),
        Err(e) => e,
    };
    fail(chan, e)
}

/// Report a failure after `start` may have returned (`spawn::tell`: P0 hears it while it still
/// listens, else the container's stderr shows it), and end the process.
pub fn fail(chan: &Channel, e: Error) -> ! {
    crate::spawn::tell(chan, e);
    // SAFETY: _exit ends the process at once; nothing of our callers' frames runs again.
    unsafe { libc::_exit(1) }
}

/// The rest of `exec`; returns only on failure.
fn after_close(i: &Identity, done: Identified, exe: &Path, preserve: u32, chan: &Channel) -> Error {
    match try_exec(i, done, exe, preserve, chan) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn try_exec(i: &Identity, done: Identified, exe: &Path, preserve: u32, chan: &Channel) -> Result<std::convert::Infallible> {
    let p = i.process;
    fds::seal(preserve)?;
    if !done.cwd_entered {
        std::env::set_current_dir(p.cwd()).with_context(|| format!("cwd {:?}", p.cwd()))?;
    }
    // CVE-2024-21626: whichever way it was entered, the cwd must be inside the root.
    match nix::unistd::getcwd() {
        Ok(cwd) if cwd.is_absolute() => {}
        _ => return Err(Error::new(format!("cwd {:?} is outside the container's root", p.cwd()))),
    }
    creds::umask(p.user());
    if i.reaper {
        crate::spawn::reaper::fork_job()?;
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None).context("reset signal mask")?;
    let argv = cstrings(p.args().as_deref().unwrap_or(&[]))?;
    let mut env = cstrings(p.env().as_deref().unwrap_or(&[]))?;
    if env_value(p, "HOME").is_none() {
        env.push(CString::new(format!("HOME={}", home_of(p.user().uid()))).map_err(|_| Error::new("HOME"))?);
    }
    let exe_c = CString::new(exe.as_os_str().as_encoded_bytes()).map_err(|_| Error::new(format!("exec: {exe:?}: NUL in path")))?;
    // The NULL-terminated arrays execve takes, made now: an allocation after the filter could
    // need brk or mmap, which a profile need not allow.
    let (argv_p, env_p) = (pointers(&argv), pointers(&env));
    if let Some(persona) = i.personality {
        personality::apply(persona)?;
    }
    // A notify fd P0 watches (`seccomp::recorder`) must stay open until execve closes it (close-on-exec): closed
    // any earlier, every syscall after it would fail with ENOSYS.
    let mut _notify = None;
    if let (Some(prog), SeccompAt::Execve) = (i.seccomp, seccomp_at(i)) {
        // Dumpable before P0 hears of the fd: it takes it at once (`recorder::take`).
        if prog.dumpable {
            nix::sys::prctl::set_dumpable(true).context("set dumpable for the supervisor")?;
        }
        if prog.watch.is_some() {
            chan.send(&crate::spawn::sync::Msg::RecorderAt(seccomp::recorder::next_fd()?))?;
        }
        if done.admin_held {
            capabilities::raise_admin(i.caps)?;
        }
        // From here on: execve, and nothing else unless it fails.
        _notify = seccomp::install(prog)?;
        if matches!(prog.watch, Some(seccomp::recorder::Answer::Errno(_))) {
            seccomp::recorder::hold()?;
        }
    }
    // SAFETY: the three pointers point to NUL-terminated strings (CString) and to NULL-terminated
    // arrays of them, all alive across the call; on success it does not return.
    unsafe { libc::execve(exe_c.as_ptr(), argv_p.as_ptr(), env_p.as_ptr()) };
    Err(Error::sys(format!("exec: {exe:?}"), nix::errno::Errno::last()))
}

fn pointers(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter().map(|s| s.as_ptr()).chain(std::iter::once(std::ptr::null())).collect()
}

/// A regular file (after symlinks). stat(2) (newfstatat), not std's statx: a seccomp profile
/// that predates statx (Linux 4.11) may already be on here (`SeccompAt::Listener`).
fn is_file(path: &Path) -> bool {
    nix::sys::stat::stat(path).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
}

fn cstrings(v: &[String]) -> Result<Vec<CString>> {
    v.iter().map(|s| CString::new(s.as_bytes()).map_err(|_| Error::new(format!("{s:?}: NUL byte")))).collect()
}

/// The user's home directory from the container's /etc/passwd, or "/".
fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
            })
        })
        .unwrap_or_else(|| "/".to_string())
}
