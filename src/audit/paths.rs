//! Host paths a bind mount exposes: sensitive directories (5.5) and the container engine's socket
//! (5.31). A source is compared in every form it may take: normalised lexically (`/./etc`,
//! `//proc/sys`, `/var/..`), and resolved on the host where it exists (a symlink to `/etc`, a
//! `/var/run` that is `/run`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::rules::{finding, has_option, is_bind, mounts};
use super::{Finding, Severity};

/// `.`, `..` and repeated slashes removed without touching the file system (`spec::lexical_clean`).
fn lexical(p: &str) -> Option<PathBuf> {
    let path = Path::new(p);
    path.is_absolute().then(|| crate::spec::lexical_clean(path))
}

/// The lexical form and, where the path exists here, the resolved one.
fn forms(source: &str) -> Vec<PathBuf> {
    let Some(l) = lexical(source) else { return Vec::new() };
    let mut out = vec![l.clone()];
    if let Ok(real) = std::fs::canonicalize(&l) {
        if real != l {
            out.push(real);
        }
    }
    out
}

fn binds(v: &Value) -> impl Iterator<Item = (&str, &Value)> {
    mounts(v).filter(|m| is_bind(m)).filter_map(|m| m["source"].as_str().map(|s| (s, m)))
}

fn at(source: &str, m: &Value) -> String {
    format!("{source} at {}{}", m["destination"].as_str().unwrap_or("?"), if has_option(m, "ro") { " (ro)" } else { "" })
}

const SENSITIVE: [&str; 8] = ["/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr"];

pub fn sensitive_mounts(v: &Value) -> Finding {
    let hits: Vec<String> = binds(v)
        .filter(|(s, _)| forms(s).iter().any(|f| SENSITIVE.iter().any(|d| f == Path::new(d) || (*d != "/" && f.starts_with(d)))))
        .map(|(s, m)| at(s, m))
        .collect();
    let fix = "do not bind-mount the host's /, /boot, /dev, /etc, /lib, /proc, /sys or /usr";
    finding("5.5", "no sensitive host directory mounted", Severity::High, hits.is_empty(), if hits.is_empty() { "none".into() } else { hits.join(", ") }, fix)
}

const SOCKET_NAMES: [&str; 4] = ["docker.sock", "containerd.sock", "podman.sock", "crio.sock"];

/// Where the engines put their sockets.
const SOCKETS: [&str; 8] = [
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/run/docker/containerd/containerd.sock",
    "/run/podman/podman.sock",
    "/run/crio/crio.sock",
    "/var/run/crio/crio.sock",
];

/// The form is a socket, a directory on the way to one, or a directory holding one.
fn reaches_socket(f: &Path) -> bool {
    let named = f.file_name().and_then(|n| n.to_str()).is_some_and(|n| SOCKET_NAMES.contains(&n));
    let above = SOCKETS.iter().any(|s| Path::new(s).starts_with(f));
    let holds = std::fs::read_dir(f).is_ok_and(|d| d.flatten().any(|e| e.file_name().to_str().is_some_and(|n| SOCKET_NAMES.contains(&n))));
    named || above || holds
}

pub fn runtime_socket(v: &Value) -> Finding {
    let socks: Vec<String> = binds(v).filter(|(s, _)| forms(s).iter().any(|f| reaches_socket(f))).map(|(s, m)| at(s, m)).collect();
    let fix = "never mount a container engine's socket, or a directory holding one, into a container";
    finding(
        "5.31",
        "no container engine socket mounted",
        Severity::High,
        socks.is_empty(),
        if socks.is_empty() { "none".into() } else { socks.join(", ") },
        fix,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_bind(src: &str) -> Value {
        let mut v = crate::commands::spec::hardened_config().expect("hardened");
        v["mounts"].as_array_mut().expect("mounts").push(serde_json::json!({"destination": "/mnt", "type": "bind", "source": src, "options": ["rbind", "ro"]}));
        v
    }

    #[test]
    fn sensitive_paths_are_normalised_and_resolved() {
        for src in ["/./etc", "//proc/sys", "/var/..", "/etc/", "/usr/../etc/passwd"] {
            assert!(!sensitive_mounts(&with_bind(src)).passed, "{src}");
        }
        let dir = std::env::temp_dir().join(format!("testudo-audit-paths-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let link = dir.join("etc-link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/etc", &link).expect("symlink");
        assert!(!sensitive_mounts(&with_bind(link.to_str().expect("utf8"))).passed, "a symlink to /etc");
        assert!(sensitive_mounts(&with_bind(dir.to_str().expect("utf8"))).passed);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_sockets_directory_or_a_link_to_the_socket_is_the_socket() {
        for src in ["/run", "/var/run", "/run/containerd", "/var/run/docker.sock", "//run/./docker.sock"] {
            assert!(!runtime_socket(&with_bind(src)).passed, "{src}");
        }
        let dir = std::env::temp_dir().join(format!("testudo-audit-sock-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("holder")).expect("dir");
        std::fs::write(dir.join("holder/docker.sock"), "").expect("sock");
        let link = dir.join("innocent");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(dir.join("holder/docker.sock"), &link).expect("symlink");
        assert!(!runtime_socket(&with_bind(dir.join("holder").to_str().expect("utf8"))).passed, "a directory holding docker.sock");
        assert!(!runtime_socket(&with_bind(link.to_str().expect("utf8"))).passed, "a symlink to docker.sock");
        assert!(runtime_socket(&with_bind("/srv/data")).passed);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
