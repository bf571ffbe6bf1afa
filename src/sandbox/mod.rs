//! `testudo sandbox`: an untrusted build job in one command, no bundle to write. The spec is the
//! hardened one (`spec --hardened`: every namespace, a user namespace whose root is host uid
//! 100000, the job as uid 1000 in it, no capabilities, no_new_privileges, read-only root, masked
//! paths) with the build profile, the limits asked for, RLIMIT_CORE 0 and RLIMIT_FSIZE, a
//! size-capped /tmp and the workspace. The workspace is an idmapped bind: the caller's files are
//! the job's (uid 1000 inside) and what the job writes is the caller's on disk, while the job
//! never holds the caller's host uid. `job` runs it and watches the time, the output and the exit.

mod cgroup;
mod env;
mod groups;
pub mod job;
pub mod outfile;
mod paths;
pub mod report;
mod stdio;
mod suid;
mod sweep;
mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::Sandbox;
use crate::commands::Global;
use crate::error::{Error, Result};
use crate::spawn::prepare::Lifecycle;
pub use cgroup::Place;
use outfile::OutFile;
use paths::{destination, host_path};

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
    pub timeout: Option<Duration>,
    /// With a timeout: SIGTERM at the timeout, the cgroup killed this much later.
    pub kill_after: Option<Duration>,
    pub output_limit: Option<u64>,
    /// Record the syscalls and write the allow-list profile here (`profile`, `--record`), in a
    /// directory opened before the job runs (`outfile`).
    pub record: Option<OutFile>,
    /// A sandbox's config (not a bundle's, for `profile`): its binds opened by P0 without
    /// following symlinks, its root a private layer (`linux::layer`).
    pub sandbox: bool,
    /// The caller's stdin goes to the job (`--stdin`); else /dev/null, or the pty.
    pub stdin: bool,
    /// `--tty`: the job's output is a pty of its own, relayed from the master.
    pub tty: bool,
    pub lifecycle: Lifecycle,
    /// Where the job's cgroup comes from (`cgroup`); `Place::Default` for `profile`.
    pub place: cgroup::Place,
    /// `--no-limits`: said in the report.
    pub no_limits: bool,
    /// `--net host`: said on stderr and in the report.
    pub net_host: bool,
    /// The report's `confinement` (null for `profile`).
    pub confinement: Value,
    /// A user's job that keeps the caller's supplementary groups: said on stderr.
    pub groups_kept: Option<groups::Kept>,
}

/// `sandbox`. A failure of testudo's own (a bad option, a setup step, the cleanup) still writes
/// the report, reason "setup-failed", and `main` exits `report::SETUP_FAILED` for it. The report's
/// directory is opened first, before anything of the job runs (`outfile`).
pub fn run(g: &Global, s: &Sandbox) -> Result<i32> {
    let report = s.report.as_deref().map(|p| OutFile::open("--report", p)).transpose()?;
    // What killed sandboxes left; one that cannot be removed is no reason to refuse this job.
    if let Err(e) = sweep::sweep(&g.root) {
        eprintln!("testudo: sandbox: note: {e}");
    }
    // The v1 hierarchies of a hybrid host the job's limits need (`cgroups::v1::only`).
    crate::cgroups::v1::only(&["cpu", "memory", "pids"]);
    let r = plan(s, g.rootless).and_then(|p| {
        // CVE-2019-5736 needs write access to the binary, which the job's ids may not have.
        let (uids, gids) = (mapped(&p.config["linux"]["uidMappings"]), mapped(&p.config["linux"]["gidMappings"]));
        if !crate::linux::exe::out_of_reach(&uids, &gids) {
            crate::linux::exe::seal()?;
        }
        job::run(g, p, report.as_ref())
    });
    if let (Err(e), Some(out)) = (&r, &report) {
        let failed = json!({"exit": report::SETUP_FAILED, "reason": "setup-failed", "error": e.to_string()});
        report::write(out, &failed).map_err(|re| Error::new(format!("{e} (and the report: {re})")))?;
    }
    r
}

