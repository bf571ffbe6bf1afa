//! Subordinate ids: the ranges of host ids /etc/subuid and /etc/subgid grant a user beyond its own,
//! written into a user namespace's maps by the setuid helpers `newuidmap` and `newgidmap`
//! (package uidmap). Without privilege the kernel lets a process write only one map itself: its
//! own id to one id inside (and a gid map only once setgroups is denied). Every other map of a
//! rootless container (podman's, 0 → the user and 1… → a subuid range) goes through the helper,
//! which checks the ranges against the files and names the one not granted.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxIdMapping;

use crate::error::{Context, Error, Result};

/// uid or gid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Uid,
    Gid,
}

impl Kind {
    fn helper(self) -> &'static str {
        match self {
            Kind::Uid => "newuidmap",
            Kind::Gid => "newgidmap",
        }
    }

    fn field(self) -> &'static str {
        match self {
            Kind::Uid => "uidMappings",
            Kind::Gid => "gidMappings",
        }
    }

    fn own(self) -> u32 {
        match self {
            Kind::Uid => nix::unistd::geteuid().as_raw(),
            Kind::Gid => nix::unistd::getegid().as_raw(),
        }
    }
}

/// Whether writing `maps` needs the helper: without privilege, any map but the process's own id
/// to one id inside.
pub fn needs_helper(kind: Kind, maps: &[LinuxIdMapping]) -> bool {
    !nix::unistd::geteuid().is_root() && !is_self_map(maps, kind.own())
}

fn is_self_map(maps: &[LinuxIdMapping], own: u32) -> bool {
    matches!(maps, [m] if m.size() == 1 && m.host_id() == own)
}

/// At create, before anything is cloned: the helpers the maps need are installed.
pub fn check(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<()> {
    for (kind, maps) in [(Kind::Uid, uids), (Kind::Gid, gids)] {
        if needs_helper(kind, maps) {
            find(kind)?;
        }
    }
    Ok(())
}

/// The helper, from PATH (as runc looks it up).
pub fn find(kind: Kind) -> Result<PathBuf> {
    let name = kind.helper();
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_absolute() && is_executable(p))
        .ok_or_else(|| Error::new(format!("rootless: {} need {name} (package uidmap): not found", kind.field())))
}

fn is_executable(p: &Path) -> bool {
    nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok() && p.is_file()
}

/// `newuidmap PID C H N…`: the helper writes the map of process `pid` (in our pid namespace).
/// Its own error (which names the range not granted in /etc/subuid) is passed on.
pub fn write(kind: Kind, pid: i32, maps: &[LinuxIdMapping]) -> Result<()> {
    let helper = find(kind)?;
    let mut args = vec![pid.to_string()];
    for m in maps {
        args.extend([m.container_id().to_string(), m.host_id().to_string(), m.size().to_string()]);
    }
    let out =
        std::process::Command::new(&helper).args(&args).stdin(std::process::Stdio::null()).output().with_context(|| format!("rootless: run {helper:?}"))?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr).trim().replace('\n', "; ");
    Err(Error::new(format!("rootless: {} {}: {said} (exit {})", kind.helper(), args.join(" "), out.status.code().unwrap_or(-1))))
}

/// The first subordinate range (start, count) /etc/subuid or /etc/subgid grants the caller, by
/// its name or its number (as the helpers match a line); None when there is none.
pub fn range(kind: Kind) -> Option<(u32, u32)> {
    let file = match kind {
        Kind::Uid => "/etc/subuid",
        Kind::Gid => "/etc/subgid",
    };
    let me = nix::unistd::getuid().as_raw();
    // A user only another NSS source knows is matched by number alone (without a range its
    // groups are kept, and said so).
    let name = crate::linux::passwd::name(me);
    let uid = me.to_string();
    first_range(&std::fs::read_to_string(file).ok()?, &uid, name.as_deref())
}

fn first_range(text: &str, uid: &str, name: Option<&str>) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let who = f.next()?;
        if who != uid && Some(who) != name {
            return None;
        }
        let (start, count) = (f.next()?.parse().ok()?, f.next()?.parse().ok()?);
        (count > 0 && f.next().is_none()).then_some((start, count))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: u32, h: u32, n: u32) -> LinuxIdMapping {
        serde_json::from_value(serde_json::json!({"containerID": c, "hostID": h, "size": n})).expect("mapping")
    }

    #[test]
    fn the_callers_first_range_by_name_or_number() {
        let text = "other:100000:65536\n# comment\nme:bad:1\nme:0:0\n1001:200000:10\nme:300000:65536\n";
        assert_eq!(first_range(text, "1001", Some("me")), Some((200000, 10)));
        assert_eq!(first_range(text, "1002", Some("me")), Some((300000, 65536)));
        assert_eq!(first_range(text, "1002", None), None);
        assert_eq!(first_range("", "1001", Some("me")), None);
    }

    #[test]
    fn only_the_own_id_to_one_is_a_self_map() {
        assert!(is_self_map(&[m(0, 1000, 1)], 1000));
        assert!(is_self_map(&[m(5, 1000, 1)], 1000));
        assert!(!is_self_map(&[m(0, 1000, 2)], 1000));
        assert!(!is_self_map(&[m(0, 1001, 1)], 1000));
        assert!(!is_self_map(&[m(0, 1000, 1), m(1, 100000, 65536)], 1000));
    }
}
