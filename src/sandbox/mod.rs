//! `testudo sandbox`: an untrusted build job in one command, no bundle to write. The spec is the
//! hardened one (`spec --hardened`: every namespace, a user namespace whose root is host uid
//! 100000, the job as uid 1000 in it, no capabilities, no_new_privileges, read-only root, masked
//! paths) with the build profile, the limits asked for, RLIMIT_CORE 0 and RLIMIT_FSIZE, a
//! size-capped /tmp and the workspace. The workspace is an idmapped bind: the caller's files are
//! the job's (uid 1000 inside) and what the job writes is the caller's on disk, while the job
//! never holds the caller's host uid. `job` runs it and watches the time, the output and the exit.

pub mod job;
mod suid;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::cli::Sandbox;
use crate::error::{Context, Error, Result};

/// seccomp-profiles/build-sandbox.json, built in.
const BUILD_PROFILE: &str = include_str!("../../seccomp-profiles/build-sandbox.json");
/// The job's uid and gid inside, and where the hardened spec maps container root on the host.
const JOB_ID: u64 = 1000;
const HOST_BASE: u64 = 100_000;

/// The options, checked: every error names the option.
pub struct Plan {
    /// The container's id under the state root.
    pub id: String,
    pub config: Value,
    pub timeout: Option<std::time::Duration>,
    pub output_limit: Option<u64>,
    pub report: Option<PathBuf>,
    /// Record the syscalls and write the allow-list profile here (`profile`, `--record`).
    pub record: Option<PathBuf>,
    /// The caller's stdin goes to the job (`--stdin`); else /dev/null.
    pub stdin: bool,
}

