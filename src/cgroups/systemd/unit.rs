//! `linux.cgroupsPath` under the systemd driver: `slice:prefix:name`, as runc reads it.
//!
//! - the slice: empty means `system.slice` (`user.slice` of the user's manager, rootless);
//!   `-.slice` is the root slice; a dash nests, so `a-b-c.slice` lives at
//!   `a.slice/a-b.slice/a-b-c.slice` (systemd's own rule);
//! - the unit: `<prefix>-<name>.scope`, or `name` itself when it ends in `.slice`;
//! - the cgroup: the expanded slice, then the unit (below the user's manager's own cgroup,
//!   rootless, where the driver reads it from systemd instead).
//!
//! An empty cgroupsPath is `:testudo:<id>`.

use std::path::PathBuf;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The slice unit the scope goes into (`system.slice`).
    pub slice: String,
    /// `testudo-<id>.scope`, or a slice.
    pub name: String,
    /// The unit's cgroup relative to the hierarchy root: `system.slice/testudo-<id>.scope`.
    pub cgroup: PathBuf,
}

/// The slice of a scope whose cgroupsPath names none, on the system bus.
pub const DEFAULT_SLICE: &str = "system.slice";

impl Unit {
    pub fn is_slice(&self) -> bool {
        self.name.ends_with(".slice")
    }

    /// `default_slice`: the slice when cgroupsPath names none (the manager's, see the module doc).
    pub fn parse(cgroups_path: Option<&str>, id: &str, default_slice: &str) -> Result<Unit> {
        let path = cgroups_path.filter(|p| !p.is_empty());
        let (slice, prefix, name) = match path {
            None => ("", "testudo", id),
            Some(p) => {
                let parts: Vec<&str> = p.split(':').collect();
                let [slice, prefix, name] = parts[..] else {
                    return Err(Error::new(format!(
                        "cgroupsPath {p:?}: with --systemd-cgroup it must have the form slice:prefix:name (as \"system.slice:docker:<id>\")"
                    )));
                };
                (slice, prefix, name)
            }
        };
        let what = || format!("cgroupsPath {:?}", path.unwrap_or_default());
        if name.is_empty() {
            return Err(Error::new(format!("{}: the name (after the second colon) is empty", what())));
        }
        if name.contains('/') || prefix.contains('/') {
            return Err(Error::new(format!("{}: a unit name cannot contain '/'", what())));
        }
        let slice = if slice.is_empty() { default_slice } else { slice };
        let unit = if name.ends_with(".slice") { name.to_string() } else { format!("{prefix}-{name}.scope") };
        let cgroup = expand(slice).map_err(|e| e.context(what()))?.join(&unit);
        Ok(Unit { slice: slice.to_string(), name: unit, cgroup })
    }
}

/// A slice's cgroup relative to the hierarchy root: `a-b.slice` → `a.slice/a-b.slice`,
/// `-.slice` → the root itself.
pub fn expand(slice: &str) -> Result<PathBuf> {
    let bad = |why: &str| Error::new(format!("slice {slice:?}: {why}"));
    let Some(stem) = slice.strip_suffix(".slice") else { return Err(bad("a slice name ends in \".slice\"")) };
    if slice.contains('/') {
        return Err(bad("a slice name cannot contain '/' (nest with '-': \"a-b.slice\" is inside \"a.slice\")"));
    }
    if stem == "-" {
        return Ok(PathBuf::new());
    }
    let mut path = PathBuf::new();
    let mut prefix = String::new();
    for part in stem.split('-') {
        if part.is_empty() {
            return Err(bad("empty component (a leading, trailing or double '-')"));
        }
        prefix.push_str(part);
        path.push(format!("{prefix}.slice"));
        prefix.push('-');
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(p: &str) -> Unit {
        Unit::parse(Some(p), "c1", DEFAULT_SLICE).expect(p)
    }

    #[test]
    fn slices_nest_by_dash() {
        assert_eq!(expand("system.slice").ok(), Some(PathBuf::from("system.slice")));
        assert_eq!(expand("a-b-c.slice").ok(), Some(PathBuf::from("a.slice/a-b.slice/a-b-c.slice")));
        assert_eq!(expand("-.slice").ok(), Some(PathBuf::new()));
        let k = "kubepods-besteffort-pod0f1e.slice";
        assert_eq!(expand(k).ok(), Some(PathBuf::from("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0f1e.slice")));
        for bad in ["system", ".slice", "-a.slice", "a-.slice", "a--b.slice", "a/b.slice", "a.slice/b.slice"] {
            assert!(expand(bad).is_err(), "{bad}");
        }
        assert_eq!(expand("a--b.slice").expect_err("double dash").to_string(), "slice \"a--b.slice\": empty component (a leading, trailing or double '-')");
    }

    #[test]
    fn units_and_their_cgroups() {
        let u = unit("system.slice:docker:abc");
        assert_eq!((u.slice.as_str(), u.name.as_str(), u.cgroup.to_str()), ("system.slice", "docker-abc.scope", Some("system.slice/docker-abc.scope")));
        let u = unit(":cri-containerd:abc");
        assert_eq!(u.cgroup, PathBuf::from("system.slice/cri-containerd-abc.scope"), "the default slice");
        let u = unit("-.slice:p:n");
        assert_eq!(u.cgroup, PathBuf::from("p-n.scope"), "the root slice");
        let u = unit("kubepods-burstable.slice:cri-containerd:x");
        assert_eq!(u.cgroup, PathBuf::from("kubepods.slice/kubepods-burstable.slice/cri-containerd-x.scope"));
        let u = unit("a.slice:ignored:a-pod.slice");
        assert!(u.is_slice());
        assert_eq!((u.name.as_str(), u.cgroup.to_str()), ("a-pod.slice", Some("a.slice/a-pod.slice")));
        let u = Unit::parse(None, "c1", DEFAULT_SLICE).expect("default");
        assert_eq!(u.cgroup, PathBuf::from("system.slice/testudo-c1.scope"));
        assert_eq!(Unit::parse(Some(""), "c1", DEFAULT_SLICE).ok(), Some(u));
        let u = Unit::parse(Some(":podman:abc"), "c1", "user.slice").expect("the user's manager");
        assert_eq!((u.slice.as_str(), u.cgroup.to_str()), ("user.slice", Some("user.slice/podman-abc.scope")), "rootless: user.slice, as runc");
    }

    #[test]
    fn what_runc_refuses() {
        let e = Unit::parse(Some("/sys/fs/cgroup/x"), "c1", DEFAULT_SLICE).expect_err("a path").to_string();
        assert_eq!(e, "cgroupsPath \"/sys/fs/cgroup/x\": with --systemd-cgroup it must have the form slice:prefix:name (as \"system.slice:docker:<id>\")");
        assert!(Unit::parse(Some("a:b:c:d"), "c1", DEFAULT_SLICE).is_err());
        assert_eq!(
            Unit::parse(Some("system.slice:p:"), "c1", DEFAULT_SLICE).expect_err("no name").to_string(),
            "cgroupsPath \"system.slice:p:\": the name (after the second colon) is empty"
        );
        assert_eq!(
            Unit::parse(Some("system:p:n"), "c1", DEFAULT_SLICE).expect_err("not a slice").to_string(),
            "cgroupsPath \"system:p:n\": slice \"system\": a slice name ends in \".slice\""
        );
        assert!(Unit::parse(Some("system.slice:p:a/b"), "c1", DEFAULT_SLICE).is_err());
    }
}
