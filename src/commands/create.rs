//! `create`: set up a container and leave its init waiting on exec.fifo. Also the first half of
//! `run`. After any failure nothing is left: no state dir, no cgroup, no process, no mount.

use std::path::Path;
use std::time::SystemTime;

use crate::audit::policy;
use crate::cli::CreateOpts;
use crate::commands::Global;
use crate::container::{self, state, Dir, Facts};
use crate::error::{Context, Error, Result};
use crate::spawn::parent::{self, Launched};
use crate::spawn::prepare::{self, Prepared, StartBy};

pub fn run(g: &Global, opts: &CreateOpts, id: &str) -> Result<i32> {
    create(g, opts, id, StartBy::Fifo)?;
    Ok(0)
}

pub struct Created {
    pub dir: Dir,
    pub prepared: Prepared,
    pub launched: Launched,
}

pub fn create(g: &Global, opts: &CreateOpts, id: &str, mode: StartBy) -> Result<Created> {
    create_in(g, opts, None, Dir::create(&g.root, id)?, mode)
}

/// `create` in a container directory the caller made (and may have written: `sandbox` keeps its
/// bundle there, so that whatever removes the container removes the bundle too).
/// `given`: the spec made in memory (`sandbox`), not read from `opts.bundle`.
pub fn create_in(g: &Global, opts: &CreateOpts, given: Option<crate::spec::Bundle>, dir: Dir, mode: StartBy) -> Result<Created> {
    match build(g, opts, given, &dir, mode) {
        Ok((prepared, launched)) => Ok(Created { dir, prepared, launched }),
        Err(e) => {
            // What cleanup needs is in the directory, as for a create that was killed.
            if let Err(ce) = super::delete::clean_up_creating(&dir) {
                return Err(e.context(format!("create failed, and so did its cleanup ({ce})")));
            }
            Err(e)
        }
    }
}

fn build(g: &Global, opts: &CreateOpts, given: Option<crate::spec::Bundle>, dir: &Dir, mode: StartBy) -> Result<(Prepared, Launched)> {
    // Recorded before anything runs: exec and update enforce it for the container's lifetime.
    let policies = policy::in_force(g.policy.as_deref(), opts.policy.as_deref())?;
    policy::record(&dir.path, &policies)?;
    let mut prepared = prepare::prepare(g, opts, given, dir, mode, &policies)?;
    let launched = parent::launch(&prepared)?;
    // P1 is in the systemd scope now: the scope no longer needs its placeholder.
    prepared.scope_placeholder = None;
    match record(opts, dir, &prepared, &launched) {
        Ok(()) => Ok((prepared, launched)),
        Err(e) => {
            // Cleanup kills what is in the container's cgroup; a rootless container without one
            // (cgroups::rootless) has only its init to kill, which takes its pid namespace along.
            if prepared.cgroup.is_none() {
                let _ = crate::linux::pidfd::send_signal(&launched.pidfd, nix::sys::signal::Signal::SIGKILL);
                let _ = crate::linux::pidfd::wait(&launched.pidfd);
            }
            Err(e)
        }
    }
}

/// state.json and the pid file, once the init is ready.
fn record(opts: &CreateOpts, dir: &Dir, prepared: &Prepared, launched: &Launched) -> Result<()> {
    let facts = Facts {
        id: dir.id.clone(),
        oci_version: prepared.spec.version().clone(),
        pid: launched.pid,
        pid_start: state::proc_facts(launched.pid).map(|p| p.start).ok_or_else(|| Error::new("container init vanished"))?,
        bundle: prepared.bundle.clone(),
        rootfs: prepared.rootfs.clone(),
        cgroup: prepared.cgroup.as_ref().map(|c| c.path.clone()),
        created: crate::log::rfc3339(SystemTime::now()),
        annotations: prepared.spec.annotations().clone().unwrap_or_default(),
    };
    state::write(&dir.file(container::STATE_FILE), &facts)?;
    crate::log::debug(|| format!("state: {:?} written", dir.file(container::STATE_FILE)));
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, launched.pid)?;
    }
    Ok(())
}

/// Written atomically: the shim reads the pid file as soon as create returns.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let abs = std::path::absolute(path).with_context(|| format!("pid file {path:?}"))?;
    let tmp = abs.with_file_name(format!(".{}.tmp", abs.file_name().and_then(|n| n.to_str()).unwrap_or("pid")));
    std::fs::write(&tmp, pid.to_string()).with_context(|| format!("write pid file {tmp:?}"))?;
    std::fs::rename(&tmp, &abs).with_context(|| format!("rename pid file to {abs:?}"))
}
