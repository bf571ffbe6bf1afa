//! One regression test per historic runtime escape (issue 4): each reproduces the attack against
//! testudo from inside the container and shows that it fails, and names its CVE.

mod common;
mod probe;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{require_root, Bundle};

/// A private copy of the testudo binary, so that a successful overwrite breaks nothing else.
fn own_testudo(b: &Bundle) -> PathBuf {
    let dst = b.dir.join("testudo-copy");
    std::fs::copy(common::BIN, &dst).expect("copy testudo");
    dst
}

/// `BIN --root R ARGS…` in the bundle dir, stdio to /dev/null unless the caller changes it.
fn testudo(bin: &Path, b: &Bundle, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.arg("--root").arg(&b.root).args(args).current_dir(&b.dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The attacker's report: it must have caught the runtime binary, and its write must have failed.
fn assert_overwrite_refused(out: &str, bin: &Path, before: &[u8]) {
    assert!(out.contains("CAUGHT"), "the attack never got hold of the runtime binary, so it tested nothing: {out}");
    let last = out.lines().last().unwrap_or("");
    assert!(last.starts_with("ERR"), "the container reopened the runtime binary for writing: {out}");
    assert!(std::fs::read(bin).expect("read testudo copy") == before, "the host's testudo binary was changed");
}

/// CVE-2019-5736, exec variant: `exec` of /proc/self/exe makes the kernel run the runtime's own
/// binary inside the container; a process of the container holds it through /proc/PID/exe and,
/// once it has exited, reopens it for writing to replace the host's runtime.
#[test]
fn cve_2019_5736_exec_of_proc_self_exe_cannot_overwrite_the_runtime() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("sleep 60");
    if !probe::add(&mut b) {
        return;
    }
    b.write();
    let bin = own_testudo(&b);
    let before = std::fs::read(&bin).expect("read");
    let bundle = b.dir.to_str().expect("utf8").to_string();
    assert!(testudo(&bin, &b, &["run", "-d", "--bundle", &bundle, &b.id]).status().expect("run").success());
    let fifo = "/dev/shm/cve-2019-5736";
    // The attacker is started by the real binary: a `testudo exec` waiting on it runs that one,
    // and a binary being run cannot be written (ETXTBSY) whatever the runtime does.
    let attacker = testudo(Path::new(common::BIN), &b, &["exec", &b.id, probe::PATH, "catch-exe", fifo]).stdout(Stdio::piped()).spawn().expect("attacker");
    wait_for("the attacker's fifo", || testudo(Path::new(common::BIN), &b, &["exec", &b.id, "test", "-p", fifo]).status().is_ok_and(|s| s.success()));
    // The victim blocks opening its --log (the fifo) until the attacker holds its executable.
    let _ = testudo(&bin, &b, &["exec", &b.id, "/proc/self/exe", "--log", fifo]).status().expect("victim");
    let out = attacker.wait_with_output().expect("attacker");
    assert_overwrite_refused(&String::from_utf8_lossy(&out.stdout), &bin, &before);
}

/// CVE-2019-5736, entrypoint variant: the container's own process is /proc/self/exe (as a
/// `#!/proc/self/exe` script would make it), so init execs the runtime binary. The container
/// shares the host's pid namespace here, so the attacker outlives that process.
#[test]
fn cve_2019_5736_entrypoint_of_proc_self_exe_cannot_overwrite_the_runtime() {
    if !require_root() {
        return;
    }
    let fifo = "/dev/shm/cve-2019-5736-entrypoint";
    let mut b = Bundle::new("");
    if !probe::add(&mut b) {
        return;
    }
    b.config["process"]["args"] = serde_json::json!(["/proc/self/exe", "--log", fifo]);
    let ns = b.config["linux"]["namespaces"].as_array_mut().expect("namespaces");
    ns.retain(|n| n["type"] != "pid");
    b.write();
    let bin = own_testudo(&b);
    let before = std::fs::read(&bin).expect("read");
    let bundle = b.dir.to_str().expect("utf8").to_string();
    assert!(testudo(&bin, &b, &["create", "--bundle", &bundle, &b.id]).status().expect("create").success());
    // The attacker is started by the real binary: a `testudo exec` waiting on it runs that one,
    // and a binary being run cannot be written (ETXTBSY) whatever the runtime does.
    let attacker = testudo(Path::new(common::BIN), &b, &["exec", &b.id, probe::PATH, "catch-exe", fifo]).stdout(Stdio::piped()).spawn().expect("attacker");
    wait_for("the attacker's fifo", || testudo(Path::new(common::BIN), &b, &["exec", &b.id, "test", "-p", fifo]).status().is_ok_and(|s| s.success()));
    assert!(testudo(&bin, &b, &["start", &b.id]).status().expect("start").success());
    let out = attacker.wait_with_output().expect("attacker");
    assert_overwrite_refused(&String::from_utf8_lossy(&out.stdout), &bin, &before);
}
