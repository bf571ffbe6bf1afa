//! The syscall recorder of `testudo profile`: a filter that turns every syscall of the container's
//! processes into a user notification (SECCOMP_RET_USER_NOTIF), answered by P0 with
//! SECCOMP_USER_NOTIF_FLAG_CONTINUE — the kernel then runs the syscall as if no filter were there.
//! Record only: P0 never decides anything on a notification (the flag's own documentation warns
//! that a decision taken on one can be raced), it only notes (architecture, number).
//!
//! The same filter, the other way round, lists what a profile denies (`sandbox --report`, issue 22
//! item 21): the returns of the profile's default errno become notifications, and P0 notes the
//! syscall and answers with that errno, so the job sees exactly the denial the profile gives.
//! Nothing is decided on the notification's arguments: every one of them is refused. One
//! listener per filter, and a notification does not say which return raised it, so only that
//! one errno is listed (other errnos of the profile, the ENOSYS stub, KILL and TRAP stay silent),
//! and a recording run lists nothing.
//!
//! Recording never lifts the container's own filter (an untrusted job recorded would otherwise
//! run with no filter at all: unshare, mount, keyctl, io_uring, ptrace). The recording filter is
//! the enforced profile itself, compiled as usual, with every return that lets a syscall run
//! (ALLOW, LOG) turned into USER_NOTIF: what the profile denies (ERRNO, KILL, TRAP, the ENOSYS
//! stub) is still denied by the kernel and never reaches us, and what it allows is noted and
//! continued. One filter, not the recorder stacked on the profile: the second of two filters
//! would itself be installed through the first (a notification nobody could answer yet, or a
//! seccomp(2) the profile denies), and the kernel's precedence across filters (ERRNO before
//! USER_NOTIF) gives the same answers as the rewrite does. Denied calls are not in the recording,
//! so the profile written never allows them.
//!
//! The filter goes on as the init's last step, right before its execve (the process runs with
//! no_new_privileges), so what is recorded is the job's and not the runtime's; the execve itself
//! is the first notification. P0 takes the notify fd from the init with pidfd_getfd: the init
//! tells it the fd's number first (`Msg::RecorderAt`), since a message sent after the filter is
//! on would itself wait for an answer from a P0 that has no fd yet.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

use libseccomp::{ScmpArch, ScmpSyscall};
use nix::errno::Errno;
use serde_json::json;

use super::Program;
use crate::error::{Error, Result};

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_BIT: i32 = 0x4000_0000;

const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const RET_A: u16 = (libc::BPF_RET | libc::BPF_A) as u16;

/// How P0 answers the notifications of a filter it watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Recording: the syscall runs (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
    Continue,
    /// Listing denials: the syscall fails with this errno, the profile's own.
    Errno(u16),
}

/// The recording filter: `enforced` (the container's compiled profile) with its allowing returns
/// turned into notifications, or without a profile `ret SECCOMP_RET_USER_NOTIF` for every
/// syscall of every architecture.
pub fn program(enforced: Option<Program>) -> Result<Program> {
    let Some(p) = enforced else {
        let ret = libc::sock_filter { code: RET_K, jt: 0, jf: 0, k: libc::SECCOMP_RET_USER_NOTIF };
        return Ok(Program {
            filter: vec![ret],
            flags: libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            listener: None,
            watch: Some(Answer::Continue),
            dumpable: false,
        });
    };
    rewrite(p, Answer::Continue, |k| matches!(k & libc::SECCOMP_RET_ACTION_FULL, libc::SECCOMP_RET_ALLOW | libc::SECCOMP_RET_LOG))
}

