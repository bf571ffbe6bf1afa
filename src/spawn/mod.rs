//! The spawn path. P0 is the `testudo` command on the host; P1 the join stage (only when a
//! namespace must be joined by path, a time namespace needs its offsets, or for `exec`); P2 the
//! container's init (or the exec'd process).
//!
//! ```text
//!  P0 (host)                         P1 (join stage)              P2 (init)
//!  prepare: spec checks, seccomp
//!  compiled, cgroup made, fifo,
//!  socketpair, non-dumpable
//!  clone3(INTO_CGROUP|ns…) ─────────────────────────────────────▶ (direct: no P1)
//!     or clone3(INTO_CGROUP) ──────▶ setns(paths…)
//!                                    unshare(USER)
//!  ◀──────────────── MapIds ───────  (or from P2 on the direct path)
//!  write uid_map/gid_map
//!  ─────────────────── Ack ───────▶ unshare(rest), timens offsets
//!                                    clone3(CLONE_PARENT) ───────▶ setuid(0) in the user ns
//!  ◀──────────────── Pid(p2) ──────  _exit                         rootfs, mounts, devices
//!  ◀──────────────────────────────────────────────── Hooks ──────
//!  prestart + createRuntime hooks
//!  ──────────────────────────────────────────────────── Ack ────▶ createContainer hooks,
//!                                                                  sysctl, masks, pivot_root,
//!                                                                  labels, creds, caps, nnp
//!  ◀──────────────────────────────────────────────── Ready ──────
//!  write state.json, exit            `start` writes exec.fifo ──▶ startContainer hooks,
//!  (run: send Start instead)                                       fds closed, seccomp, execve
//! ```
//!
//! Any failure in P1 or P2 is sent as `Error` and the child `_exit`s; P0 reports it as the one
//! error of the command. Exec success is the EOF of the close-on-exec socket.

pub mod exec;
pub mod finish;
pub mod init;
pub mod join;
pub mod parent;
pub mod prepare;
pub mod reaper;
pub mod sync;

/// Ask P0 to write the id maps of the user namespace this child just made, and wait until it has.
/// Rootless, P0 has no privilege over the /proc files of a non-dumpable process (root owns them),
/// so the child is dumpable while P0 writes: alone in a user namespace nothing else has entered,
/// before it has opened anything of the container's (as runc's nsexec does). Non-dumpable again
/// before it goes on (CVE-2019-5736 family, see `parent::launch`).
pub fn request_id_maps(chan: &sync::Channel) -> crate::error::Result<()> {
    use crate::error::Context;
    let rootless = !nix::unistd::geteuid().is_root();
    if rootless {
        nix::sys::prctl::set_dumpable(true).context("set dumpable for the id maps")?;
    }
    chan.send(&sync::Msg::MapIds)?;
    chan.expect_ack()?;
    if rootless {
        nix::sys::prctl::set_dumpable(false).context("set non-dumpable")?;
    }
    Ok(())
}

/// Run `f` as the child: any error goes to the parent over `report`, and the child ends with
/// _exit — it never returns into the parent's frames or runs its destructors.
pub fn child_main(report: &sync::Channel, f: impl FnOnce() -> crate::error::Result<()>) -> ! {
    let code = match f() {
        Ok(()) => 0,
        Err(e) => {
            tell(report, e);
            1
        }
    };
    // SAFETY: _exit ends the process immediately; nothing after it runs.
    unsafe { libc::_exit(code) }
}

/// Send a child's failure to P0. When P0 cannot hear it (gone after `start`, or the sendmsg
/// denied by the container's seccomp profile), the container's stderr is the one place left
/// where its owner can read why it never ran, as it would read the program's own errors.
pub fn tell(chan: &sync::Channel, e: crate::error::Error) {
    let e = crate::security::seccomp::blame(e);
    let text = e.to_string();
    if chan.send(&sync::Msg::Fail(e)).is_err() {
        let line = format!("testudo: container process: {text}\n");
        let _ = nix::unistd::write(std::io::stderr(), line.as_bytes());
    }
}
