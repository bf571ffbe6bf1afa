//! Audit policies: which findings refuse a container, where they come from, and how a container
//! keeps the ones it was created under.
//!
//! A policy applies from three places, all of them at once (the strictest wins, since each one
//! must pass on its own):
//! - the system default `/etc/testudo/policy.json`, whenever that file exists, with no flag at all;
//! - the global `--policy FILE` (before the subcommand: where Docker's `runtimeArgs`, containerd's
//!   runc options and podman's `runtime_args` put arguments);
//! - `create --policy FILE` / `run --policy FILE`.
//!
//! A policy named, or present at the default path, that cannot be used is an error, never "no
//! policy": missing (when named), unreadable, not a regular file, not owned by root when testudo
//! runs as the host's root (`rootless::host_root`), writable by group or others, or not a valid policy; and no default file is "no
//! default" only while /etc/testudo (if it exists) is root's alone.
//!
//! `create` records the policies with the container (`policy.json` in its state directory);
//! `exec` audits the new process and `update` the resources it would leave, under the recorded
//! policies and those in force at that call: a container created under a policy keeps it.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use super::{audit, failures, Finding, Severity};
use crate::error::{Context, Error, Result};

/// The system-wide default policy: used whenever it exists.
pub const DEFAULT_PATH: &str = "/etc/testudo/policy.json";

/// Where `create` records the container's policies, in its state directory.
pub const RECORD_FILE: &str = "policy.json";

/// `{"failOn": "high|medium|low", "ignore": ["5.12", …], "numbering": "v1.6.0|v1.7.0", "ignoreDerived": false}`.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(rename = "failOn")]
    pub fail_on: Severity,
    /// CIS items not enforced, in the numbering `numbering` names.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// How `ignore` numbers the items: the CIS Docker Benchmark v1.6.0 (the default, what testudo
    /// reports) or v1.7.0, which numbers every section-5 item one higher.
    #[serde(default = "default_numbering")]
    pub numbering: String,
    /// Do not count a finding that follows from a failed item also enforced (`because`), so one
    /// `--privileged` is refused as 5.4 alone. A derived finding of an ignored item still counts.
    #[serde(rename = "ignoreDerived", default)]
    pub ignore_derived: bool,
}

fn default_numbering() -> String {
    super::BENCHMARK_VERSION.to_string()
}

/// A policy and the file it came from (named in every refusal).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Named {
    pub path: PathBuf,
    pub policy: Policy,
}

impl Policy {
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Policy> {
        let mut p: Policy = serde_json::from_slice(bytes).map_err(|e| Error::new(format!("policy {path:?}: {e}")))?;
        super::numbering::to_reported(&p.numbering, "4.1").map_err(|e| Error::new(format!("policy {path:?}: {e}")))?;
        let known = super::items();
        let mut canonical = Vec::with_capacity(p.ignore.len());
        for i in &p.ignore {
            let item = super::numbering::to_reported(&p.numbering, i).map_err(|e| Error::new(format!("policy {path:?}: {e}")))?;
            if !known.contains(&item.as_ref()) {
                return Err(Error::new(format!("policy {path:?}: ignore: {i:?} is not an item testudo audits ({})", known.join(", "))));
            }
            canonical.push(item.to_string());
        }
        p.ignore = canonical;
        p.numbering = super::BENCHMARK_VERSION.to_string();
        Ok(p)
    }

    /// The findings this policy refuses.
    pub fn refused<'a>(&self, findings: &'a [Finding]) -> Vec<&'a Finding> {
        failures(findings, self.fail_on, &self.ignore)
            .into_iter()
            .filter(|f| !(self.ignore_derived && f.because.is_some_and(|main| !self.ignore.iter().any(|i| i == main))))
            .collect()
    }
}

/// Read a policy file the way only root can have written it (when we are root).
pub fn load(path: &Path) -> Result<Policy> {
    // O_NOFOLLOW: the checks below are of the file itself, never of what a link points to.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("policy {path:?}"))?;
    let md = f.metadata().with_context(|| format!("policy {path:?}"))?;
    if !md.file_type().is_file() {
        return Err(Error::new(format!("policy {path:?}: not a regular file")));
    }
    // Only root of the host can be held to this: inside a user namespace (rootless podman) the
    // host's root-owned files show as the overflow uid, and a rootless caller could run any
    // runtime it likes anyway; the policy binds the host's root.
    if crate::container::rootless::host_root() && md.uid() != 0 {
        return Err(Error::new(format!("policy {path:?}: owned by uid {}, not root: anyone who can write it decides what runs", md.uid())));
    }
    if md.mode() & 0o022 != 0 {
        return Err(Error::new(format!("policy {path:?}: mode {:o} lets group or others write it", md.mode() & 0o7777)));
    }
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).with_context(|| format!("policy {path:?}"))?;
    Policy::parse(path, &bytes)
}

