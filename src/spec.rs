//! config.json: load it, and refuse at create whatever this build cannot enforce exactly.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType as T, Process, Spec};

use crate::error::{Context, Error, Result};

pub const SPEC_VERSION: &str = "1.3.0";

pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// The exact bytes read, stored in the state dir.
    pub bytes: Vec<u8>,
    pub spec: Spec,
    /// root.path made absolute.
    pub rootfs: PathBuf,
}

pub fn load(bundle: &Path) -> Result<Bundle> {
    let (dir, bytes, spec) = read_config(bundle)?;
    given(dir, bytes, spec)
}

/// A spec as read from `dir` (`load`) or made in memory (`sandbox`): `bytes` are what the
/// container directory saves as its config.json; root.path is checked and made absolute.
pub fn given(dir: PathBuf, bytes: Vec<u8>, spec: Spec) -> Result<Bundle> {
    let root = spec.root().as_ref().ok_or_else(|| Error::new("config.json: root is missing"))?;
    let rootfs = rootfs_path(&dir, root.path())?;
    Ok(Bundle { dir, bytes, spec, rootfs })
}

/// The bundle's absolute path and its config.json, read and parsed: what `check` audits, for a
/// bundle whose rootfs may not be there yet.
pub fn read_config(bundle: &Path) -> Result<(PathBuf, Vec<u8>, Spec)> {
    let dir = std::path::absolute(bundle).with_context(|| format!("bundle {bundle:?}"))?;
    let path = dir.join("config.json");
    let bytes = read_regular(&path)?;
    let spec = parse(&bytes).map_err(|e| e.context(format!("{path:?}")))?;
    Ok((dir, bytes, spec))
}

/// The bytes of a regular file. Opened non-blocking: a FIFO in place of config.json would
/// otherwise hang create until some writer came along.
fn read_regular(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let what = || format!("read {path:?}");
    let mut f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).with_context(what)?;
    let t = f.metadata().with_context(what)?.file_type();
    if !t.is_file() {
        let kind = if t.is_fifo() {
            "a fifo"
        } else if t.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(Error::new(format!("{path:?}: is {kind}, not a regular file")));
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).with_context(what)?;
    Ok(bytes)
}

/// root.path as runc takes it: relative to the bundle (with the bundle's own symlinks resolved),
/// cleaned lexically, and then refused if any component of it is a symlink. So "a/../rootfs"
/// means BUNDLE/rootfs whether or not "a" exists, and the path testudo checks, records and mounts
/// is the one the kernel walks: a symlink in root.path cannot make the two differ.
fn rootfs_path(bundle: &Path, root: &Path) -> Result<PathBuf> {
    let what = format!("root.path {root:?}");
    let joined = if root.is_absolute() { root.to_path_buf() } else { std::fs::canonicalize(bundle).with_context(|| format!("bundle {bundle:?}"))?.join(root) };
    let clean = lexical_clean(&joined);
    let real = std::fs::canonicalize(&clean).with_context(|| format!("{what}: rootfs {clean:?}"))?;
    if real != clean {
        return Err(Error::new(format!("{what}: rootfs {clean:?} goes through a symlink (to {real:?})")));
    }
    if !real.is_dir() {
        return Err(Error::new(format!("{what}: rootfs {real:?} is not a directory")));
    }
    Ok(real)
}

