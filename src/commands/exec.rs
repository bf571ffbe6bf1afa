//! `exec`: run a new process in a running container, from `--process FILE` or from arguments and
//! flags over the container's own process settings.

use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use oci_spec::runtime::{Capability, Process};

use crate::cgroups::Cgroup;
use crate::cli::Exec;
use crate::commands::{open, Global};
use crate::container::{self, state, Status};
use crate::error::{Context, Error, Result};
use crate::linux::{fds, pidfd, rlimits, tty};
use crate::security::{capabilities, seccomp};
use crate::spawn::exec::{self, Request};

pub fn run(g: &Global, e: &Exec) -> Result<i32> {
    let (dir, facts) = open(g, &e.id)?;
    let facts = facts.ok_or_else(|| Error::new(format!("container {:?} is still being created", e.id)))?;
    match super::status(&dir, Some(&facts)) {
        Status::Running | Status::Created => {}
        // The new process is cloned into the frozen cgroup and waits there, with this command,
        // until `resume`: what the caller asked for.
        Status::Paused if e.ignore_paused => {}
        Status::Paused => return Err(Error::new(format!("cannot exec in container {:?}: it is paused (use --ignore-paused to override)", e.id))),
        s => return Err(Error::new(format!("cannot exec in container {:?}: it is {}", e.id, s.as_str()))),
    }
    let spec = crate::spec::parse(&std::fs::read(dir.file(container::CONFIG_FILE)).context("read saved config.json")?)?;
    let process = process(e, spec.process().as_ref())?;
    crate::audit::policy::enforce_exec(&crate::audit::policy::of_container(&dir.path, g.policy.as_deref())?, &spec, &process)?;
    let terminal = process.terminal().unwrap_or(false);
    tty::require_socket_or_foreground(terminal, e.console_socket.is_some(), e.detach)?;
    rlimits::check(process.rlimits().as_deref().unwrap_or(&[]))?;
    crate::spec::check_process(&process)?;
    let caps = capabilities::plan(process.capabilities().as_ref())?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()).map(|s| seccomp::load(&g.root, s)).transpose()?;
    let preserve_fds = fds::preserved(e.preserve_fds)?;
    fds::check_open(preserve_fds)?;
    let init_pidfd = pidfd::open(facts.pid)?;
    // The init's root: the exec'd process chroots into it after joining (spawn::exec::join).
    let init_root = nix::fcntl::open(format!("/proc/{}/root", facts.pid).as_str(), OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|err| match err {
            nix::errno::Errno::ENOENT | nix::errno::Errno::ESRCH => Error::new(format!("container {:?} is not running", e.id)),
            err => Error::sys(format!("container {:?}: open /proc/{}/root", e.id, facts.pid), err),
        })?;
    // Both fds were opened by pid: the same start time afterwards shows it was the init's.
    if state::proc_facts(facts.pid).map(|p| p.start) != Some(facts.pid_start) {
        return Err(Error::new(format!("container {:?} is not running", e.id)));
    }
    // Rootless without a cgroup: the process stays in the caller's (cgroups::rootless).
    let target = match &facts.cgroup {
        Some(p) => Some(crate::cgroups::sub::target(&Cgroup::at(p.clone()), &e.cgroup)?),
        None if e.cgroup.is_empty() => None,
        None => return Err(Error::new(format!("--cgroup: container {:?} has no cgroup of its own", e.id))),
    };
    let (cgroup_fd, legacy_tasks) = target.map_or((None, Vec::new()), |t| (Some(t.cgroup), t.legacy_tasks));
    let req = Request {
        process,
        caps,
        seccomp,
        init_pid: facts.pid,
        init_pidfd,
        init_root,
        cgroup_fd,
        legacy_tasks,
        console: e.console_socket.as_deref().map(tty::connect).transpose()?,
        preserve_fds,
        landlock: crate::security::landlock::plan(spec.annotations().as_ref())?,
        personality: spec.linux().as_ref().and_then(|l| l.personality().clone()),
        container_state: super::state_json(&facts, super::status(&dir, Some(&facts))).to_string().into_bytes(),
    };
    // The exec'd process must not inherit our lock (see spawn::prepare::Prepared::lock_fd).
    drop(dir);
    // execCPUAffinity.initial: this process, and its children until they enter the cgroup.
    if let Some(a) = req.process.exec_cpu_affinity() {
        crate::linux::affinity::check(a)?;
        crate::linux::affinity::apply("process.execCPUAffinity.initial", a.initial().as_deref())?;
    }
    // In the foreground, signals go to the process (as runc's exec forwards them): blocked
    // before the clone so none is lost; the process unblocks them before its execve.
    let mask = if e.detach { None } else { Some(super::foreground::block_signals()?) };
    let launched = exec::launch(&req)?;
    if let Some(p) = &e.pid_file {
        // As runc: a process whose pid the caller cannot learn is not left running.
        if let Err(err) = super::create::write_pid_file(p, launched.pid) {
            let _ = pidfd::send_signal(&launched.pidfd, nix::sys::signal::Signal::SIGKILL);
            let _ = pidfd::wait(&launched.pidfd);
            return Err(err);
        }
    }
    match mask {
        None => Ok(0),
        Some(mask) => super::foreground::wait(&launched.pidfd, launched.pty.as_ref(), &mask),
    }
}

/// The process to run: the --process JSON as given, or the container's process with args and
/// flags applied (what `runc exec ID cmd…` does).
fn process(e: &Exec, base: Option<&Process>) -> Result<Process> {
    if let Some(path) = &e.process {
        let bytes = read_process_file(path)?;
        return serde_json::from_slice(&bytes).map_err(|err| Error::new(format!("process {path:?}: {err}")));
    }
    if e.command.is_empty() {
        return Err(Error::new("exec needs --process FILE or a command"));
    }
    let mut p = base.cloned().ok_or_else(|| Error::new("the container has no process to inherit"))?;
    p.set_args(Some(e.command.clone()));
    p.set_terminal(Some(e.tty));
    if !e.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &e.env {
            // A name given again replaces the container's value, as in runc.
            let name = kv.split_once('=').map_or(kv.as_str(), |(n, _)| n);
            env.retain(|old| old.split_once('=').map_or(old.as_str(), |(n, _)| n) != name);
            env.push(kv.clone());
        }
        p.set_env(Some(env));
    }
    if let Some(cwd) = &e.cwd {
        p.set_cwd(cwd.into());
    }
    if let Some(u) = &e.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let mut user = p.user().clone();
        user.set_uid(uid.parse().map_err(|_| Error::new(format!("--user {u:?}: uid must be a number")))?);
        user.set_gid(gid.parse().map_err(|_| Error::new(format!("--user {u:?}: gid must be a number")))?);
        p.set_user(user);
    }
    if !e.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(e.additional_gids.clone()));
        p.set_user(user);
    }
    if e.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(a) = &e.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &e.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    if !e.cap.is_empty() {
        let mut c = p.capabilities().clone().unwrap_or_default();
        for name in &e.cap {
            // runc's form is "CAP_KILL"; the bare "KILL" is accepted too.
            let bare = name.strip_prefix("CAP_").unwrap_or(name);
            let cap: Capability = bare.parse().map_err(|_| Error::new(format!("--cap {name:?}: unknown capability")))?;
            let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            c.set_bounding(add(c.bounding()));
            c.set_effective(add(c.effective()));
            c.set_permitted(add(c.permitted()));
        }
        p.set_capabilities(Some(c));
    }
    Ok(p)
}

fn read_process_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("read process {path:?}"))
}