/// The policies in force for one call: the system default if present, the global `--policy`,
/// the command's own `--policy`.
pub fn in_force(global: Option<&Path>, command: Option<&Path>) -> Result<Vec<Named>> {
    let mut out = Vec::new();
    let default = Path::new(DEFAULT_PATH);
    match std::fs::symlink_metadata(default) {
        // No default, unless someone other than root could have removed it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => trusted_dir(default)?,
        _ => out.push(Named { path: default.into(), policy: load(default)? }),
    }
    for path in [global, command].into_iter().flatten() {
        if !out.iter().any(|n| n.path == path) {
            out.push(Named { path: path.into(), policy: load(path)? });
        }
    }
    Ok(out)
}

/// The directory of the default policy, where it exists, is root's alone: whoever else could write
/// it could remove the policy, and "no file" would then mean "no policy".
fn trusted_dir(default: &Path) -> Result<()> {
    let Some(dir) = default.parent() else { return Ok(()) };
    match std::fs::metadata(dir) {
        Ok(md) if crate::container::rootless::host_root() && (md.uid() != 0 || md.mode() & 0o022 != 0) => Err(Error::new(format!(
            "policy directory {dir:?}: owned by uid {} with mode {:o}: anyone who can write it can remove {default:?}",
            md.uid(),
            md.mode() & 0o7777
        ))),
        _ => Ok(()),
    }
}

/// Record the policies a container is created under (in its 0700 state directory).
pub fn record(dir: &Path, policies: &[Named]) -> Result<()> {
    if policies.is_empty() {
        return Ok(());
    }
    let path = dir.join(RECORD_FILE);
    let bytes = serde_json::to_vec(policies).map_err(|e| Error::new(format!("record policy: {e}")))?;
    std::fs::write(&path, bytes).with_context(|| format!("record policy {path:?}"))
}

/// The recorded policies and those in force now, for a command on a live container.
pub fn of_container(dir: &Path, global: Option<&Path>) -> Result<Vec<Named>> {
    let path = dir.join(RECORD_FILE);
    let mut out: Vec<Named> = match std::fs::read(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("read the container's policy {path:?}")),
        Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::new(format!("the container's policy {path:?}: {e}")))?,
    };
    out.extend(in_force(global, None)?);
    Ok(out)
}

/// The one error of a refusal, naming every failed item of every policy that refuses.
pub fn enforce(policies: &[Named], spec: &Spec, what: &str) -> Result<()> {
    if policies.is_empty() {
        return Ok(());
    }
    let findings = audit(spec);
    let mut refusals = Vec::new();
    for n in policies {
        let failed = n.policy.refused(&findings);
        if !failed.is_empty() {
            let list: Vec<String> = failed.iter().map(|f| f.summary()).collect();
            refusals.push(format!("policy {:?} refuses {what} ({}): {}", n.path, super::BENCHMARK, list.join("; ")));
        }
    }
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(Error::new(refusals.join("; and ")))
    }
}

/// `exec` (CIS 5.22, 5.23): the container's config with the new process in its place, so an exec
/// with capabilities, privileges or a user the policy refuses is refused like such a container.
pub fn enforce_exec(policies: &[Named], spec: &Spec, process: &oci_spec::runtime::Process) -> Result<()> {
    if policies.is_empty() {
        return Ok(());
    }
    let mut s = spec.clone();
    s.set_process(Some(process.clone()));
    enforce(policies, &s, "this exec (CIS 5.22, 5.23: the exec'd process is audited as the container's)")
}

