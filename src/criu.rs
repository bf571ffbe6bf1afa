//! CRIU, driven through its command line (`criu pre-dump`, `dump`, `restore`) for `checkpoint`
//! and `restore`, where runc drives it through its RPC. This file turns a container's spec into
//! CRIU's arguments (pure, unit-tested), runs the binary, and when it fails quotes the errors of
//! its log, naming the log.
//!
//! What CRIU must not save, because it is not the container's:
//! - every bind mount of the spec is external: dumped under a key (its destination), restored
//!   from its source on the host; a masked file is a bind of /dev/null, external too;
//! - a network or pid namespace joined by path is external: restored into the one at that path;
//!   a uts or ipc namespace joined by path is joined again at restore;
//! - the network namespace is restored empty (`--empty-ns net`), as runc does: the runtime does
//!   not manage interfaces, the client's hooks or CNI do.
//!
//! What it cannot do is refused before CRIU runs: a user namespace, a terminal, a mount, user,
//! cgroup or time namespace joined by path.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use oci_spec::runtime::{LinuxNamespaceType as T, Spec};

use crate::cli::CriuFlags;
use crate::error::{Error, Result};

/// The image of the container's stdio, runc's file name: restore hands the restored process new
/// pipes in place of the ones it had (the caller's stdio).
pub const DESCRIPTORS: &str = "descriptors.json";

/// The CRIU binary when --criu does not name one: found in PATH, as runc does.
pub const DEFAULT: &str = "criu";

/// A CRIU command line under construction.
pub struct Argv(Vec<OsString>);

impl Argv {
    pub fn new(action: &str) -> Argv {
        Argv(vec![action.into()])
    }
    fn flag(&mut self, f: &str) {
        self.0.push(f.into());
    }
    fn opt(&mut self, f: &str, v: impl AsRef<OsStr>) {
        self.0.push(f.into());
        self.0.push(v.as_ref().to_owned());
    }
    pub fn args(&self) -> &[OsString] {
        &self.0
    }

    /// Images, work dir, log and the flags both directions share.
    pub fn common(&mut self, f: &CriuFlags, images: &Path, log: &str) {
        self.opt("--images-dir", images);
        if let Some(w) = &f.work_path {
            self.opt("--work-dir", w);
        }
        self.opt("--log-file", log);
        self.flag("-v4");
        for (on, name) in [
            (f.tcp_established, "--tcp-established"),
            (f.ext_unix_sk, "--ext-unix-sk"),
            (f.shell_job, "--shell-job"),
            (f.file_locks, "--file-locks"),
            (f.auto_dedup, "--auto-dedup"),
        ] {
            if on {
                self.flag(name);
            }
        }
        match &f.manage_cgroups_mode {
            Some(m) => self.flag(&format!("--manage-cgroups={m}")),
            None => self.flag("--manage-cgroups"),
        }
        self.opt("--empty-ns", "net");
    }

    /// `--external mnt[KEY]:VALUE` for each external mount.
    pub fn mounts(&mut self, mounts: &[(PathBuf, PathBuf)]) {
        for (key, value) in mounts {
            let mut e = OsString::from("mnt[");
            e.push(key);
            e.push("]:");
            e.push(value);
            self.opt("--external", e);
        }
    }

    pub fn external(&mut self, e: String) {
        self.opt("--external", e);
    }
    pub fn inherit_fd(&mut self, fd: i32, key: &str) {
        self.opt("--inherit-fd", format!("fd[{fd}]:{key}"));
    }
    pub fn push(&mut self, f: &str, v: Option<&OsStr>) {
        match v {
            Some(v) => self.opt(f, v),
            None => self.flag(f),
        }
    }
}

