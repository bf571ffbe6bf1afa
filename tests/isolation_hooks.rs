//! Hooks (issue 3): every phase at its point and in its namespaces, the state on stdin, env,
//! timeout; a failing create-phase hook fails create and leaves nothing; a failing poststart hook
//! fails start and stops the container (runtime-spec 1.3); a failing poststop hook only warns.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{ns_link, require_root, scratch_dir, Bundle};

/// A hook that appends "PHASE <mnt ns> <net ns> FOO=$FOO" and its stdin to LOG/PHASE.
fn logging_hook(log: &Path, phase: &str) -> serde_json::Value {
    let script = format!(
        "echo \"{phase} $(readlink /proc/self/ns/mnt) $(readlink /proc/self/ns/net) FOO=$FOO arg1=$1\" >> {log}/order; cat > {log}/{phase}.json",
        log = log.display()
    );
    serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", script, "hook", "a1"], "env": ["FOO=bar-from-hook-env"]})
}

fn phase_lines(log: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(log.join("order")).unwrap_or_default().lines().map(|l| l.split(' ').map(String::from).collect()).collect()
}

fn state_of(log: &Path, phase: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(log.join(format!("{phase}.json"))).expect("hook state")).expect("state json")
}

fn cgroup_gone(b: &Bundle) -> bool {
    ["/sys/fs/cgroup/unified/testudo", "/sys/fs/cgroup/testudo"].iter().all(|base| !Path::new(base).join(&b.id).exists())
}

#[test]
fn every_phase_runs_at_its_point_with_state_env_and_namespaces() {
    if !require_root() {
        return;
    }
    let log = scratch_dir("hooks-log");
    let mut b = Bundle::new("exec sleep 100");
    let in_container = |phase: &str| {
        // startContainer runs after pivot_root: its path and its files are the container's. The
        // log directory is bind-mounted at /home for it.
        let script =
            format!("echo \"{phase} $(readlink /proc/self/ns/mnt) $(readlink /proc/self/ns/net) FOO=$FOO arg1=$1\" >> /home/order; cat > /home/{phase}.json");
        serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", script, "hook", "a1"], "env": ["FOO=bar-from-hook-env"]})
    };
    b.mount(serde_json::json!({"destination": "/home", "type": "bind", "source": log, "options": ["bind"]}));
    b.config["hooks"] = serde_json::json!({
        "prestart": [logging_hook(&log, "prestart")],
        "createRuntime": [logging_hook(&log, "createRuntime")],
        "createContainer": [logging_hook(&log, "createContainer")],
        "startContainer": [in_container("startContainer")],
        "poststart": [logging_hook(&log, "poststart")],
        "poststop": [logging_hook(&log, "poststop")],
    });
    let out = b.create();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pid = b.state().and_then(|s| s["pid"].as_i64()).expect("pid").to_string();
    let (ctr_mnt, ctr_net) = (ns_link(&pid, "mnt"), ns_link(&pid, "net"));
    let phases: Vec<String> = phase_lines(&log).iter().map(|l| l[0].clone()).collect();
    assert_eq!(phases, ["prestart", "createRuntime", "createContainer"], "after create");
    assert!(b.testudo(&["start", &b.id]).status.success());
    // start returns once the process runs: startContainer (before its execve) and poststart
    // (after it) are both done by then.
    let phases: Vec<String> = phase_lines(&log).iter().map(|l| l[0].clone()).collect();
    assert_eq!(phases, ["prestart", "createRuntime", "createContainer", "startContainer", "poststart"], "after start");
    assert!(b.testudo(&["kill", &b.id, "9"]).status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.status() != "stopped" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(b.testudo(&["delete", &b.id]).status.success());
    let lines = phase_lines(&log);
    let phases: Vec<&str> = lines.iter().map(|l| l[0].as_str()).collect();
    assert_eq!(phases, ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]);
    let (host_mnt, host_net) = (ns_link("self", "mnt"), ns_link("self", "net"));
    for l in &lines {
        let (mnt, net) = (&l[1], &l[2]);
        match l[0].as_str() {
            "createContainer" | "startContainer" => assert!(mnt == &ctr_mnt && net == &ctr_net, "{} not in the container's namespaces: {l:?}", l[0]),
            _ => assert!(mnt == &host_mnt && net == &host_net, "{} not in the runtime's namespaces: {l:?}", l[0]),
        }
        assert_eq!(&l[3], "FOO=bar-from-hook-env", "hook env");
        assert_eq!(&l[4], "arg1=a1", "hook args");
    }
    for phase in ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"] {
        let s = state_of(&log, phase);
        assert_eq!(s["id"], b.id.as_str(), "{phase}: {s}");
        assert_eq!(s["bundle"], b.dir.to_str().expect("utf8"), "{phase}");
        assert!(s["ociVersion"].as_str().is_some_and(|v| v.starts_with("1.")), "{phase}");
        if phase != "poststop" {
            assert_eq!(s["pid"].as_i64().map(|p| p.to_string()), Some(pid.clone()), "{phase}: {s}");
        }
        let want = match phase {
            "createRuntime" => "creating",
            "prestart" | "createContainer" | "startContainer" => "created",
            "poststart" => "running",
            _ => "stopped",
        };
        assert_eq!(s["status"], want, "{phase}: {s}");
    }
    let _ = std::fs::remove_dir_all(&log);
}