/// `update`: the config with the resources the update would leave.
pub fn enforce_update(policies: &[Named], spec: &Spec, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
    if policies.is_empty() {
        return Ok(());
    }
    let mut v = serde_json::to_value(spec).map_err(|e| Error::new(format!("saved config.json: {e}")))?;
    let r = serde_json::to_value(resources).map_err(|e| Error::new(format!("resources: {e}")))?;
    super::limits::after_update(&mut v, &r);
    let s: Spec = serde_json::from_value(v).map_err(|e| Error::new(format!("resources after the update: {e}")))?;
    enforce(policies, &s, "this update")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        serde_json::from_value(json).expect("spec")
    }

    fn named(json: &str) -> Vec<Named> {
        vec![Named { path: "p.json".into(), policy: Policy::parse(Path::new("p.json"), json.as_bytes()).expect("policy") }]
    }

    #[test]
    fn a_policy_refuses_at_its_severity_and_ignores_what_it_lists() {
        let s = spec(crate::commands::spec::default_config(false).expect("default"));
        assert!(enforce(&named(r#"{"failOn": "high"}"#), &s, "this container").is_ok(), "the default spec has no high finding");
        let e = enforce(&named(r#"{"failOn": "medium"}"#), &s, "this container").expect_err("medium").to_string();
        assert!(e.contains("5.10 memory limit") && e.contains("5.28 pids limit") && e.contains("v1.6.0"), "{e}");
        let ignore: Vec<String> = audit(&s).iter().filter(|f| !f.passed).map(|f| format!("{:?}", f.cis)).collect();
        assert!(enforce(&named(&format!(r#"{{"failOn": "low", "ignore": [{}]}}"#, ignore.join(","))), &s, "x").is_ok());
    }

    #[test]
    fn ignore_takes_either_numbering_and_nothing_else() {
        let p = |j: &str| Policy::parse(Path::new("p"), j.as_bytes());
        assert_eq!(p(r#"{"failOn": "high", "ignore": ["5.10"]}"#).expect("v1.6").ignore, ["5.10"]);
        assert_eq!(p(r#"{"failOn": "high", "numbering": "v1.7.0", "ignore": ["5.11", "4.1"]}"#).expect("v1.7").ignore, ["5.10", "4.1"]);
        assert_eq!(p(r#"{"failOn": "high", "numbering": "v1.7.0", "ignore": ["5.3"]}"#).expect("SELinux").ignore, ["5.2"]);
        assert!(p(r#"{"failOn": "high", "numbering": "v1.7.0", "ignore": ["5.1"]}"#).is_err(), "5.1 of v1.7.0 is swarm mode");
        assert!(p(r#"{"failOn": "high", "ignore": ["5.8"]}"#).is_err(), "not audited");
        assert!(p(r#"{"failOn": "high", "numbering": "v2"}"#).is_err());
    }

    #[test]
    fn derived_findings_can_be_ignored_while_their_cause_is_enforced() {
        let mut v = crate::commands::spec::hardened_config().expect("hardened");
        v["linux"]["resources"]["devices"] = serde_json::json!([{"allow": true, "type": "a", "major": -1, "minor": -1, "access": "rwm"}]);
        v["process"]["capabilities"]["bounding"] = serde_json::json!(["CAP_SYS_ADMIN"]);
        let s = spec(v);
        let e = enforce(&named(r#"{"failOn": "high", "ignoreDerived": true}"#), &s, "x").expect_err("5.4").to_string();
        assert!(e.contains("5.4 not privileged") && !e.contains("5.3"), "{e}");
        // Ignoring the cause does not ignore what follows from it.
        let e = enforce(&named(r#"{"failOn": "high", "ignoreDerived": true, "ignore": ["5.4"]}"#), &s, "x").expect_err("5.3").to_string();
        assert!(e.contains("5.3 capabilities"), "{e}");
    }

    #[test]
    fn a_policy_file_anyone_could_write_is_refused() {
        let dir = std::env::temp_dir().join(format!("testudo-policy-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("p.json");
        std::fs::write(&f, r#"{"failOn": "high"}"#).expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(load(&f).is_ok());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        assert!(load(&f).expect_err("world-writable").to_string().contains("lets group or others write it"));
        let link = dir.join("link.json");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&f, &link).expect("symlink");
        assert!(load(&link).is_err(), "a symlink is not followed");
        assert!(in_force(None, Some(&dir.join("missing.json"))).is_err(), "a named policy that is missing");
        if crate::container::rootless::host_root() {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
            let e = trusted_dir(&dir.join("policy.json")).expect_err("a writable directory").to_string();
            assert!(e.contains("can remove"), "{e}");
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            assert!(trusted_dir(&dir.join("policy.json")).is_ok());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
