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

/// When the filter goes on (see `security::seccomp`): early while CAP_SYS_ADMIN is held without
/// no_new_privileges; at the end of `identity` with a listener (its fd must reach P0 before
/// ready); else in `exec`, right before execve.
///
/// After an early filter the runtime still calls, and the profile must allow (as runc's does):
/// prctl, setgroups, setresgid, setresuid, capget, capset, newfstatat, access, sendmsg,
/// recvfrom, recvmsg, read, fcntl, close, chdir, getcwd, umask, rt_sigprocmask, personality
/// (with linux.personality), execve, and what startContainer hooks need to be spawned.
/// close_range is not among them: without it fds are closed one by one (`fds::close_all_but`).
#[derive(PartialEq, Eq)]
enum SeccompAt {
    Early,
    Listener,
    Execve,
}

fn seccomp_at(i: &Identity) -> SeccompAt {
    match (nnp(i.process), i.seccomp.is_some_and(|s| s.listener.is_some())) {
        (false, _) => SeccompAt::Early,
        (true, true) => SeccompAt::Listener,
        (true, false) => SeccompAt::Execve,
    }
}

/// Install the filter; a notify fd goes to P0 for the listener, and is closed here.
fn install_seccomp(prog: &seccomp::Program, chan: &Channel) -> Result<()> {
    if let Some(fd) = seccomp::install(prog)? {
        chan.send_seccomp_fd(fd.as_raw_fd())?;
    }
    Ok(())
}

/// Whether `identity` entered process.cwd already (`enter_cwd_privileged`).
#[derive(Clone, Copy)]
pub struct CwdEntered(bool);

/// Enter process.cwd while still root in the container, as runc does: a user who may use a
/// directory but not search a parent on the way (a 0700 home the process is given as its cwd)
/// still starts there. The walk refuses magic links (CVE-2024-21626: the host fds still open
/// here must not be reachable as /proc/self/fd/N), and `try_exec` checks after the fds are
/// closed that the cwd is inside the root, as for any cwd. On any failure it is left to
/// `try_exec`, which enters it as the user, once the fds are closed, and reports the error.
fn enter_cwd_privileged(p: &Process) -> CwdEntered {
    let Ok(root) = nix::fcntl::open("/", OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()) else {
        return CwdEntered(false);
    };
    let entered = inroot::open(&root, p.cwd(), OFlag::O_PATH | OFlag::O_DIRECTORY).is_ok_and(|dir| nix::unistd::fchdir(&dir).is_ok());
    CwdEntered(entered)
}

/// Labels, scheduler and I/O priority, the cwd, then (without no_new_privileges) seccomp while
/// CAP_SYS_ADMIN is still held, then the bounding set, uid/gid, the exact capability sets, and
/// no_new_privileges.
pub fn identity(i: &Identity, chan: &Channel) -> Result<CwdEntered> {
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
    if i.seccomp.is_some() && seccomp_at(i) != SeccompAt::Execve {
        fds::note_table_size(i.proc);
    }
    let cwd = enter_cwd_privileged(p);
    if let (Some(prog), SeccompAt::Early) = (i.seccomp, seccomp_at(i)) {
        install_seccomp(prog, chan)?;
    }
    capabilities::drop_bounding(i.caps)?;
    creds::become_user(p.user(), setgroups)?;
    capabilities::apply(i.caps)?;
    if nnp(p) {
        nix::sys::prctl::set_no_new_privs().context("no_new_privileges")?;
    }
    if let Some(l) = i.landlock {
        landlock::apply(l)?;
    }
    if let (Some(prog), SeccompAt::Listener) = (i.seccomp, seccomp_at(i)) {
        install_seccomp(prog, chan)?;
    }
    Ok(cwd)
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
/// close-on-exec), enter the cwd, install seccomp last when no_new_privileges is on, and execve.
/// Never returns: once the fds are closed, the `OwnedFd`s in our callers' frames name closed (or
/// reused) numbers, so an error is sent from here and the process ends without unwinding into
/// them. `exec_fifo` is init's read end of exec.fifo: `start` returns when the last reader is
/// gone, so it must close at execve itself, not here.
pub fn exec(i: &Identity, cwd: CwdEntered, exe: &Path, preserve: u32, chan: &Channel, exec_fifo: Option<RawFd>) -> ! {
    // CVE-2024-21626: no host fd may be open while the cwd and args[0] are resolved, or a
    // "/proc/self/fd/N" path would lead out of the root. Close them, don't just mark them. The
    // two kept are a socket and a fifo: neither resolves as a directory or executes.
    let e = match fds::close_all_but(preserve, &[Some(chan.raw()), exec_fifo]) {
        Ok(()) => after_close(i, cwd, exe, preserve, chan),
        Err(e) => e,
    };
    fail(chan, e)
}

/// Report a failure after `start` may have returned, and end the process. P0 hears it while it
/// still listens (`run`, or `create` before ready); once nobody does (`start` returned and
/// `create` is long gone), the container's stderr is the one place left where its owner can
/// read why it never ran, as it would read the program's own errors.
pub fn fail(chan: &Channel, e: Error) -> ! {
    let text = e.to_string();
    if chan.send(&crate::spawn::sync::Msg::Fail(e)).is_err() {
        let line = format!("testudo: container process: {text}\n");
        let _ = nix::unistd::write(std::io::stderr(), line.as_bytes());
    }
    // SAFETY: _exit ends the process at once; nothing of our callers' frames runs again.
    unsafe { libc::_exit(1) }
}

/// The rest of `exec`; returns only on failure.
fn after_close(i: &Identity, cwd: CwdEntered, exe: &Path, preserve: u32, chan: &Channel) -> Error {
    match try_exec(i, cwd, exe, preserve, chan) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn try_exec(i: &Identity, cwd: CwdEntered, exe: &Path, preserve: u32, chan: &Channel) -> Result<std::convert::Infallible> {
    let p = i.process;
    fds::seal(preserve)?;
    if !cwd.0 {
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
        _notify = seccomp::install(prog)?;
        if matches!(prog.watch, Some(seccomp::recorder::Answer::Errno(_))) {
            seccomp::recorder::hold()?;
        }
    }
    nix::unistd::execve(&exe_c, &argv, &env).map_err(|e| Error::sys(format!("exec: {exe:?}"), e))
}

/// A regular file (after symlinks). stat(2) (newfstatat), not std's statx: a seccomp profile
/// that predates statx (Linux 4.11) may already be on here (`SeccompAt::Early`).
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
