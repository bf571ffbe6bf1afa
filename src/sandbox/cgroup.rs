//! Where the job's cgroup comes from, and so whether it has limits (issue 22 item 10). Root makes
//! one anywhere. A user can make one only below a cgroup2 subtree delegated to it, and can move
//! a process into it only from within that subtree (the kernel's delegation rule: write access
//! to cgroup.procs of the common ancestor of both cgroups). So, in order:
//!
//! 1. `--cgroup PATH`: the job's cgroup is `PATH/<id>`; PATH must be a cgroup2 directory this
//!    user may write, testudo must run inside it, and every limit's controller must be delegated
//!    to it (each missing one named with its option), checked before anything is made;
//! 2. `--no-limits`: no memory, pids or cpu limit; as root the job still has its cgroup (kill,
//!    accounting), as a user without `--cgroup` none at all: the job's init is pid 1 of its pid
//!    namespace, and its death (the timeout's kill, testudo's own death) kills every process of
//!    the job;
//! 3. a user with a systemd user bus: a transient scope of the user's manager
//!    (`cgroups::systemd`, the runtime's own driver), which checks that testudo runs below the
//!    manager and that the controllers are delegated;
//! 4. a user with none of these: an error naming the three choices. No limit is ever dropped in
//!    silence: `--memory`, `--pids` or `--cpus` with `--no-limits` is an error.

use std::path::{Path, PathBuf};

use crate::cli::Sandbox;
use crate::commands::Global;
use crate::error::{Error, Result};

/// The choice, made by `choose`.
#[derive(Debug, PartialEq, Eq)]
pub enum Place {
    /// The runtime's default cgroup (`/testudo/<id>`, or the global `--systemd-cgroup`'s scope).
    Default,
    /// `linux.cgroupsPath`: below the delegated `--cgroup` directory (relative to the hierarchy).
    Below(PathBuf),
    /// The user's systemd manager's scope.
    UserScope,
    /// No cgroup (a user's `--no-limits` without `--cgroup`).
    Without,
}

/// The choice for `s`, for a runtime that is `rootless`.
pub fn choose(s: &Sandbox, rootless: bool) -> Result<Place> {
    if s.no_limits {
        let asked: Vec<&str> = [("--memory", s.memory.is_some()), ("--pids", s.pids.is_some()), ("--cpus", s.cpus.is_some())]
            .into_iter()
            .filter_map(|(o, given)| given.then_some(o))
            .collect();
        if !asked.is_empty() {
            return Err(Error::new(format!("--no-limits with {}: a limit asked for is never dropped; give one or the other", asked.join(", "))));
        }
    }
    if let Some(p) = &s.cgroup {
        return Ok(Place::Below(delegated(p, &needs(s), rootless)?));
    }
    if s.no_limits {
        return Ok(if rootless { Place::Without } else { Place::Default });
    }
    if !rootless {
        return Ok(Place::Default);
    }
    match user_bus() {
        Some(_) => Ok(Place::UserScope),
        None => Err(Error::new(format!("{}; {}", no_bus_reason(), CHOICES))),
    }
}

/// The global flags for the job's `create`: for the user's scope, with the systemd driver (the
/// runtime's own, `cgroups::systemd`); None where `g` will do.
pub fn with_driver(g: &Global, place: &Place) -> Option<Global> {
    (*place == Place::UserScope && !g.systemd_cgroup).then(|| Global {
        root: g.root.clone(),
        systemd_cgroup: true,
        rootless: g.rootless,
        policy: g.policy.clone(),
    })
}

/// A failed `create` of the job, with the other choices where the scope was the runtime's pick.
pub fn explain(e: Error, place: &Place) -> Error {
    match place {
        Place::UserScope => Error::new(format!("{e} (the job's scope of the user's systemd manager; or give --cgroup PATH or --no-limits)")),
        _ => e,
    }
}

/// The three ways out, for every error of a user's sandbox without a cgroup.
pub const CHOICES: &str = "a sandbox run by a user needs one of: --cgroup PATH (a cgroup2 directory delegated to this user, which testudo runs inside), \
     a systemd user bus (DBUS_SESSION_BUS_ADDRESS or $XDG_RUNTIME_DIR/bus: the job gets a scope of the user's manager), \
     or --no-limits (no memory, pids or cpu limit)";

/// The user's bus socket, when it is there.
fn user_bus() -> Option<String> {
    crate::dbus::address::user_bus_path().ok().filter(|p| Path::new(p).exists())
}

fn no_bus_reason() -> String {
    match crate::dbus::address::user_bus_path() {
        Ok(p) => format!("the memory, pids and cpu limits need a cgroup, none is delegated to this user, and there is no systemd user bus at {p:?}"),
        Err(e) => format!("the memory, pids and cpu limits need a cgroup, none is delegated to this user, and {e}"),
    }
}

/// The controllers the limits of `s` need, each with the option that asks for it.
fn needs(s: &Sandbox) -> Vec<(&'static str, String)> {
    if s.no_limits {
        return Vec::new();
    }
    let default = |v: Option<String>, d: &str| v.unwrap_or_else(|| format!("(default {d})"));
    vec![
        ("memory", format!("--memory {}", default(s.memory.clone(), "2G"))),
        ("pids", format!("--pids {}", default(s.pids.map(|p| p.to_string()), "512"))),
        ("cpu", format!("--cpus {}", default(s.cpus.clone(), "a half share"))),
    ]
}