fn failing(phase: &str, hook: serde_json::Value) -> (Bundle, String, Duration) {
    let mut b = Bundle::new("exec sleep 100");
    b.config["hooks"] = serde_json::json!({ phase: [hook] });
    let t = Instant::now();
    let err = b.create_err();
    (b, err, t.elapsed())
}

#[test]
fn a_failing_or_hanging_create_phase_hook_fails_create_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let fail = serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]});
    for phase in ["prestart", "createRuntime", "createContainer"] {
        let (b, err, _) = failing(phase, fail.clone());
        assert!(err.contains(&format!("{phase} hook 0")) && err.contains("exit status: 3"), "{phase}: {err}");
        assert!(cgroup_gone(&b), "{phase}: cgroup left");
    }
    let (b, err, took) = failing("createRuntime", serde_json::json!({"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}));
    assert!(err.contains("timed out after 1s"), "{err}");
    assert!(took < Duration::from_secs(10), "the timeout did not bound the hook: {took:?}");
    assert!(cgroup_gone(&b));
    let (_, err, _) = failing("prestart", serde_json::json!({"path": "/nonexistent/hook"}));
    assert!(err.contains("/nonexistent/hook"), "{err}");
    let (_, err, _) = failing("prestart", serde_json::json!({"path": "/bin/true", "timeout": 0}));
    assert!(err.contains("timeout 0 must be positive"), "{err}");
}

#[test]
fn failing_poststop_hooks_warn_and_continue() {
    if !require_root() {
        return;
    }
    let marker: PathBuf = scratch_dir("hooks-poststop").join("ran");
    let fail = serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]});
    let after = serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", marker.display())]});
    let mut b = Bundle::new("echo container-ran");
    b.config["hooks"] = serde_json::json!({"poststop": [fail, after]});
    b.write();
    let o = b.testudo(&["run", "--bundle", b.dir.to_str().expect("utf8"), &b.id]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{:?} {out} {err}", o.status);
    assert_eq!(out, "container-ran\n");
    assert!(err.contains("poststop hook 0") && err.contains("warn"), "{err}");
    assert!(marker.exists(), "a failed poststop hook stopped the next one");
    assert!(!b.root.join(&b.id).exists() && cgroup_gone(&b), "delete did not finish");
}

/// Runtime spec 1.3: a poststart hook that fails fails `start`, and the container is stopped
/// (runc terminates its init); the hooks after it do not run.
#[test]
fn a_failing_poststart_hook_fails_start_and_stops_the_container() {
    if !require_root() {
        return;
    }
    let marker: PathBuf = scratch_dir("hooks-poststart").join("ran");
    let fail = serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]});
    let after = serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", marker.display())]});
    let mut b = Bundle::new("sleep 100");
    b.config["hooks"] = serde_json::json!({"poststart": [fail, after]});
    b.write();
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let o = b.testudo(&["create", "--bundle", &bundle, &b.id]);
    assert!(o.status.success(), "create: {}", String::from_utf8_lossy(&o.stderr));
    let o = b.testudo(&["start", &b.id]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "start succeeded although its poststart hook failed: {err}");
    assert!(err.contains("poststart hook 0") && err.contains("exit status: 4"), "{err}");
    assert!(!marker.exists(), "a hook after the failed one ran");
    let mut status = String::new();
    for _ in 0..100 {
        let o = b.testudo(&["state", &b.id]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("state json");
        status = v["status"].as_str().unwrap_or("").to_string();
        if status == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(status, "stopped", "the container's process still runs after a failed poststart hook");
    let o = b.testudo(&["delete", &b.id]);
    assert!(o.status.success(), "delete: {}", String::from_utf8_lossy(&o.stderr));
    assert!(cgroup_gone(&b));
    // `run` fails the same way.
    let mut b = Bundle::new("sleep 100");
    b.config["hooks"] = serde_json::json!({"poststart": [{"path": "/bin/false"}]});
    let (code, _, err) = b.run();
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("poststart hook 0"), "{err}");
    assert!(!b.root.join(&b.id).exists() && cgroup_gone(&b), "run left the container behind");
}

#[test]
fn a_failing_start_container_hook_fails_run_before_the_process_runs() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("echo the-process-ran");
    b.config["hooks"] = serde_json::json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 5"]}]});
    let (code, out, err) = b.run();
    assert_ne!(code, 0);
    assert!(err.contains("startContainer hook 0") && err.contains("exit status: 5"), "{err}");
    assert!(!out.contains("the-process-ran"), "{out}");
    assert!(!b.root.join(&b.id).exists() && cgroup_gone(&b), "run left the container behind");
}