pub fn plan(s: &Sandbox, rootless: bool) -> Result<Plan> {
    // Paths a job may have written are opened without following symlinks (`linux::nofollow`);
    // P0 opens them again the same way when it makes the mounts.
    let (rootfs, _) = host_path("--rootfs", &s.rootfs, true)?;
    let (ws, ws_rw) = match s.workspace.rsplit_once(':') {
        Some((p, "rw")) => (p, true),
        Some((p, "ro")) => (p, false),
        _ => (s.workspace.as_str(), true),
    };
    if let Some(d) = &s.disk {
        // A bound that is not enforced must not look enforced (issue 22 item 25): the only sound
        // bound on a directory the caller owns is a project quota, which this build does not set.
        size_option("--disk", d)?;
        return Err(Error::new(format!(
            "--disk {d:?}: not supported: a workspace quota needs project quotas on the workspace's filesystem \
             (ext4 with the quota and project features, or xfs with pquota), which testudo does not set up; \
             give the job a workspace on a filesystem of the size wanted instead"
        )));
    }
    let (workspace, ws_fd) = host_path("--workspace", Path::new(ws), true)?;
    if workspace.starts_with(&rootfs) {
        return Err(Error::new(format!("--workspace {workspace:?} is inside --rootfs {rootfs:?}: the job's root would not be read-only")));
    }
    if rootfs.starts_with(&workspace) {
        return Err(Error::new(format!("--rootfs {rootfs:?} is inside --workspace {workspace:?}: the job could change its own root for the next run")));
    }
    let timeout = s.timeout.as_deref().map(|t| duration_option("--timeout", t)).transpose()?;
    let kill_after = s.kill_after.as_deref().map(|t| duration_option("--kill-after", t)).transpose()?;
    if kill_after.is_some() && timeout.is_none() {
        return Err(Error::new("--kill-after: needs a --timeout"));
    }
    if let Some(n) = s.pids.filter(|n| *n <= 0) {
        return Err(Error::new(format!("--pids {n}: give a number of processes above 0")));
    }
    let place = cgroup::choose(s, rootless)?;
    let id = unique_id()?;
    let record = s.record.as_deref().map(|p| OutFile::open("--record", p)).transpose()?;
    let mut config = crate::commands::spec::hardened_base();
    config["root"]["path"] = json!(rootfs);
    // The pty is made by the job's init in the job's own devpts (`linux::tty`), never the caller's.
    config["process"]["terminal"] = json!(s.tty);
    config["process"]["args"] = json!(s.command);
    let cwd = match &s.chdir {
        Some(d) => destination("--chdir", d, Path::new(d))?,
        None => PathBuf::from("/workspace"),
    };
    config["process"]["cwd"] = json!(cwd);
    config["hostname"] = json!(hostname(s.hostname.as_deref())?);
    let env = config["process"]["env"].as_array_mut().ok_or_else(|| Error::new("hardened spec: process.env"))?;
    env::apply(env, &s.env_file, &s.setenv)?;
    let mut rlimits = vec![json!({"type": "RLIMIT_CORE", "hard": 0, "soft": 0}), json!({"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024})];
    let output_limit = s.output_limit.as_deref().map(|v| size_option("--output-limit", v)).transpose()?;
    if let Some(limit) = output_limit {
        // No single file may outgrow what the job may print either.
        rlimits.push(json!({"type": "RLIMIT_FSIZE", "hard": limit, "soft": limit}));
    }
    config["process"]["rlimits"] = json!(rlimits);
    config["linux"]["seccomp"] = match s.profile.as_str() {
        "build" => serde_json::from_str(BUILD_PROFILE).map_err(|e| Error::new(format!("built-in build profile: {e}")))?,
        "default" => crate::commands::spec::default_seccomp()?,
        file => {
            let bytes = std::fs::read(file).map_err(|e| Error::new(format!("--profile {file:?}: {e}")))?;
            let v: Value = serde_json::from_slice(&bytes).map_err(|e| Error::new(format!("--profile {file:?}: {e}")))?;
            serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(v.clone())
                .map_err(|e| Error::new(format!("--profile {file:?}: not an OCI linux.seccomp object: {e}")))?;
            v
        }
    };
    suid::deny_set_id_modes(&mut config["linux"]["seccomp"])?;
    let r = config["linux"]["resources"].as_object_mut().ok_or_else(|| Error::new("hardened spec: linux.resources"))?;
    if s.no_limits {
        for k in ["memory", "pids", "cpu"] {
            r.remove(k);
        }
    } else {
        r.insert("memory".into(), json!({"limit": s.memory.as_deref().map(|v| size_option("--memory", v)).transpose()?.unwrap_or(2 << 30)}));
        r.insert("pids".into(), json!({"limit": s.pids.unwrap_or(512)}));
        r.insert(
            "cpu".into(),
            match s.cpus.as_deref() {
                Some(c) => {
                    let n: f64 = c
                        .parse()
                        .ok()
                        .filter(|n: &f64| *n > 0.0 && *n <= 1024.0)
                        .ok_or_else(|| Error::new(format!("--cpus {c:?}: a number of CPUs above 0")))?;
                    json!({"quota": (n * 100_000.0) as i64, "period": 100_000})
                }
                None => json!({"shares": 512}),
            },
        );
    }
    if let cgroup::Place::Below(rel) = &place {
        config["linux"]["cgroupsPath"] = json!(Path::new("/").join(rel).join(&id));
    }
    let groups_kept = if rootless { user_namespace(&mut config)? } else { None };
    let mounts = config["mounts"].as_array_mut().ok_or_else(|| Error::new("hardened spec: mounts"))?;
    // The hardened spec's /tmp, capped.
    mounts.retain(|m| m["destination"] != "/tmp");
    mounts
        .push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777", format!("size={}", s.tmp_size)]}));
    // The workspace's owner is the job's uid inside (podman's keep-id): the caller's own
    // directory, or one the caller (root) runs a job in for another user, is written as its owner.
    let owner = |fd: &std::os::fd::OwnedFd| nix::sys::stat::fstat(fd).map(|st| (st.st_uid as u64, st.st_gid as u64));
    let ws_owner = owner(&ws_fd).map_err(|e| Error::sys(format!("--workspace {workspace:?}"), e))?;
    let job = |host: u64| json!([{"containerID": host, "hostID": HOST_BASE + JOB_ID, "size": 1}]);
    let mut ws_mount = json!({
        "destination": "/workspace", "type": "bind", "source": workspace,
        "options": ["rbind", "nosuid", "nodev", if ws_rw { "rw" } else { "ro" }],
    });
    if !rootless {
        ws_mount["uidMappings"] = job(ws_owner.0);
        ws_mount["gidMappings"] = job(ws_owner.1);
    }
    mounts.push(ws_mount);
    let mut writable = vec![PathBuf::from("/tmp"), PathBuf::from("/dev/shm")];
    if ws_rw {
        writable.insert(0, PathBuf::from("/workspace"));
    }
    for (opt, list, rw) in [("--ro-bind", &s.ro_bind, false), ("--bind", &s.bind, true)] {
        for b in list {
            let (src, dst) = b.split_once(':').ok_or_else(|| Error::new(format!("{opt} {b:?}: expected SRC:DST")))?;
            let dst = destination(opt, b, Path::new(dst))?;
            let (src, fd) = host_path(opt, Path::new(src), false).map_err(|e| Error::new(format!("{opt} {b:?}: {e}")))?;
            let mut m = json!({"destination": dst, "type": "bind", "source": src, "options": ["rbind", if rw { "rw" } else { "ro" }, "nosuid", "nodev"]});
            if rw && !rootless {
                let o = owner(&fd).map_err(|e| Error::sys(format!("{opt} {b:?}"), e))?;
                m["uidMappings"] = job(o.0);
                m["gidMappings"] = job(o.1);
            }
            if rw {
                writable.push(dst.clone());
            }
            mounts.push(m);
        }
    }
    for t in &s.tmpfs {
        let (dst, size) = t.split_once(':').unwrap_or((t, "64m"));
        size_option("--tmpfs", size)?;
        let dst = destination("--tmpfs", t, Path::new(dst))?;
        mounts.push(json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777", format!("size={size}")]}));
        writable.push(dst);
    }
    let net_host = match s.net.as_str() {
        // The hardened spec's own network namespace has only lo, which init brings up
        // (`Lifecycle::loopback`): a job may talk to itself (test servers), never to the host or
        // beyond.
        "none" | "host-loopback-only" => false,
        "host" => {
            host_network(&mut config, rootless)?;
            true
        }
        other => return Err(Error::new(format!("--net {other:?}: expected none (the default), host-loopback-only (the same) or host"))),
    };
    if let Some(mode) = &s.landlock {
        // /dev/shm is the job's own tmpfs: sem_open (Python's multiprocessing) needs it.
        let rw: Vec<String> = writable.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        config["annotations"][crate::security::landlock::ANNOTATION] = json!(mode);
        config["annotations"][crate::security::landlock::RW_ANNOTATION] = json!(rw.join(":"));
    }
    let lifecycle = Lifecycle { reaper: !s.as_pid_1, die_with_parent: true, loopback: true, keep_stdin: s.tty && s.stdin };
    // What the report says of the job's confinement beside its limits.
    let confinement = json!({
        "net": if net_host { "host" } else { "none" },
        "profile": s.profile,
        "landlock": s.landlock,
        "groupsKept": groups_kept.as_ref().map_or(Vec::new(), |k| k.gids.clone()),
    });
    Ok(Plan {
        id,
        config,
        timeout,
        kill_after,
        output_limit,
        record,
        sandbox: true,
        stdin: s.stdin,
        tty: s.tty,
        lifecycle,
        place,
        no_limits: s.no_limits,
        net_host,
        confinement,
        groups_kept,
    })
}

/// `--net host` (bubblewrap's --share-net): the job stays in the host's network namespace, with
/// every interface, every port on the host's 127.0.0.1 and the host's abstract unix sockets
/// (which are per network namespace: a desktop's X11 or D-Bus, for instance). Said on stderr and
/// in the report. A user namespace may mount sysfs only when it owns the network namespace
/// (`kobj_ns_current_may_mount`), so /sys becomes the host's, bound read-only: root's bind takes
/// only the sysfs itself, not what is mounted below it (debugfs, tracefs, the host's cgroups, bpf);
/// a user's must take those (rbind: a bind that would uncover what the mounts lock is refused).
fn host_network(config: &mut Value, rootless: bool) -> Result<()> {
    let ns = config["linux"]["namespaces"].as_array_mut().ok_or_else(|| Error::new("hardened spec: linux.namespaces"))?;
    ns.retain(|n| n["type"] != "network");
    let bind = if rootless { "rbind" } else { "bind" };
    for m in config["mounts"].as_array_mut().ok_or_else(|| Error::new("hardened spec: mounts"))? {
        if m["destination"] == "/sys" {
            *m = json!({"destination": "/sys", "type": "bind", "source": "/sys", "options": [bind, "nosuid", "noexec", "nodev", "ro"]});
        }
    }
    Ok(())
}

/// A user's sandbox (rootless): the one id map the kernel lets a user write itself, the job's uid
/// and gid 1000 to the caller's own (podman's keep-id without the subordinate range). The job is
/// the caller on disk, with no capability: it never holds one, nothing in its user namespace is
/// uid 0, and the caller's files are written as the caller's without an idmapped mount (which a
/// user cannot make). Options naming ids the namespace does not have (devpts `gid=5`) go. The
/// caller's supplementary groups are dropped where a subordinate gid allows it (`groups`);
/// returns those kept.
fn user_namespace(config: &mut Value) -> Result<Option<groups::Kept>> {
    let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
    config["linux"]["uidMappings"] = json!([{"containerID": JOB_ID, "hostID": uid, "size": 1}]);
    let (gids, kept) = groups::gid_map(JOB_ID, gid);
    config["linux"]["gidMappings"] = gids;
    for m in config["mounts"].as_array_mut().ok_or_else(|| Error::new("hardened spec: mounts"))? {
        if let Some(opts) = m["options"].as_array_mut() {
            opts.retain(|o| o.as_str().is_none_or(|o| !o.starts_with("uid=") && !o.starts_with("gid=")));
        }
    }
    Ok(kept)
}

/// The host ids an id map gives the job's processes.
fn mapped(maps: &Value) -> Vec<std::ops::Range<u64>> {
    let n = |m: &Value, k: &str| m[k].as_u64().unwrap_or(0);
    maps.as_array().into_iter().flatten().map(|m| n(m, "hostID")..n(m, "hostID") + n(m, "size")).collect()
}

/// `sandbox-PID-RANDOM`: the pid alone repeats across pid namespaces (two CI runners in
/// containers of their own) and is known in advance; the pid stays so that one can tell whose
/// container it is.
fn unique_id() -> Result<String> {
    let mut r = [0u8; 8];
    // SAFETY: getrandom writes at most `r.len()` bytes into `r`.
    let n = unsafe { libc::getrandom(r.as_mut_ptr().cast(), r.len(), 0) };
    if n != r.len() as isize {
        return Err(crate::error::last_os("sandbox id: getrandom"));
    }
    Ok(format!("sandbox-{}-{:016x}", std::process::id(), u64::from_ne_bytes(r)))
}

/// "1.5" (seconds), "2s", "500ms", "1m", "1h": above zero.
pub fn duration_option(name: &str, v: &str) -> Result<Duration> {
    let bad = || Error::new(format!("{name} {v:?}: expected a duration above 0 such as 1.5, 2s, 500ms or 1m"));
    let (num, unit) = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)].iter().find_map(|(s, u)| v.strip_suffix(s).map(|n| (n, *u))).unwrap_or((v, 1.0));
    if !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(n * unit).ok().filter(|d| !d.is_zero()).ok_or_else(bad)
}

/// `--hostname`: a name as sethostname(2) takes it, letters, digits, '-' and '.'.
fn hostname(h: Option<&str>) -> Result<&str> {
    let h = h.unwrap_or("sandbox");
    if h.is_empty() || h.len() > 64 || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
        return Err(Error::new(format!("--hostname {h:?}: 1 to 64 letters, digits, '-' or '.'")));
    }
    Ok(h)
}

/// "64M", "2G", "512k", "1T", "2GiB", "512MiB", "1048576": bytes (the units are binary).
pub fn size_option(name: &str, v: &str) -> Result<u64> {
    let bad = || Error::new(format!("{name} {v:?}: expected a size such as 512M, 2G or 2GiB"));
    let unit = v.strip_suffix("iB").unwrap_or(v);
    let (num, mult) = match unit.char_indices().last() {
        Some((i, 'k' | 'K')) => (&unit[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&unit[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&unit[..i], 1 << 30),
        Some((i, 't' | 'T')) => (&unit[..i], 1 << 40),
        _ if unit.len() != v.len() => return Err(bad()),
        _ => (v, 1),
    };
    if !num.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
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
        assert_eq!(size_option("--memory", "1T").expect("1T"), 1 << 40);
        assert_eq!(size_option("--memory", "2GiB").expect("2GiB"), 2 << 30);
        assert_eq!(size_option("--memory", "512MiB").expect("512MiB"), 512 << 20);
        assert_eq!(size_option("--memory", "4KiB").expect("4KiB"), 4096);
        for bad in ["", "G", "-1M", "+1M", "1.5G", "0", "0G", "99999999999999999999G", "1iB", "2GB", "iB", "16777216T"] {
            assert!(size_option("--memory", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        let ms = |v: &str| duration_option("--timeout", v).expect(v).as_millis();
        assert_eq!((ms("1.5"), ms("2s"), ms("500ms"), ms("1m"), ms("1h"), ms("3")), (1500, 2000, 500, 60_000, 3_600_000, 3000));
        for bad in ["", "0", "0s", "-1", "1e3", "inf", "nan", "s", "1d", "1.5.5", "99999999999999999999999h"] {
            assert!(duration_option("--timeout", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_unique_and_carry_the_pid() {
        let (a, b) = (unique_id().expect("id"), unique_id().expect("id"));
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("sandbox-{}-", std::process::id())), "{a}");
        crate::container::id::validate(&a).expect("a valid container id");
    }
}