/// "/a/b/../c/./d" → "/a/c/d"; ".." at "/" stays at "/". Text only, no file system access.
pub fn lexical_clean(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

pub fn parse(bytes: &[u8]) -> Result<Spec> {
    serde_json::from_slice(bytes).map_err(|e| Error::new(format!("invalid config: {e}")))
}

/// The kernel's limits on setgroups(2) and sethostname(2)/setdomainname(2).
const NGROUPS_MAX: usize = 65536;
const HOST_NAME_MAX: usize = 64;

/// `hostname` / `domainname`: what the kernel takes (64 bytes), and nothing that would read as
/// a path or a second line to whatever later prints or parses it.
fn check_name(field: &str, name: &str) -> Result<()> {
    if name.len() > HOST_NAME_MAX {
        let head: String = name.chars().take(16).collect();
        return Err(Error::new(format!("{field}: {} bytes (starting {head:?}), longer than HOST_NAME_MAX ({HOST_NAME_MAX})", name.len())));
    }
    if name.contains('/') || name.chars().any(|c| c.is_control()) {
        return Err(Error::new(format!("{field} {name:?}: must not contain '/' or control characters")));
    }
    Ok(())
}

/// What a process asks of the host, checked before anything is cloned: by create for the
/// container's process, by exec for its own. The scheduler and I/O priority it can get, an
/// AppArmor profile that is loaded, an SELinux label the loaded policy defines.
pub fn check_process(process: &Process) -> Result<()> {
    let user = process.user();
    if let Some(m) = user.umask().filter(|m| *m > 0o777) {
        return Err(Error::new(format!("process.user.umask: {m} ({m:#o}) is not a file mode mask (at most 0o777)")));
    }
    if let Some(g) = user.additional_gids().as_ref().filter(|g| g.len() > NGROUPS_MAX) {
        return Err(Error::new(format!("process.user.additionalGids: {} groups, more than the kernel's NGROUPS_MAX ({NGROUPS_MAX})", g.len())));
    }
    if let Some(s) = process.scheduler() {
        crate::linux::sched::check(s)?;
    }
    if let Some(p) = process.io_priority() {
        crate::linux::ioprio::check(p)?;
    }
    if let Some(label) = process.apparmor_profile().as_deref().filter(|s| !s.is_empty()) {
        crate::security::apparmor::check(label)?;
    }
    if let Some(label) = process.selinux_label().as_deref().filter(|s| !s.is_empty()) {
        crate::security::selinux::check("process.selinuxLabel", label)?;
    }
    Ok(())
}

/// Everything checked here would otherwise be ignored or half-applied.
pub fn validate(spec: &Spec) -> Result<()> {
    let major = spec.version().split('.').next().unwrap_or("");
    if major != "1" {
        return Err(Error::new(format!("ociVersion {:?} is not supported (need 1.x)", spec.version())));
    }
    let process = spec.process().as_ref().ok_or_else(|| Error::new("config.json: process is missing"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::new("process.args must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(Error::new(format!("process.cwd {:?} must be absolute", process.cwd())));
    }
    let unsupported = |what: &str| Err(Error::new(format!("{what} is not supported yet")));
    check_process(process)?;
    if let Some(a) = process.exec_cpu_affinity() {
        crate::linux::affinity::check(a)?;
    }
    if spec.solaris().is_some() || spec.windows().is_some() || spec.vm().is_some() {
        return Err(Error::new("solaris, windows and vm sections do not apply to a Linux container"));
    }
    let linux = spec.linux().as_ref().ok_or_else(|| Error::new("config.json: linux is missing"))?;
    let has = |t: T| linux.namespaces().iter().flatten().any(|n| n.typ() == t);
    if !has(T::Mount) {
        crate::linux::rootfs::check_without_mount_ns(spec)?;
    }
    if let Some(h) = spec.hostname() {
        check_name("hostname", h)?;
    }
    if let Some(d) = spec.domainname() {
        check_name("domainname", d)?;
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(T::Uts) {
        return Err(Error::new("hostname needs a uts namespace"));
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(T::Uts) {
        return Err(Error::new("domainname needs a uts namespace"));
    }
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty()) || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    // An empty path means a new namespace, as in namespaces::plan.
    let new = |t: T| linux.namespaces().iter().flatten().any(|n| n.typ() == t && n.path().as_ref().is_none_or(|p| p.as_os_str().is_empty()));
    let new_user = new(T::User);
    if maps && !new_user {
        let why = if has(T::User) { ": one joined by path has its id maps already" } else { "" };
        return Err(Error::new(format!("linux.uidMappings/gidMappings need a new user namespace{why}")));
    }
    if new_user {
        crate::linux::idmap::validate("uid", linux.uid_mappings().as_deref().unwrap_or(&[]))?;
        crate::linux::idmap::validate("gid", linux.gid_mappings().as_deref().unwrap_or(&[]))?;
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty()) && !new(T::Time) {
        // The kernel takes offsets only before the first process enters a time namespace.
        let why = if has(T::Time) { ": offsets cannot be set in one joined by path" } else { "" };
        return Err(Error::new(format!("linux.timeOffsets need a new time namespace{why}")));
    }
    if linux.intel_rdt().is_some() {
        return unsupported("linux.intelRdt");
    }
    if let Some(p) = linux.personality() {
        crate::linux::personality::check(p)?;
    }
    if let Some(mp) = linux.memory_policy() {
        crate::linux::mempolicy::check(mp)?;
    }
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            return Err(Error::new(format!("mount destination {:?} must be absolute", m.destination())));
        }
        if m.uid_mappings().is_some() || m.gid_mappings().is_some() {
            let what = format!("mount {:?}", m.destination());
            let (Some(uids), Some(gids)) = (m.uid_mappings(), m.gid_mappings()) else {
                return Err(Error::new(format!("{what}: an idmapped mount needs both uidMappings and gidMappings")));
            };
            let bind = m.typ().as_deref() == Some("bind") || m.options().iter().flatten().any(|o| o == "bind" || o == "rbind");
            if !bind {
                return Err(Error::new(format!("{what}: uidMappings/gidMappings are only supported on bind mounts")));
            }
            crate::linux::idmap::validate(&format!("{what}: uid"), uids)?;
            crate::linux::idmap::validate(&format!("{what}: gid"), gids)?;
        }
    }
    for d in linux.devices().iter().flatten() {
        crate::linux::devices::from_spec(d)?;
    }
    if let Some(label) = linux.mount_label().as_deref().filter(|s| !s.is_empty()) {
        crate::security::selinux::check("linux.mountLabel", label)?;
    }
    if let Some(r) = linux.resources() {
        crate::cgroups::resources::check(r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}
        })
    }

    fn check(v: serde_json::Value) -> Result<()> {
        validate(&parse(v.to_string().as_bytes())?)
    }

    #[test]
    fn root_paths_are_cleaned_lexically() {
        for (p, clean) in [("/a/b/../c/./d", "/a/c/d"), ("/../../var", "/var"), ("/x/..", "/"), ("/", "/"), ("/a//b/", "/a/b")] {
            assert_eq!(lexical_clean(Path::new(p)), Path::new(clean), "{p}");
        }
    }

    #[test]
    fn a_minimal_config_is_valid() {
        assert!(check(base()).is_ok());
    }

    #[test]
    fn bad_configs_are_refused_with_the_field_named() {
        let mut v = base();
        v["ociVersion"] = "2.0.0".into();
        assert!(check(v).expect_err("refused").to_string().contains("ociVersion"));
        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        assert!(check(v).expect_err("refused").to_string().contains("process.args"));
        let mut v = base();
        v["process"]["args"] = serde_json::json!("sh");
        assert!(check(v).expect_err("refused").to_string().contains("invalid config"));
        let mut v = base();
        v["hostname"] = "h".into();
        assert!(check(v).expect_err("refused").to_string().contains("uts"));
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
        v["mounts"] = serde_json::json!([{"destination": "/proc", "type": "proc", "source": "proc"}]);
        assert!(check(v).expect_err("refused").to_string().contains("mounts: needs a mount namespace"));
        let mut v = base();
        v["process"]["capabilities"] = serde_json::json!({"bounding": ["CAP_NOT_A_CAP"]});
        assert!(check(v).is_err());
        let mut v = base();
        v["linux"]["personality"] = serde_json::json!({"domain": "LINUX32", "flags": ["SHORT_INODE"]});
        assert!(check(v).expect_err("personality flags").to_string().contains("personality"));
        let mut v = base();
        v["process"]["scheduler"] = serde_json::json!({"policy": "SCHED_ISO"});
        assert!(check(v).expect_err("SCHED_ISO").to_string().contains("SCHED_ISO"));
        assert!(parse(b"{not json").is_err());
    }

    /// (the field as /a/b, the value, the exact error)
    #[test]
    fn out_of_range_values_are_refused_with_the_field_named() {
        let err = |ptr: &str, value: serde_json::Value| {
            let mut v = base();
            v["linux"]["namespaces"].as_array_mut().expect("ns").push(serde_json::json!({"type": "uts"}));
            let mut at = &mut v;
            for key in ptr.split('/').skip(1) {
                at = &mut at[key];
            }
            *at = value;
            check(v).err().map(|e| e.to_string())
        };
        let gids: Vec<u32> = (0..70_000).collect();
        let long = "h".repeat(100_000);
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("/process/user/umask", 99999.into(), "process.user.umask: 99999 (0o303237) is not a file mode mask (at most 0o777)"),
            ("/process/user/additionalGids", gids.into(), "process.user.additionalGids: 70000 groups, more than the kernel's NGROUPS_MAX (65536)"),
            ("/hostname", long.into(), "hostname: 100000 bytes (starting \"hhhhhhhhhhhhhhhh\"), longer than HOST_NAME_MAX (64)"),
            ("/hostname", "a/b".into(), "hostname \"a/b\": must not contain '/' or control characters"),
            ("/hostname", "a\nb".into(), "hostname \"a\\nb\": must not contain '/' or control characters"),
            ("/domainname", "x\n".into(), "domainname \"x\\n\": must not contain '/' or control characters"),
        ];
        for (ptr, value, want) in cases {
            assert_eq!(err(ptr, value).as_deref(), Some(want), "{ptr}");
        }
        assert_eq!(err("/process/user/umask", 0o777.into()), None);
        assert_eq!(err("/hostname", "h".repeat(64).into()), None);
    }
}