/// The profile with the returns of its default errno (`errno`) turned into notifications, which
/// P0 answers with that errno and lists. In front, the hold (`hold`).
pub fn denials(enforced: Program, errno: u16) -> Result<Program> {
    let mut p = rewrite(enforced, Answer::Errno(errno), |k| k == libc::SECCOMP_RET_ERRNO | u32::from(errno))?;
    let ld = |k| libc::sock_filter { code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, jt: 0, jf: 0, k };
    let jeq = |k, jf| libc::sock_filter { code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16, jt: 0, jf, k };
    // seccomp_data: nr at 0, args[0]'s low half at 16 (little-endian). The program behind loads
    // what it tests itself, so what the accumulator holds after these does not matter.
    let hold = [ld(0), jeq(HOLD_NR as u32, 3), ld(16), jeq(HOLD_MAGIC, 1), libc::sock_filter { code: RET_K, jt: 0, jf: 0, k: libc::SECCOMP_RET_USER_NOTIF }];
    p.filter.splice(0..0, hold);
    Ok(p)
}

/// The hold: a call no kernel has (number HOLD_NR, first argument HOLD_MAGIC) that the filter
/// listing denials always notifies. Recording, the job's execve is its first notification and
/// waits for P0, which takes the notify fd meanwhile; listing denials, an allowed execve would not
/// wait, and a job that ran on (forked, exited) before P0 had the fd would leave its denials with
/// no listener (ENOSYS instead of the profile's errno, and no list). So the init makes this call
/// right after the filter goes on, and P0 answers it (0, nothing run) once it has the fd. A job
/// that makes it too gets 0 and nothing else.
const HOLD_NR: i64 = 0x3ffe_7e57;
const HOLD_MAGIC: u32 = 0x7e57_ab1e;

/// Wait in the hold until P0 has the notify fd (the init, right after the filter went on).
pub fn hold() -> Result<()> {
    // SAFETY: a syscall number no kernel has, with plain integer arguments: the filter turns it
    // into a notification, which P0 answers with 0; without the filter it would be ENOSYS.
    let r = unsafe { libc::syscall(HOLD_NR, HOLD_MAGIC as libc::c_long) };
    if r != 0 {
        return Err(crate::error::last_os("seccomp: wait for the supervisor to take the notify fd"));
    }
    Ok(())
}

fn rewrite(p: Program, answer: Answer, notified: impl Fn(u32) -> bool) -> Result<Program> {
    if p.listener.is_some() {
        return Err(Error::new("recorder: the profile has SCMP_ACT_NOTIFY rules (a listener of its own): it cannot be watched"));
    }
    let mut filter = p.filter;
    for ins in &mut filter {
        if ins.code == RET_A {
            return Err(Error::new("recorder: the compiled profile returns a computed action, which cannot be rewritten"));
        }
        if ins.code == RET_K && notified(ins.k) {
            ins.k = libc::SECCOMP_RET_USER_NOTIF;
        }
    }
    let mut flags = p.flags | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    if flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
        // TSYNC and a listener together only with TSYNC_ESRCH (the kernel refuses the pair).
        flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
    }
    Ok(Program { filter, flags, listener: None, watch: Some(answer), dumpable: false })
}

/// The lowest free fd number: the one the kernel gives the notify fd when nothing is opened in
/// between (the init is single-threaded).
pub fn next_fd() -> Result<i32> {
    // SAFETY: F_DUPFD_CLOEXEC of stdin returns the lowest free number ≥ 0, closed right after.
    let n = unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 0) };
    if n < 0 {
        return Err(crate::error::last_os("recorder: find a free fd"));
    }
    // SAFETY: `n` was just opened here and nothing else knows it.
    unsafe { libc::close(n) };
    Ok(n)
}