/// What CRIU cannot checkpoint or restore for this spec, refused with the reason.
pub fn supported(spec: &Spec) -> Result<()> {
    if spec.process().as_ref().and_then(|p| p.terminal()).unwrap_or(false) {
        return Err(Error::new(
            "a container with a terminal (process.terminal) cannot be checkpointed or restored by testudo: CRIU hands the pty master over its RPC only",
        ));
    }
    for ns in spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()).map(|v| &v[..]).unwrap_or(&[]) {
        let joined = ns.path().as_ref().is_some_and(|p| !p.as_os_str().is_empty());
        match ns.typ() {
            T::User => {
                return Err(Error::new(
                    "a container with a user namespace cannot be checkpointed or restored by testudo (as runc, CRIU needs root over every id)",
                ))
            }
            T::Mount | T::Cgroup | T::Time if joined => {
                return Err(Error::new(format!(
                    "a container that joins the {} namespace at {:?} cannot be checkpointed or restored",
                    kind(ns.typ()),
                    ns.path().as_deref().unwrap_or(Path::new(""))
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// CRIU's name of a namespace type.
fn kind(t: T) -> &'static str {
    match t {
        T::Network => "net",
        T::Pid => "pid",
        T::Uts => "uts",
        T::Ipc => "ipc",
        T::Mount => "mnt",
        T::User => "user",
        T::Cgroup => "cgroup",
        T::Time => "time",
    }
}

/// The key a namespace joined by path is dumped under and restored from (runc's).
pub fn ns_key(t: T) -> &'static str {
    match t {
        T::Pid => "extRootPidNS",
        _ => "extRootNetNS",
    }
}

/// The namespaces the spec joins by path: (type, path).
pub fn joined(spec: &Spec) -> Vec<(T, PathBuf)> {
    let nss = spec.linux().as_ref().and_then(|l| l.namespaces().clone()).unwrap_or_default();
    nss.into_iter().filter_map(|ns| ns.path().clone().filter(|p| !p.as_os_str().is_empty()).map(|p| (ns.typ(), p))).collect()
}

/// `--join-ns TYPE:PATH` for a uts or ipc namespace joined by path (CRIU joins it at restore).
pub fn join_ns(t: T, path: &Path) -> Option<OsString> {
    matches!(t, T::Uts | T::Ipc).then(|| {
        let mut s = OsString::from(format!("{}:", kind(t)));
        s.push(path);
        s
    })
}

/// The external mounts at dump (`key`, `key`) or restore (`key`, host source): the spec's bind
/// mounts (sources already absolute), the masked files that are binds of /dev/null (at restore:
/// whether there are any), and the device nodes (bound from the host in a user namespace).
pub fn external_mounts(spec: &Spec, mounts: &[oci_spec::runtime::Mount], masked_files: &[PathBuf], restore: bool) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for m in mounts {
        let opts = m.options().as_deref().unwrap_or(&[]);
        let bind = m.typ().as_deref() == Some("bind") || opts.iter().any(|o| o == "bind" || o == "rbind");
        if let (true, Some(src)) = (bind, m.source()) {
            let dest = m.destination().clone();
            out.push((dest.clone(), if restore { src.clone() } else { dest }));
        }
    }
    if !restore {
        out.extend(masked_files.iter().map(|p| (p.clone(), PathBuf::from("/dev/null"))));
    } else if !masked_files.is_empty() {
        // Each was dumped under the key /dev/null: restored from the host's.
        out.push((PathBuf::from("/dev/null"), PathBuf::from("/dev/null")));
    }
    for d in spec.linux().as_ref().and_then(|l| l.devices().as_deref()).unwrap_or(&[]) {
        out.push((d.path().clone(), d.path().clone()));
    }
    out
}

/// The masked paths of the spec that are mounted in the container as something other than a
/// tmpfs (a masked directory is a tmpfs, which CRIU saves; a masked file is a bind of /dev/null),
/// from the init's mountinfo: reading its mount table, not following paths inside its root.
pub fn masked_files(spec: &Spec, mountinfo: &str) -> Vec<PathBuf> {
    let masked = spec.linux().as_ref().and_then(|l| l.masked_paths().clone()).unwrap_or_default();
    let mounted: Vec<(PathBuf, String)> = mountinfo.lines().filter_map(mount_and_type).collect();
    masked.into_iter().map(PathBuf::from).filter(|p| mounted.iter().any(|(m, t)| m == p && t != "tmpfs")).collect()
}

/// Mount point (field 5, octal escapes undone) and filesystem type (after " - ") of one line.
fn mount_and_type(line: &str) -> Option<(PathBuf, String)> {
    let (left, right) = line.split_once(" - ")?;
    let point = left.split(' ').nth(4)?;
    let fstype = right.split(' ').next()?;
    Some((PathBuf::from(unescape(point)), fstype.to_string()))
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b.get(i + 1..i + 4).filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(d) => {
                out.push(d.iter().fold(0u8, |a, c| a.wrapping_mul(8).wrapping_add(c - b'0')));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Run `criu ARGV…`, the caller's stdio inherited (restore hands it to the restored process).
/// A failure names the action, CRIU's exit status, the errors of its log and the log's path.
/// With `root_bind` (source, mount point), CRIU runs in a mount namespace of its own, a slave of
/// ours, where the source is bound on the mount point: the bind is CRIU's alone and goes with it.
pub fn run(criu: &Path, argv: &Argv, log: &Path, root_bind: Option<(&Path, &Path)>) -> Result<()> {
    let action = argv.args().first().and_then(|a| a.to_str()).unwrap_or("criu").to_string();
    let mut cmd = Command::new(criu);
    cmd.args(argv.args()).stdin(Stdio::null());
    if let Some((src, at)) = root_bind {
        let (src, at) = (cstring(src)?, cstring(at)?);
        let slash = c"/";
        // SAFETY: the closure runs in the forked child before exec, and makes only raw syscalls
        // (unshare, mount) on C strings prepared before the fork; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if libc::unshare(libc::CLONE_NEWNS) != 0
                    || libc::mount(std::ptr::null(), slash.as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_SLAVE, std::ptr::null()) != 0
                    || libc::mount(src.as_ptr(), at.as_ptr(), std::ptr::null(), libc::MS_BIND | libc::MS_REC, std::ptr::null()) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let status = match cmd.status() {
        Ok(s) => s,
        Err(e) if root_bind.is_some() => {
            return Err(Error::new(format!("criu {action}: run {criu:?} (CRIU 3.11 or newer; --criu PATH names it) with the rootfs bound as its root: {e}")));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::new(format!("criu {action}: {criu:?} not found: install CRIU (3.11 or newer) or name it with --criu PATH")));
        }
        Err(e) => return Err(Error::new(format!("criu {action}: run {criu:?}: {e}"))),
    };
    if status.success() {
        return Ok(());
    }
    Err(Error::new(format!("criu {action} failed ({status}): {} (log: {})", log_tail(log), log.display())))
}

fn cstring(p: &Path) -> Result<std::ffi::CString> {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| Error::new(format!("path {p:?} has a NUL byte")))
}

/// The lines of CRIU's log that say what went wrong: its last three errors (the cause, then how
/// CRIU gave up; an earlier one may be a probe it recovered from); without any, its last three
/// lines.
pub fn log_tail(log: &Path) -> String {
    let mut text = String::new();
    if std::fs::File::open(log).and_then(|mut f| f.read_to_string(&mut text)).is_err() {
        return "CRIU wrote no log".into();
    }
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut picked: Vec<&str> = lines.iter().rev().filter(|l| l.contains("Error")).take(3).copied().collect();
    if picked.is_empty() {
        picked = lines.iter().rev().take(3).copied().collect();
    }
    if picked.is_empty() {
        return "CRIU's log is empty".into();
    }
    picked.reverse();
    picked.join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> Spec {
        serde_json::from_value(json).expect("spec")
    }

    #[test]
    fn binds_masked_files_and_devices_are_external() {
        let s = spec(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind"]},
                {"destination": "/etc/hosts", "source": "/b/hosts", "options": ["bind", "ro"]}
            ],
            "linux": {"maskedPaths": ["/proc/kcore", "/proc/acpi", "/proc/nothere"], "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]}
        }));
        let mountinfo = "30 25 0:5 /null /proc/kcore rw,nosuid - devtmpfs udev rw\n31 25 0:40 / /proc/acpi ro - tmpfs tmpfs ro\n";
        let masked = masked_files(&s, mountinfo);
        assert_eq!(masked, [PathBuf::from("/proc/kcore")]);
        let mounts = s.mounts().clone().unwrap_or_default();
        let p = |a: &str, b: &str| (PathBuf::from(a), PathBuf::from(b));
        assert_eq!(
            external_mounts(&s, &mounts, &masked, false),
            [p("/data", "/data"), p("/etc/hosts", "/etc/hosts"), p("/proc/kcore", "/dev/null"), p("/dev/fuse", "/dev/fuse")]
        );
        assert_eq!(
            external_mounts(&s, &mounts, &masked, true),
            [p("/data", "/srv/data"), p("/etc/hosts", "/b/hosts"), p("/dev/null", "/dev/null"), p("/dev/fuse", "/dev/fuse")]
        );
        let mut a = Argv::new("dump");
        a.mounts(&[p("/data", "/data")]);
        assert_eq!(a.args(), ["dump", "--external", "mnt[/data]:/data"]);
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(mount_and_type("1 2 0:3 / /a\\040b rw - tmpfs x rw"), Some((PathBuf::from("/a b"), "tmpfs".into())));
    }

    #[test]
    fn flags_become_criu_options() {
        let f = CriuFlags {
            image_path: None,
            work_path: Some("/w".into()),
            tcp_established: true,
            ext_unix_sk: false,
            shell_job: true,
            file_locks: true,
            manage_cgroups_mode: Some("full".into()),
            empty_ns: vec![],
            auto_dedup: false,
            lazy_pages: false,
        };
        let mut a = Argv::new("restore");
        a.common(&f, Path::new("/i"), "restore.log");
        let got: Vec<&str> = a.args().iter().filter_map(|s| s.to_str()).collect();
        assert_eq!(
            got,
            [
                "restore",
                "--images-dir",
                "/i",
                "--work-dir",
                "/w",
                "--log-file",
                "restore.log",
                "-v4",
                "--tcp-established",
                "--shell-job",
                "--file-locks",
                "--manage-cgroups=full",
                "--empty-ns",
                "net"
            ]
        );
    }

    #[test]
    fn what_criu_cannot_do_is_refused() {
        let base = |ns: serde_json::Value, terminal: bool| {
            spec(
                serde_json::json!({"ociVersion": "1.0.2", "process": {"terminal": terminal, "cwd": "/", "args": ["sh"], "user": {"uid": 0, "gid": 0}}, "linux": {"namespaces": ns}}),
            )
        };
        assert!(supported(&base(serde_json::json!([{"type": "pid"}, {"type": "network", "path": "/run/netns/x"}]), false)).is_ok());
        let e = supported(&base(serde_json::json!([{"type": "user"}]), false)).expect_err("userns");
        assert!(e.to_string().contains("user namespace"), "{e}");
        let e = supported(&base(serde_json::json!([{"type": "mount", "path": "/proc/1/ns/mnt"}]), false)).expect_err("mnt path");
        assert!(e.to_string().contains("joins the mnt namespace"), "{e}");
        let e = supported(&base(serde_json::json!([]), true)).expect_err("terminal");
        assert!(e.to_string().contains("terminal"), "{e}");
    }

    #[test]
    fn the_log_tail_quotes_the_last_errors() {
        let d = std::env::temp_dir().join(format!("testudo-criu-log-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("dir");
        let log = d.join("dump.log");
        std::fs::write(&log, "(0.1) Error probe\n(0.2) b\n(0.3) Error (criu/libnetlink.c:54): -22\n(0.4) Error (criu/namespaces.c:1171): finished with error\n(0.5) d\n(0.6) Error (criu/cr-dump.c:2): Dumping FAILED.\n").expect("write");
        assert_eq!(log_tail(&log), "(0.3) Error (criu/libnetlink.c:54): -22 | (0.4) Error (criu/namespaces.c:1171): finished with error | (0.6) Error (criu/cr-dump.c:2): Dumping FAILED.");
        std::fs::write(&log, "x\ny\nz\nw\n").expect("write");
        assert_eq!(log_tail(&log), "y | z | w");
        assert_eq!(log_tail(&d.join("none")), "CRIU wrote no log");
        let _ = std::fs::remove_dir_all(d);
    }
}
