//! pid 1 for a sandboxed job (`prepare::Lifecycle::reaper`). As its pid namespace's init a job has
//! nobody to reap its orphans (their zombies hold `--pids` until the namespace ends), and the
//! kernel drops every signal it sends itself without a handler (`kill -TERM $$` is ignored,
//! `kill -SEGV $$` exits 0). So the init forks once more, as its last step before execve: the
//! child installs seccomp and execs the job; the parent stays pid 1 and only reaps every child,
//! forwards the signals it gets to the job, and exits with the job's status (the exit code, or
//! 128 + the signal, as tini and bubblewrap report it). Its exit ends the namespace: nothing the
//! job started outlives it.
//!
//! It gives the job no way out. It forks after every identity step (capability sets and bounding
//! set dropped, uid and gid set, no_new_privileges, Landlock), so it holds the job's credentials
//! and nothing more; it is non-dumpable, so the job, the same uid, cannot ptrace it or open its
//! /proc/1/mem or /proc/1/exe (the host's binary, CVE-2019-5736); it closes every fd it has; it
//! never execs, and takes nothing from the job but signals and wait statuses. It runs without the
//! job's seccomp filter (the filter is the child's, installed right before its execve, as the
//! recorder needs), which gives the job nothing: it can only signal it, as before. The
//! die-with-parent signal set before the fork stays with it (a fork's child does not inherit it).
//! Its command line, which /proc/1/cmdline shows to anyone, is blanked: it is P0's, with host paths.

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::unistd::ForkResult;

use crate::error::{Context, Result};

/// Fork the job. Returns in the child, with every signal blocked (the caller resets the mask
/// before execve); the parent becomes the reaper and never returns.
pub fn fork_job() -> Result<()> {
    // Blocked before the fork, so no signal and no SIGCHLD is lost between the fork and the wait:
    // they stay pending for sigwaitinfo. A namespace's init also gets blocked signals queued, where
    // one it has no handler for would be dropped.
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), None).context("reaper: block signals")?;
    // SAFETY: the process is single-threaded (the spawn path never starts threads); the child
    // goes on to execve and the parent into `reap`, which never returns into our callers.
    match unsafe { nix::unistd::fork() }.context("reaper: fork the job")? {
        ForkResult::Child => Ok(()),
        ForkResult::Parent { child } => reap(child.as_raw()),
    }
}

fn reap(job: i32) -> ! {
    blank_cmdline();
    // SAFETY: close_range takes numbers only; none of these fds is used again in this process.
    if unsafe { libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) } != 0 {
        // Keeping the sync socket would hang P0, keeping the caller's pipes would hold them open:
        // ending here ends the namespace, and the job with it.
        // SAFETY: _exit ends the process at once.
        unsafe { libc::_exit(126) }
    }
    let _ = nix::sys::prctl::set_dumpable(false);
    let all = SigSet::all();
    loop {
        // SAFETY: siginfo_t is plain data; zeroed is a valid value for sigwaitinfo to fill in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: sigwaitinfo reads the set and writes `info`, both live across the call.
        let sig = unsafe { libc::sigwaitinfo(all.as_ref(), &mut info) };
        if sig < 0 {
            continue;
        }
        if sig != libc::SIGCHLD {
            // SAFETY: kill takes numbers only. The job is our child, not yet reaped: its pid
            // cannot have been reused.
            unsafe { libc::kill(job, sig) };
            continue;
        }
        loop {
            let mut status = 0;
            // SAFETY: waitpid writes the status into a local.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == job {
                let code = if libc::WIFSIGNALED(status) { 128 + libc::WTERMSIG(status) } else { libc::WEXITSTATUS(status) };
                // SAFETY: _exit ends the process; the kernel then kills what is left in the namespace.
                unsafe { libc::_exit(code) }
            }
        }
    }
}

/// Zero our argv strings: /proc/PID/cmdline reads them from our memory without the ptrace check
/// that guards environ, exe, fd and mem, and they are P0's (the state root, the rootfs, the
/// report). Their bounds come from the kernel (/proc/self/stat, fields 48 and 49); without a
/// /proc nothing is read, and nothing is blanked (a job without /proc cannot read it either).
fn blank_cmdline() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return };
    // Fields after ")" start at field 3; comm (field 2) may hold spaces, never ")" last.
    let Some((_, rest)) = stat.rsplit_once(')') else { return };
    let field = |n: usize| rest.split_whitespace().nth(n - 3).and_then(|v| v.parse::<usize>().ok());
    let (Some(start), Some(end)) = (field(48), field(49)) else { return };
    if start == 0 || end <= start {
        return;
    }
    // SAFETY: [start, end) is this process's argv area as the kernel set it up at execve: mapped
    // and writable (the initial stack). Nothing here reads argv again (std took its copies), and
    // this process never returns into code that would.
    unsafe { std::ptr::write_bytes(start as *mut u8, 0, end - start) };
}