/// The init's notify fd `n`, once the init has installed the filter (retried until then, 5 s).
pub fn take(init: &OwnedFd, n: i32) -> Result<OwnedFd> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        // SAFETY: pidfd_getfd takes a pidfd, an fd number of that process and flags 0.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_getfd, init.as_raw_fd(), n, 0) };
        if fd >= 0 {
            // SAFETY: the kernel just installed this fd in our table.
            let fd = unsafe { crate::linux::procfs::own(fd as i32) };
            let what = std::fs::read_link(crate::linux::procfs::fd_path(fd.as_raw_fd())).unwrap_or_default();
            if what.to_string_lossy().contains("seccomp notify") {
                return Ok(fd);
            }
        } else if !matches!(Errno::last(), Errno::EBADF) {
            return Err(crate::error::last_os(format!("recorder: take fd {n} of the container's init")));
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::new("recorder: the container's init did not install its filter within 5 s"));
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// Listing denials, past the first `DENIALS_UNTHROTTLED` P0 answers at most this many
/// notifications a tick: a job that spins on denied calls must not buy itself P0's CPU, which
/// none of the job's own limits bound (about 5 µs of it each). Its calls wait instead (20,000 a
/// second, about a tenth of a core; a recording is not throttled, it is the job's every call).
const DENIALS_UNTHROTTLED: u64 = 100_000;
const DENIALS_PER_TICK: u32 = 2_000;
const TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// What was seen: (architecture, syscall number), and how often.
pub struct Recording {
    answer: Answer,
    seen: BTreeMap<(u32, i32), u64>,
    tick: (Instant, u32),
    answered: u64,
}

impl Recording {
    pub fn new(answer: Answer) -> Recording {
        Recording { answer, seen: BTreeMap::new(), tick: (Instant::now(), 0), answered: 0 }
    }

    /// When the next notification may be answered, if not now.
    pub fn paused_until(&self, now: Instant) -> Option<Instant> {
        let (start, n) = self.tick;
        let throttled = matches!(self.answer, Answer::Errno(_)) && self.answered > DENIALS_UNTHROTTLED;
        (throttled && n >= DENIALS_PER_TICK && now < start + TICK).then_some(start + TICK)
    }

    /// Receive one notification, note it, answer it. Err(ENOENT) is a notification whose process
    /// died meanwhile; Ok(false) when no process holds the filter any more.
    pub fn answer(&mut self, fd: &OwnedFd) -> Result<bool> {
        // SAFETY: seccomp_notif is plain data; zeroed is what NOTIF_RECV requires.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: NOTIF_RECV fills `req`, which lives across the call.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } < 0 {
            return match Errno::last() {
                Errno::EINTR | Errno::ENOENT => Ok(true),
                Errno::EBADF | Errno::ENOTCONN => Ok(false),
                e => Err(Error::sys("recorder: receive a notification", e)),
            };
        }
        if i64::from(req.data.nr) == HOLD_NR && req.data.args[0] as u32 == HOLD_MAGIC {
            return send(fd, &libc::seccomp_notif_resp { id: req.id, val: 0, error: 0, flags: 0 }).map(|()| true);
        }
        *self.seen.entry((req.data.arch, req.data.nr)).or_default() += 1;
        let now = Instant::now();
        if now >= self.tick.0 + TICK {
            self.tick = (now, 0);
        }
        self.tick.1 += 1;
        self.answered += 1;
        let resp = match self.answer {
            Answer::Continue => libc::seccomp_notif_resp { id: req.id, val: 0, error: 0, flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32 },
            Answer::Errno(e) => libc::seccomp_notif_resp { id: req.id, val: 0, error: -i32::from(e), flags: 0 },
        };
        send(fd, &resp).map(|()| true)
    }

    /// The allow-list profile, in OCI `linux.seccomp` form (Docker's field names): errno for
    /// everything but the recorded syscalls.
    pub fn profile(&self) -> serde_json::Value {
        let mut archs = BTreeSet::new();
        let mut names = BTreeSet::new();
        for &(arch, nr) in self.seen.keys() {
            let Some((name, a)) = name(arch, nr) else { continue };
            archs.insert(a);
            names.insert(name);
        }
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": archs,
            "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
        })
    }

    /// The denied syscalls for the report, each with its architecture and how often it was denied
    /// (a number the kernel's tables do not name is given as `nr:N`).
    pub fn denied(&self) -> serde_json::Value {
        let list: Vec<_> = self
            .seen
            .iter()
            .map(|(&(arch, nr), n)| {
                let (name, a) = name(arch, nr).unwrap_or_else(|| (format!("nr:{nr}"), "unknown"));
                json!({"name": name, "arch": a, "count": n})
            })
            .collect();
        serde_json::Value::Array(list)
    }
}

