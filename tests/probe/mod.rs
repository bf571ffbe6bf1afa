//! The probe (probe.c): one kernel request from inside the container, its errno printed. Built
//! once per test binary with the host's `gcc -static` and bind-mounted read-only at /dev/probe
//! (on the container's /dev tmpfs, so the shared rootfs is never touched).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common::Bundle;

pub const PATH: &str = "/dev/probe";

/// Compile `src` (a C file under tests/probe) statically; None (and a SKIP line) without gcc.
pub fn build(src: &str) -> Option<PathBuf> {
    let dir = std::env::temp_dir().join(format!("testudo-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("probe dir");
    let out = dir.join(src.trim_end_matches(".c"));
    if out.exists() {
        return Some(out);
    }
    let c = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probe").join(src);
    let tmp = dir.join(format!(".{}.tmp", src));
    match Command::new("gcc").args(["-static", "-O2", "-o"]).arg(&tmp).arg(&c).status() {
        Ok(s) if s.success() => {
            std::fs::rename(&tmp, &out).expect("rename probe");
            Some(out)
        }
        _ => {
            crate::common::skip(&format!("gcc -static could not build {src}"));
            None
        }
    }
}

pub fn binary() -> Option<&'static Path> {
    static P: OnceLock<Option<PathBuf>> = OnceLock::new();
    P.get_or_init(|| build("probe.c")).as_deref()
}

/// Bind `host` read-only at `dest` in the container.
pub fn bind(b: &mut Bundle, host: &Path, dest: &str) {
    b.config["mounts"].as_array_mut().expect("mounts").push(serde_json::json!({
        "destination": dest, "type": "bind", "source": host, "options": ["bind", "ro"]
    }));
}

/// Add the probe at /dev/probe; false if it cannot be built here.
pub fn add(b: &mut Bundle) -> bool {
    match binary() {
        Some(p) => {
            bind(b, p, PATH);
            true
        }
        None => false,
    }
}

/// The errno of a probe's "ERR n" line, or 0 for "OK".
pub fn errno_of(line: &str) -> i32 {
    match line.trim().split_once(' ') {
        Some(("OK", _)) => 0,
        Some(("ERR", n)) => n.trim().parse().expect("errno"),
        _ => panic!("not a probe line: {line:?}"),
    }
}