pub fn plan(s: &Sandbox) -> Result<Plan> {
    let rootfs = dir_option("--rootfs", &s.rootfs)?;
    let (ws, ws_rw) = match s.workspace.rsplit_once(':') {
        Some((p, "rw")) => (p, true),
        Some((p, "ro")) => (p, false),
        _ => (s.workspace.as_str(), true),
    };
    let workspace = dir_option("--workspace", Path::new(ws))?;
    if workspace.starts_with(&rootfs) {
        return Err(Error::new(format!("--workspace {workspace:?} is inside --rootfs {rootfs:?}: the job's root would not be read-only")));
    }
    let timeout = match s.timeout {
        Some(0) => return Err(Error::new("--timeout 0: give a number of seconds above 0")),
        t => t.map(std::time::Duration::from_secs),
    };
    let mut config = crate::commands::spec::hardened_config()?;
    config["root"]["path"] = json!(rootfs);
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(s.command);
    config["process"]["cwd"] = json!("/workspace");
    config["hostname"] = json!("sandbox");
    let mut rlimits = vec![json!({"type": "RLIMIT_CORE", "hard": 0, "soft": 0}), json!({"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024})];
    let output_limit = s.output_limit.as_deref().map(|v| size_option("--output-limit", v)).transpose()?;
    if let Some(limit) = output_limit {
        // No single file may outgrow what the job may print either.
        rlimits.push(json!({"type": "RLIMIT_FSIZE", "hard": limit, "soft": limit}));
    }
    config["process"]["rlimits"] = json!(rlimits);
    config["linux"]["seccomp"] = match s.profile.as_str() {
        "build" => serde_json::from_str(BUILD_PROFILE).map_err(|e| Error::new(format!("built-in build profile: {e}")))?,
        "default" => config["linux"]["seccomp"].take(),
        file => {
            let bytes = std::fs::read(file).with_context(|| format!("--profile {file:?}"))?;
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| Error::new(format!("--profile {file:?}: {e}")))?;
            serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(v.clone())
                .map_err(|e| Error::new(format!("--profile {file:?}: not an OCI linux.seccomp object: {e}")))?;
            v
        }
    };
    suid::deny_set_id_modes(&mut config["linux"]["seccomp"])?;
    let r = &mut config["linux"]["resources"];
    r["memory"] = json!({"limit": s.memory.as_deref().map(|v| size_option("--memory", v)).transpose()?.unwrap_or(2 << 30)});
    r["pids"] = json!({"limit": s.pids});
    r["cpu"] = match s.cpus.as_deref() {
        Some(c) => {
            let n: f64 =
                c.parse().ok().filter(|n: &f64| *n > 0.0 && *n <= 1024.0).ok_or_else(|| Error::new(format!("--cpus {c:?}: a number of CPUs above 0")))?;
            json!({"quota": (n * 100_000.0) as i64, "period": 100_000})
        }
        None => json!({"shares": 512}),
    };
    let mounts = config["mounts"].as_array_mut().ok_or_else(|| Error::new("hardened spec: mounts"))?;
    // The hardened spec's /tmp, capped.
    mounts.retain(|m| m["destination"] != "/tmp");
    mounts
        .push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777", format!("size={}", s.tmp_size)]}));
    let caller = (nix::unistd::getuid().as_raw() as u64, nix::unistd::getgid().as_raw() as u64);
    let job = |host: u64| json!([{"containerID": host, "hostID": HOST_BASE + JOB_ID, "size": 1}]);
    mounts.push(json!({
        "destination": "/workspace", "type": "bind", "source": workspace,
        "options": ["rbind", "nosuid", "nodev", if ws_rw { "rw" } else { "ro" }],
        "uidMappings": job(caller.0), "gidMappings": job(caller.1),
    }));
    for b in &s.ro_bind {
        let (src, dst) = b.split_once(':').ok_or_else(|| Error::new(format!("--ro-bind {b:?}: expected SRC:DST")))?;
        let src = std::fs::canonicalize(src).with_context(|| format!("--ro-bind {b:?}"))?;
        if !dst.starts_with('/') {
            return Err(Error::new(format!("--ro-bind {b:?}: DST must be absolute")));
        }
        mounts.push(json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "ro", "nosuid", "nodev"]}));
    }
    // Mount points the rootfs lacks are made here, by the caller: inside, the container's root is
    // an unprivileged host id that may not write the rootfs.
    let dests: Vec<String> = mounts.iter().filter_map(|m| m["destination"].as_str().map(str::to_string)).collect();
    for d in dests.iter().filter(|d| d.as_str() == "/workspace" || s.ro_bind.iter().any(|b| b.ends_with(&format!(":{d}")))) {
        let at = rootfs.join(d.trim_start_matches('/'));
        if !at.exists() {
            std::fs::create_dir_all(&at).with_context(|| format!("--rootfs {rootfs:?}: make the mount point {d}"))?;
        }
    }
    match s.net.as_str() {
        // The hardened spec's own network namespace has only lo, and lo is up: a job may talk to
        // itself (test servers), never to the host or beyond.
        "none" | "host-loopback-only" => {}
        other => return Err(Error::new(format!("--net {other:?}: expected none or host-loopback-only"))),
    }
    if let Some(mode) = &s.landlock {
        let rw = if ws_rw { "/workspace:/tmp" } else { "/tmp" };
        config["annotations"][crate::security::landlock::ANNOTATION] = json!(mode);
        config["annotations"][crate::security::landlock::RW_ANNOTATION] = json!(rw);
    }
    Ok(Plan {
        id: format!("sandbox-{}", std::process::id()),
        config,
        timeout,
        output_limit,
        report: s.report.clone(),
        record: s.record.clone(),
        stdin: s.stdin,
    })
}

fn dir_option(name: &str, p: &Path) -> Result<PathBuf> {
    let real = std::fs::canonicalize(p).with_context(|| format!("{name} {p:?}"))?;
    if !real.is_dir() {
        return Err(Error::new(format!("{name} {p:?}: not a directory")));
    }
    Ok(real)
}

/// "64M", "2G", "512k", "1048576": bytes.
pub fn size_option(name: &str, v: &str) -> Result<u64> {
    let bad = || Error::new(format!("{name} {v:?}: expected a size such as 512M or 2G"));
    let (num, mult) = match v.char_indices().last() {
        Some((i, 'k' | 'K')) => (&v[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&v[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&v[..i], 1 << 30),
        _ => (v, 1),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    n.checked_mul(mult).filter(|&b| b > 0).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size_option("--memory", "2G").expect("2G"), 2 << 30);
        assert_eq!(size_option("--memory", "64M").expect("64M"), 64 << 20);
        assert_eq!(size_option("--memory", "4096").expect("bytes"), 4096);
        for bad in ["", "G", "-1M", "1.5G", "0", "99999999999999999999G"] {
            assert!(size_option("--memory", bad).is_err(), "{bad:?}");
        }
    }
}
