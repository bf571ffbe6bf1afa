//! `sandbox --disk` (issue 22 item 25): a workspace quota is refused, loudly and before the job
//! runs, until testudo can make it real. The only sound bound on a directory the caller owns is a
//! project quota; this project's kernel has none to give (CONFIG_QFMT_V2 and CONFIG_XFS_QUOTA
//! unset: ext4 says "not built with CONFIG_QUOTA and CONFIG_QFMT_V2", the root ext4 has no quota
//! enabled, tmpfs quotas are not built), so a `--disk` that only looked enforced would be a lie.

mod common;

use std::process::{Command, Stdio};

use common::{require_root, BIN};

#[test]
fn disk_is_refused_before_the_job_runs_and_says_why() {
    if !require_root() {
        return;
    }
    let dir = common::scratch_dir("sandbox-disk");
    let ws = dir.join("ws");
    std::fs::create_dir(&ws).expect("workspace");
    let out = Command::new(BIN)
        .arg("--root")
        .arg(dir.join("state"))
        .args(["sandbox", "--rootfs"])
        .arg(common::rootfs())
        .arg("--workspace")
        .arg(&ws)
        .args(["--disk", "64M", "--", "sh", "-c", "echo ran > ran.txt"])
        .stdin(Stdio::null())
        .output()
        .expect("run sandbox");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "--disk was accepted: {err}");
    // (stderr is the runtime's log line: the quotes in the message come escaped.)
    assert!(err.contains("--disk") && err.contains("64M") && err.contains("not supported") && err.contains("project quota"), "{err}");
    assert!(!ws.join("ran.txt").exists(), "the job ran although --disk was refused");
    // A bad size is named as such, not as unsupported.
    let bad = Command::new(BIN)
        .args(["sandbox", "--rootfs"])
        .arg(common::rootfs())
        .arg("--workspace")
        .arg(&ws)
        .args(["--disk", "lots", "--", "true"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected a size"), "{}", String::from_utf8_lossy(&bad.stderr));
}
