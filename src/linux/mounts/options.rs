//! The options of a `mounts[]` entry, split by the syscall that applies each part: mount(2)
//! flags for a fresh filesystem, MOUNT_ATTR_* for mount_setattr(2) on the mount itself or
//! recursively, the propagation type, idmap, and the filesystem's own data string.

use nix::mount::MsFlags;

/// What a mount's options ask for, split by the syscall that applies each part.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub bind: bool,
    pub recursive: bool,
    /// For a fresh mount: mount(2) flags.
    pub flags: MsFlags,
    /// For the mount itself (non-recursive): MOUNT_ATTR_* to set and clear.
    pub attr_set: u64,
    pub attr_clr: u64,
    /// Recursive attributes (rro, rnosuid, …).
    pub rec_set: u64,
    pub rec_clr: u64,
    /// MS_PRIVATE / MS_SHARED / MS_SLAVE / MS_UNBINDABLE, and whether recursive.
    pub propagation: Option<(MsFlags, bool)>,
    pub idmap: Option<bool>,
    /// tmpcopyup: a tmpfs starts with a copy of what was at its destination (linux::copyup).
    pub copyup: bool,
    /// Filesystem-specific options passed to the kernel as the data string.
    pub data: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bind: false,
            recursive: false,
            flags: MsFlags::empty(),
            attr_set: 0,
            attr_clr: 0,
            rec_set: 0,
            rec_clr: 0,
            propagation: None,
            idmap: None,
            copyup: false,
            data: Vec::new(),
        }
    }
}

// (option, mount(2) flag set, mount(2) flag cleared, MOUNT_ATTR set, MOUNT_ATTR cleared)
const FLAGS: &[(&str, MsFlags, MsFlags, u64, u64)] = &[
    ("ro", MsFlags::MS_RDONLY, MsFlags::empty(), libc::MOUNT_ATTR_RDONLY, 0),
    ("rw", MsFlags::empty(), MsFlags::MS_RDONLY, 0, libc::MOUNT_ATTR_RDONLY),
    ("nosuid", MsFlags::MS_NOSUID, MsFlags::empty(), libc::MOUNT_ATTR_NOSUID, 0),
    ("suid", MsFlags::empty(), MsFlags::MS_NOSUID, 0, libc::MOUNT_ATTR_NOSUID),
    ("nodev", MsFlags::MS_NODEV, MsFlags::empty(), libc::MOUNT_ATTR_NODEV, 0),
    ("dev", MsFlags::empty(), MsFlags::MS_NODEV, 0, libc::MOUNT_ATTR_NODEV),
    ("noexec", MsFlags::MS_NOEXEC, MsFlags::empty(), libc::MOUNT_ATTR_NOEXEC, 0),
    ("exec", MsFlags::empty(), MsFlags::MS_NOEXEC, 0, libc::MOUNT_ATTR_NOEXEC),
    ("nodiratime", MsFlags::MS_NODIRATIME, MsFlags::empty(), libc::MOUNT_ATTR_NODIRATIME, 0),
    ("diratime", MsFlags::empty(), MsFlags::MS_NODIRATIME, 0, libc::MOUNT_ATTR_NODIRATIME),
    ("relatime", MsFlags::MS_RELATIME, MsFlags::empty(), 0, 0),
    ("norelatime", MsFlags::empty(), MsFlags::MS_RELATIME, 0, 0),
    ("noatime", MsFlags::MS_NOATIME, MsFlags::empty(), 0, 0),
    ("atime", MsFlags::empty(), MsFlags::MS_NOATIME, 0, 0),
    ("strictatime", MsFlags::MS_STRICTATIME, MsFlags::empty(), 0, 0),
    ("nostrictatime", MsFlags::empty(), MsFlags::MS_STRICTATIME, 0, 0),
    ("sync", MsFlags::MS_SYNCHRONOUS, MsFlags::empty(), 0, 0),
    ("async", MsFlags::empty(), MsFlags::MS_SYNCHRONOUS, 0, 0),
    ("dirsync", MsFlags::MS_DIRSYNC, MsFlags::empty(), 0, 0),
    ("mand", MsFlags::MS_MANDLOCK, MsFlags::empty(), 0, 0),
    ("nomand", MsFlags::empty(), MsFlags::MS_MANDLOCK, 0, 0),
    ("silent", MsFlags::MS_SILENT, MsFlags::empty(), 0, 0),
    ("loud", MsFlags::empty(), MsFlags::MS_SILENT, 0, 0),
    ("lazytime", MsFlags::MS_LAZYTIME, MsFlags::empty(), 0, 0),
    ("nolazytime", MsFlags::empty(), MsFlags::MS_LAZYTIME, 0, 0),
];

