//! `exec --cgroup`: run the new process in an existing sub-cgroup of the container's, as runc
//! 1.1+ does. `--cgroup SUB` (alone) moves it in the v2 hierarchy and every v1 one the container
//! joins; `--cgroup CTRL[,CTRL]:SUB` (repeatable) in the named v1 controllers' hierarchies only,
//! the rest staying in the container's cgroup. A leading '/' is relative to the container's
//! cgroup, as in runc (`--cgroup /` is the container's own). Unlike runc, whose lexical join lets
//! `../x` name a sibling of the container's cgroup (its prefix test passes `/a/ctr2` as below
//! `/a/ctr`), any `..` is refused: an exec must not place a process in another container's
//! cgroup, or outside the container's limits.

use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::Cgroup;
use crate::error::{Context, Error, Result};

/// Where the exec'd process goes: an fd of its v2 cgroup (for CLONE_INTO_CGROUP) and the
/// `tasks` of its v1 directories (see `v1::enter`).
pub struct Target {
    pub cgroup: OwnedFd,
    pub legacy_tasks: Vec<OwnedFd>,
}

/// The sub-cgroup path of one `--cgroup` argument, relative to the container's cgroup.
fn below(arg: &str, sub: &str) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(sub).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::new(format!("--cgroup {arg:?}: '..' would leave the container's cgroup; the process may go only to a sub-cgroup of it")))
            }
        }
    }
    Ok(out)
}

/// runc's forms: one bare path, or controller[,controller]:path arguments, a controller once.
/// (None, sub) is the bare path.
fn parse(args: &[String]) -> Result<Vec<(Option<String>, PathBuf)>> {
    let mut out: Vec<(Option<String>, PathBuf)> = Vec::new();
    for arg in args {
        match arg.split_once(':') {
            Some((controllers, sub)) => {
                let sub = below(arg, sub)?;
                for c in controllers.split(',') {
                    if c.is_empty() {
                        return Err(Error::new(format!("--cgroup {arg:?}: empty controller")));
                    }
                    if out.iter().any(|(have, _)| have.as_deref() == Some(c)) {
                        return Err(Error::new(format!("--cgroup {arg:?}: controller {c:?} given more than once")));
                    }
                    out.push((Some(c.to_string()), sub.clone()));
                }
            }
            None if args.len() == 1 => out.push((None, below(arg, arg)?)),
            None => return Err(Error::new(format!("--cgroup {arg:?}: a path without a controller: prefix must be the only --cgroup"))),
        }
    }
    Ok(out)
}

fn open_dir(arg: &str, dir: &Path) -> Result<OwnedFd> {
    // cgroupfs has no symlinks; O_NOFOLLOW keeps it so for the last component.
    nix::fcntl::open(dir, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
        .with_context(|| format!("--cgroup {arg:?}: open cgroup {dir:?}"))
}

fn open_tasks(arg: &str, dir: &Path) -> Result<OwnedFd> {
    // `tasks`, as for the container's own (`v1::Legacy::open_tasks`).
    super::v1::tasks_file(dir).with_context(|| format!("--cgroup {arg:?}"))
}

/// The cgroups of the container's cgroup `cg` the exec'd process joins, with `args` applied.
pub fn target(cg: &Cgroup, args: &[String]) -> Result<Target> {
    let what = args.join(" ");
    let parsed = parse(args)?;
    let legacy = cg.legacy();
    let bare = parsed.iter().find(|(c, _)| c.is_none()).map(|(_, s)| s);
    for (c, _) in &parsed {
        if let Some(c) = c.as_deref().filter(|c| !legacy.has(c)) {
            return Err(Error::new(format!("--cgroup {what:?}: the container has no cgroup v1 controller {c:?} on this host")));
        }
    }
    let cgroup = open_dir(&what, &bare.map_or_else(|| cg.path.clone(), |s| cg.path.join(s)))?;
    let mut legacy_tasks = Vec::new();
    for (_, d) in &legacy.dirs {
        // A controller named for a co-mounted hierarchy (cpu of cpu,cpuacct) moves all of it.
        let subs: Vec<&PathBuf> = parsed.iter().filter(|(c, _)| c.as_deref().is_some_and(|c| legacy.dir(c) == Some(d.as_path()))).map(|(_, s)| s).collect();
        if subs.windows(2).any(|w| w[0] != w[1]) {
            return Err(Error::new(format!("--cgroup {what:?}: controllers of one hierarchy {d:?} given different paths")));
        }
        let sub = bare.or(subs.first().copied());
        legacy_tasks.push(open_tasks(&what, &sub.map_or_else(|| d.clone(), |s| d.join(s)))?);
    }
    Ok(Target { cgroup, legacy_tasks })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Vec<(Option<String>, PathBuf)>> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn runcs_forms() {
        assert_eq!(p(&["a/b"]).expect("bare"), [(None, PathBuf::from("a/b"))]);
        assert_eq!(p(&["/"]).expect("root"), [(None, PathBuf::new())]);
        assert_eq!(p(&["/x/./y"]).expect("abs"), [(None, PathBuf::from("x/y"))]);
        let two = p(&["memory,pids:s", "cpu:t"]).expect("per controller");
        assert_eq!(two, [(Some("memory".into()), "s".into()), (Some("pids".into()), "s".into()), (Some("cpu".into()), "t".into())]);
        for bad in [&["../x"][..], &["a/../../x"], &["memory:.."], &["a", "b"], &["a", "pids:b"], &[":x"], &["memory:a", "memory:b"]] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        assert!(p(&["../x"]).expect_err("..").to_string().contains("'..' would leave the container's cgroup"));
    }
}