/// Answer a notification; one whose process died meanwhile (ENOENT) needs none.
fn send(fd: &OwnedFd, resp: &libc::seccomp_notif_resp) -> Result<()> {
    // SAFETY: NOTIF_SEND reads `resp`, which lives across the call.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, resp) } < 0 && Errno::last() != Errno::ENOENT {
        return Err(crate::error::last_os("recorder: answer a notification"));
    }
    Ok(())
}

/// A syscall's name and libseccomp architecture, from the notification's audit arch and number.
fn name(arch: u32, nr: i32) -> Option<(String, &'static str)> {
    let (name, a) = match arch {
        AUDIT_ARCH_X86_64 if nr & X32_BIT != 0 => (ScmpSyscall::from(nr & !X32_BIT).get_name_by_arch(ScmpArch::X32), "SCMP_ARCH_X32"),
        AUDIT_ARCH_X86_64 => (ScmpSyscall::from(nr).get_name_by_arch(ScmpArch::X8664), "SCMP_ARCH_X86_64"),
        AUDIT_ARCH_I386 => (ScmpSyscall::from(nr).get_name_by_arch(ScmpArch::X86), "SCMP_ARCH_X86"),
        _ => return None,
    };
    Some((name.ok()?, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_stays_enforced_and_only_what_it_allows_is_notified() {
        let ret = |k| libc::sock_filter { code: RET_K, jt: 0, jf: 0, k };
        let ld = libc::sock_filter { code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, jt: 0, jf: 0, k: 0 };
        let errno = libc::SECCOMP_RET_ERRNO | 1;
        let enforced = Program {
            filter: vec![ld, ret(libc::SECCOMP_RET_ALLOW), ret(errno), ret(libc::SECCOMP_RET_LOG), ret(libc::SECCOMP_RET_KILL_PROCESS)],
            flags: libc::SECCOMP_FILTER_FLAG_TSYNC,
            listener: None,
            watch: None,
            dumpable: false,
        };
        let p = program(Some(enforced)).expect("recorder");
        let ks: Vec<u32> = p.filter.iter().skip(1).map(|i| i.k).collect();
        assert_eq!(ks, [libc::SECCOMP_RET_USER_NOTIF, errno, libc::SECCOMP_RET_USER_NOTIF, libc::SECCOMP_RET_KILL_PROCESS]);
        assert_eq!(p.filter[0].k, 0, "only returns change");
        let want = libc::SECCOMP_FILTER_FLAG_TSYNC | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        assert_eq!(p.flags, want);
        assert_eq!(p.watch, Some(Answer::Continue));
    }

    #[test]
    fn listing_denials_notifies_only_the_default_errno_behind_the_hold() {
        let ret = |k| libc::sock_filter { code: RET_K, jt: 0, jf: 0, k };
        let ld = libc::sock_filter { code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, jt: 0, jf: 0, k: 4 };
        let (eperm, enosys) = (libc::SECCOMP_RET_ERRNO | 1, libc::SECCOMP_RET_ERRNO | 38);
        let enforced =
            Program { filter: vec![ld, ret(libc::SECCOMP_RET_ALLOW), ret(eperm), ret(enosys)], flags: 0, listener: None, watch: None, dumpable: false };
        let p = denials(enforced, 1).expect("denials");
        let ks: Vec<u32> = p.filter.iter().skip(5).map(|i| i.k).collect();
        assert_eq!(ks, [4, libc::SECCOMP_RET_ALLOW, libc::SECCOMP_RET_USER_NOTIF, enosys], "only the default errno is notified");
        // The hold: nr == HOLD_NR and args[0] == HOLD_MAGIC notify, anything else falls through to the profile.
        let h = &p.filter[..5];
        assert_eq!((h[0].k, h[1].k, h[1].jf, h[2].k, h[3].k, h[3].jf, h[4].k), (0, HOLD_NR as u32, 3, 16, HOLD_MAGIC, 1, libc::SECCOMP_RET_USER_NOTIF));
        assert_eq!((p.watch, p.flags), (Some(Answer::Errno(1)), libc::SECCOMP_FILTER_FLAG_NEW_LISTENER));
    }
}