// Recursive attributes (mount_setattr with AT_RECURSIVE): (option, set, clear).
const RECURSIVE: &[(&str, u64, u64)] = &[
    ("rro", libc::MOUNT_ATTR_RDONLY, 0),
    ("rrw", 0, libc::MOUNT_ATTR_RDONLY),
    ("rnosuid", libc::MOUNT_ATTR_NOSUID, 0),
    ("rsuid", 0, libc::MOUNT_ATTR_NOSUID),
    ("rnodev", libc::MOUNT_ATTR_NODEV, 0),
    ("rdev", 0, libc::MOUNT_ATTR_NODEV),
    ("rnoexec", libc::MOUNT_ATTR_NOEXEC, 0),
    ("rexec", 0, libc::MOUNT_ATTR_NOEXEC),
    ("rnodiratime", libc::MOUNT_ATTR_NODIRATIME, 0),
    ("rdiratime", 0, libc::MOUNT_ATTR_NODIRATIME),
    ("rrelatime", libc::MOUNT_ATTR_RELATIME, libc::MOUNT_ATTR__ATIME),
    ("rnorelatime", 0, 0),
    ("rnoatime", libc::MOUNT_ATTR_NOATIME, libc::MOUNT_ATTR__ATIME),
    ("ratime", 0, libc::MOUNT_ATTR__ATIME),
    ("rstrictatime", libc::MOUNT_ATTR_STRICTATIME, libc::MOUNT_ATTR__ATIME),
    ("rnostrictatime", 0, 0),
    ("rnosymfollow", libc::MOUNT_ATTR_NOSYMFOLLOW, 0),
    ("rsymfollow", 0, libc::MOUNT_ATTR_NOSYMFOLLOW),
];

const PROPAGATION: &[(&str, MsFlags, bool)] = &[
    ("private", MsFlags::MS_PRIVATE, false),
    ("rprivate", MsFlags::MS_PRIVATE, true),
    ("shared", MsFlags::MS_SHARED, false),
    ("rshared", MsFlags::MS_SHARED, true),
    ("slave", MsFlags::MS_SLAVE, false),
    ("rslave", MsFlags::MS_SLAVE, true),
    ("unbindable", MsFlags::MS_UNBINDABLE, false),
    ("runbindable", MsFlags::MS_UNBINDABLE, true),
];

/// Every option name `parse` understands (for `features`).
pub fn option_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = FLAGS.iter().map(|f| f.0).chain(RECURSIVE.iter().map(|f| f.0)).chain(PROPAGATION.iter().map(|f| f.0)).collect();
    v.extend(["bind", "rbind", "idmap", "ridmap", "defaults", "tmpcopyup"]);
    v.sort_unstable();
    v
}

fn atime_attr(opt: &str) -> Option<u64> {
    match opt {
        "relatime" => Some(libc::MOUNT_ATTR_RELATIME),
        "noatime" => Some(libc::MOUNT_ATTR_NOATIME),
        "strictatime" => Some(libc::MOUNT_ATTR_STRICTATIME),
        _ => None,
    }
}

pub fn parse(mount_type: Option<&str>, options: &[String]) -> Options {
    let mut o = Options { bind: mount_type == Some("bind"), ..Options::default() };
    for opt in options {
        let opt = opt.as_str();
        if let Some(&(_, set, clr, aset, aclr)) = FLAGS.iter().find(|f| f.0 == opt) {
            o.flags = (o.flags | set) & !clr;
            o.attr_set = (o.attr_set | aset) & !aclr;
            o.attr_clr = (o.attr_clr | aclr) & !aset;
            if let Some(atime) = atime_attr(opt) {
                // The atime attributes are one field: clear all of it, set the chosen value.
                o.attr_set = (o.attr_set & !libc::MOUNT_ATTR__ATIME) | atime;
                o.attr_clr |= libc::MOUNT_ATTR__ATIME;
            }
        } else if let Some(&(_, set, clr)) = RECURSIVE.iter().find(|f| f.0 == opt) {
            if clr == libc::MOUNT_ATTR__ATIME {
                o.rec_set = (o.rec_set & !libc::MOUNT_ATTR__ATIME) | set;
                o.rec_clr |= clr;
            } else {
                o.rec_set = (o.rec_set | set) & !clr;
                o.rec_clr = (o.rec_clr | clr) & !set;
            }
        } else if let Some(&(_, p, rec)) = PROPAGATION.iter().find(|f| f.0 == opt) {
            o.propagation = Some((p, rec));
        } else {
            match opt {
                "bind" => o.bind = true,
                "rbind" => {
                    o.bind = true;
                    o.recursive = true;
                }
                "idmap" => o.idmap = Some(false),
                "ridmap" => o.idmap = Some(true),
                "defaults" => {}
                "tmpcopyup" => o.copyup = true,
                other => o.data.push(other.to_string()),
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: Option<&str>, o: &[&str]) -> Options {
        parse(t, &o.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn bind_options() {
        let o = p(Some("bind"), &["rbind", "ro", "nosuid", "rprivate"]);
        assert!(o.bind && o.recursive);
        assert_eq!(o.attr_set, libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID);
        assert_eq!(o.propagation, Some((MsFlags::MS_PRIVATE, true)));
        assert!(o.data.is_empty());
        let o = p(None, &["bind"]);
        assert!(o.bind && !o.recursive);
    }

    #[test]
    fn fresh_mount_flags_and_data() {
        let o = p(Some("tmpfs"), &["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert!(!o.bind);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, ["mode=755", "size=65536k"]);
        let o = p(Some("proc"), &["ro", "rw"]);
        assert_eq!(o.flags, MsFlags::empty(), "a later rw cancels ro");
    }

    #[test]
    fn recursive_attributes() {
        let o = p(Some("bind"), &["rbind", "rro", "rnosuid", "rnoatime"]);
        assert_eq!(o.rec_set, libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOATIME);
        assert_eq!(o.rec_clr, libc::MOUNT_ATTR__ATIME);
        assert_eq!(o.attr_set, 0);
        assert_eq!(p(Some("bind"), &["ridmap"]).idmap, Some(true));
    }
}