/// `--cgroup PATH` checked (module doc, 1.): its path relative to the cgroup2 hierarchy.
fn delegated(p: &Path, needs: &[(&'static str, String)], rootless: bool) -> Result<PathBuf> {
    let what = format!("--cgroup {p:?}");
    if !p.is_absolute() {
        return Err(Error::new(format!("{what}: give an absolute path")));
    }
    match nix::sys::statfs::statfs(p) {
        Ok(st) if st.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => {}
        Ok(_) => return Err(Error::new(format!("{what}: not a cgroup2 directory"))),
        Err(e) => return Err(Error::sys(what, e)),
    }
    let root = crate::cgroups::mountpoint()?;
    let rel = p.strip_prefix(&root).map_err(|_| Error::new(format!("{what}: not below the cgroup2 hierarchy at {root:?}")))?;
    if rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return Err(Error::new(format!("{what}: must not contain '.' or '..'")));
    }
    use nix::unistd::AccessFlags as A;
    if let Err(e) = nix::unistd::access(p, A::W_OK | A::X_OK) {
        let uid = nix::unistd::geteuid();
        return Err(Error::sys(
            format!("{what}: not writable by uid {uid}: delegate it (chown it and its cgroup.procs, cgroup.subtree_control and cgroup.threads to the user)"),
            e,
        ));
    }
    let own = own_cgroup().map(|c| match c.trim_matches('/') {
        "" => root.clone(),
        c => root.join(c),
    });
    if let Some(own) = own {
        let common = common_ancestor(&own, p);
        if nix::unistd::access(&common.join("cgroup.procs"), A::W_OK).is_err() {
            return Err(Error::new(format!(
                "{what}: testudo runs in cgroup {own:?}, and the job is started in a cgroup below {p:?}: that needs write access to cgroup.procs of \
                 {common:?}, the common ancestor of both, which this user lacks; run testudo inside {p:?} (in a leaf cgroup below it)"
            )));
        }
    }
    if !rootless {
        // Root's limits may be on v1 controllers (a hybrid host): create checks them.
        return Ok(rel.to_path_buf());
    }
    let offered = std::fs::read_to_string(p.join("cgroup.controllers")).map_err(|e| Error::new(format!("{what}: read cgroup.controllers: {e}")))?;
    let offered: Vec<&str> = offered.split_whitespace().collect();
    for (controller, option) in needs {
        if !offered.contains(controller) {
            return Err(Error::new(format!(
                "{what}: {option} needs the {controller} controller, which is not delegated to it (it has: {}); delegate it, or run with --no-limits",
                if offered.is_empty() { "none".to_string() } else { offered.join(" ") }
            )));
        }
    }
    Ok(rel.to_path_buf())
}

/// This process's cgroup v2 path, from /proc/self/cgroup.
fn own_cgroup() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| l.strip_prefix("0::")).map(str::to_string)
}

fn common_ancestor(a: &Path, b: &Path) -> PathBuf {
    a.components().zip(b.components()).take_while(|(x, y)| x == y).map(|(x, _)| x).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(args: &[&str]) -> Sandbox {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            s: Sandbox,
        }
        let mut all = vec!["sandbox", "--rootfs", "/r", "--workspace", "/w"];
        all.extend_from_slice(args);
        all.extend(["--", "true"]);
        Cli::try_parse_from(all).expect("arguments").s
    }

    #[test]
    fn a_limit_asked_for_is_never_dropped() {
        for (opts, named) in [(&["--memory", "1G"][..], "--memory"), (&["--pids", "5"], "--pids"), (&["--cpus", "1", "--memory", "1G"], "--memory, --cpus")] {
            let mut args = vec!["--no-limits"];
            args.extend_from_slice(opts);
            let e = choose(&sandbox(&args), true).expect_err("refused").to_string();
            assert!(e.starts_with(&format!("--no-limits with {named}: a limit asked for is never dropped")), "{e}");
        }
        assert_eq!(choose(&sandbox(&["--no-limits"]), true).expect("user"), Place::Without);
        assert_eq!(choose(&sandbox(&["--no-limits"]), false).expect("root"), Place::Default, "root keeps its cgroup");
        assert_eq!(choose(&sandbox(&[]), false).expect("root"), Place::Default);
    }

    #[test]
    fn each_limit_names_its_option_or_its_default() {
        let n = needs(&sandbox(&["--memory", "1G"]));
        assert_eq!(n, [("memory", "--memory 1G".into()), ("pids", "--pids (default 512)".into()), ("cpu", "--cpus (default a half share)".into())]);
        assert!(needs(&sandbox(&["--no-limits"])).is_empty());
    }

    #[test]
    fn the_common_ancestor_of_two_cgroups() {
        let r = Path::new("/sys/fs/cgroup");
        assert_eq!(common_ancestor(&r.join("a/b/leaf"), &r.join("a/b")), r.join("a/b"));
        assert_eq!(common_ancestor(&r.join("x"), &r.join("a/b")), r);
    }
}
