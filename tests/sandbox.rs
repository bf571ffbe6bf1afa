//! `testudo sandbox` (issue 15): an untrusted build job in one command. What the job sees from
//! inside, what the caller gets back (exit code, streams, report), the limits that end it, Landlock,
//! bad options; and after every run, nothing left: no state, no cgroup, no process.

mod common;
mod probe;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{require_root, status_field, BIN};

struct Job {
    root: PathBuf,
    workspace: PathBuf,
    report: PathBuf,
}

impl Job {
    fn new(name: &str) -> Job {
        let dir = common::scratch_dir(&format!("sandbox-{name}"));
        let workspace = dir.join("ws");
        std::fs::create_dir(&workspace).expect("workspace");
        Job { root: dir.join("state"), workspace, report: dir.join("report.json") }
    }

    /// `testudo sandbox --rootfs R --workspace W --report F OPTS… -- sh -c SCRIPT`.
    fn run(&self, opts: &[&str], script: &str) -> Output {
        self.command(opts, &["sh", "-c", script]).stdin(Stdio::null()).output().expect("run sandbox")
    }

    /// `testudo sandbox --rootfs R --workspace W --report F OPTS… -- JOB…`, to be started.
    fn command(&self, opts: &[&str], job: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(&self.root).arg("sandbox").arg("--rootfs").arg(common::rootfs()).arg("--workspace").arg(&self.workspace);
        c.arg("--report").arg(&self.report).args(opts).arg("--").args(job);
        c
    }

    fn report(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&self.report).expect("report")).expect("report json")
    }

    /// Nothing of any sandbox run is left: state, cgroups (v2 and v1), processes.
    fn assert_nothing_left(&self) {
        // The compiled-seccomp cache ("..seccomp", bounded) is the runtime's, not a run's.
        let state: Vec<_> = std::fs::read_dir(&self.root).into_iter().flatten().flatten().map(|e| e.file_name()).filter(|n| n != "..seccomp").collect();
        assert!(state.is_empty(), "state left: {state:?}");
        let mut cgroups = Vec::new();
        for h in std::fs::read_dir("/sys/fs/cgroup").expect("cgroupfs").flatten() {
            for e in std::fs::read_dir(h.path().join("testudo")).into_iter().flatten().flatten() {
                // Still there once its owner is known to be gone: a sandbox removes its cgroup
                // before it exits.
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("sandbox-") && !alive_owner(&e.path()) && !KILLED.lock().is_ok_and(|k| k.contains(&name)) && e.path().exists() {
                    cgroups.push(e.path());
                }
            }
        }
        assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
    }
}

/// The job of a sandbox a test killed on purpose, whose cgroups stay until that test deletes it.
static KILLED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// A sandbox cgroup (`sandbox-PID-RANDOM`) whose sandbox process still runs (another test's, in
/// parallel).
fn alive_owner(cg: &Path) -> bool {
    let name = cg.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let pid = name.strip_prefix("sandbox-").and_then(|r| r.split_once('-')).and_then(|(p, _)| p.parse::<i32>().ok());
    pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists())
}

impl Job {
    /// The sandbox, started with stdout piped (stdin null, stderr inherited).
    fn spawn(&self, opts: &[&str], script: &str) -> std::process::Child {
        self.command(opts, &["sh", "-c", script]).stdin(Stdio::null()).stdout(Stdio::piped()).spawn().expect("sandbox")
    }

    /// The one container under the state root (the job of a running sandbox).
    fn only_container(&self) -> String {
        let ids: Vec<String> = std::fs::read_dir(&self.root)
            .expect("state root")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("sandbox-"))
            .collect();
        assert_eq!(ids.len(), 1, "{ids:?}");
        ids[0].clone()
    }
}

/// Every process in the container's cgroups, in every hierarchy (v1 and v2).
fn cgroup_procs(id: &str) -> Vec<String> {
    let mut procs = Vec::new();
    for h in std::fs::read_dir("/sys/fs/cgroup").expect("cgroupfs").flatten() {
        if let Ok(s) = std::fs::read_to_string(h.path().join("testudo").join(id).join("cgroup.procs")) {
            procs.extend(s.lines().map(str::to_string));
        }
    }
    procs
}

/// Read the first line the job prints.
fn first_line(c: &mut std::process::Child) -> String {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while std::io::Read::read(c.stdout.as_mut().expect("stdout"), &mut b).expect("read") == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    text(&line)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_job_runs_unprivileged_with_its_workspace_and_the_caller_gets_its_code_and_report() {
    if !require_root() {
        return;
    }
    let j = Job::new("basic");
    std::fs::write(j.workspace.join("in.txt"), "hello\n").expect("input");
    let out = j.run(
        &[],
        "id -u; cat /proc/self/uid_map; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; cat in.txt; \
         echo made > out.txt; stat -c '%u' in.txt; touch /x 2>/dev/null || echo root-ro; echo to-stderr >&2; exit 3",
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout} {}", text(&out.stderr));
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("1000"), "{stdout}");
    let map: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(map, ["0", "100000", "65536"], "{stdout}");
    assert_eq!(status_field(&stdout, "CapEff"), Some("0000000000000000"));
    assert_eq!(status_field(&stdout, "NoNewPrivs"), Some("1"));
    assert_eq!(status_field(&stdout, "Seccomp"), Some("2"));
    assert!(stdout.contains("hello\n") && stdout.contains("\n1000\n") && stdout.contains("root-ro"), "{stdout}");
    assert_eq!(text(&out.stderr), "to-stderr\n");
    // What the job wrote is the caller's on disk.
    let m = std::fs::metadata(j.workspace.join("out.txt")).expect("out.txt");
    assert_eq!((m.uid(), m.gid()), (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw()));
    let r = j.report();
    assert_eq!((r["exit"].as_i64(), r["reason"].as_str()), (Some(3), Some("exited")), "{r}");
    assert_eq!(r["stderrBytes"].as_u64(), Some(10), "{r}");
    assert_eq!(r["stdoutBytes"].as_u64(), Some(stdout.len() as u64), "{r}");
    assert!(r["memoryPeakBytes"].as_u64().is_some_and(|m| m > 0), "{r}");
    assert!(r["cpuSeconds"].as_f64().is_some(), "{r}");
    // From v1's pids.peak on a hybrid host: sh and its children.
    assert!(r["pidsPeak"].as_u64().is_some_and(|p| p >= 2), "{r}");
    j.assert_nothing_left();
}

#[test]
fn the_timeout_the_output_limit_and_the_memory_limit_end_the_whole_job() {
    if !require_root() {
        return;
    }
    let j = Job::new("limits");
    let t0 = std::time::Instant::now();
    let out = j.run(&["--timeout", "1"], "sleep 60 & sleep 60");
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    assert!(t0.elapsed() < std::time::Duration::from_secs(20), "the timeout did not end the job");
    assert_eq!(j.report()["reason"], "timeout");
    j.assert_nothing_left();

    // Interrupted: the job goes with it, and the code is 128 + the signal, as a shell says.
    for (sig, code) in [(nix::sys::signal::Signal::SIGTERM, 143), (nix::sys::signal::Signal::SIGINT, 130), (nix::sys::signal::Signal::SIGHUP, 129)] {
        let mut c = j.spawn(&[], "echo started; sleep 60");
        assert_eq!(first_line(&mut c), "started");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), sig).expect("kill");
        assert_eq!(c.wait().expect("wait").code(), Some(code), "{sig}");
        assert_eq!(j.report()["reason"], "interrupted");
        j.assert_nothing_left();
    }

    let out = j.run(&["--output-limit", "4k"], "while :; do echo 0123456789abcdef; done");
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(out.stdout.len() <= 4096, "{} bytes passed the limit", out.stdout.len());
    assert_eq!(j.report()["reason"], "output-limit");
    j.assert_nothing_left();

    let out = j.run(&["--memory", "32M"], "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}");
    assert_eq!(out.status.code(), Some(137), "{}", text(&out.stderr));
    assert_eq!(j.report()["reason"], "oom");
    j.assert_nothing_left();
}

#[test]
fn landlock_keeps_writes_to_the_workspace_and_tmp() {
    if !require_root() {
        return;
    }
    let j = Job::new("landlock");
    let script = "echo a > /workspace/a && echo ws-ok; echo b > /tmp/b && echo tmp-ok; echo c > /dev/null && echo null-ok; \
                  echo d > /dev/shm/d 2>/dev/null && echo shm-written || echo shm-denied";
    // /dev/shm is the job's own tmpfs (item 17: Python's multiprocessing needs sem_open there).
    let out = j.run(&["--landlock"], script);
    assert_eq!(text(&out.stdout), "ws-ok\ntmp-ok\nnull-ok\nshm-written\n", "{}", text(&out.stderr));
    let out = j.run(&[], script);
    assert_eq!(text(&out.stdout), "ws-ok\ntmp-ok\nnull-ok\nshm-written\n", "{}", text(&out.stderr));
    j.assert_nothing_left();
}

#[test]
fn bad_options_are_clear_errors_that_leave_nothing() {
    if !require_root() {
        return;
    }
    let j = Job::new("bad");
    let bad_profile = j.workspace.join("../profile.json");
    std::fs::write(&bad_profile, "{\"defaultAction\": 7}").expect("profile");
    let file = j.workspace.join("../file");
    std::fs::write(&file, "").expect("file");
    let inside = common::rootfs().join("etc");
    let cases: Vec<(Vec<String>, String)> = vec![
        (vec!["--timeout".into(), "0".into()], "--timeout \\\"0\\\"".into()),
        (vec!["--kill-after".into(), "5s".into()], "needs a --timeout".into()),
        (vec!["--profile".into(), bad_profile.to_string_lossy().into()], "not an OCI linux.seccomp object".into()),
        (vec!["--memory".into(), "lots".into()], "--memory \\\"lots\\\"".into()),
        (vec!["--cpus".into(), "0".into()], "--cpus".into()),
        // `host` is opt-in now (`net_host_shares_…`); what is not known is still refused.
        (vec!["--net".into(), "bridge".into()], "--net \\\"bridge\\\"".into()),
    ];
    for (opts, needle) in cases {
        let o: Vec<&str> = opts.iter().map(String::as_str).collect();
        let out = j.run(&o, "true");
        let err = text(&out.stderr);
        assert!(!out.status.success() && err.contains(&needle), "{opts:?}: {err}");
    }
    for (rootfs, ws, needle) in [
        (Path::new("/nonexistent-rootfs"), j.workspace.as_path(), "--rootfs"),
        (file.as_path(), j.workspace.as_path(), "not a directory"),
        (common::rootfs(), inside.as_path(), "is inside --rootfs"),
    ] {
        let out = Command::new(BIN)
            .arg("--root")
            .arg(&j.root)
            .arg("sandbox")
            .arg("--rootfs")
            .arg(rootfs)
            .arg("--workspace")
            .arg(ws)
            .args(["--", "true"])
            .output()
            .expect("run");
        let err = text(&out.stderr);
        assert!(!out.status.success() && err.contains(needle), "{rootfs:?} {ws:?}: {err}");
    }
    j.assert_nothing_left();
}

/// `profile` records a run's syscalls (user notifications answered with CONTINUE) and writes the
/// allow-list; enforced, it lets the same run through and refuses a syscall the run never made
/// with EPERM, which the same container without it makes.
#[test]
fn profile_records_a_run_and_its_profile_lets_that_run_through_and_nothing_else() {
    if !require_root() {
        return;
    }
    let mut b = common::Bundle::new("true");
    if !probe::add(&mut b) {
        return;
    }
    let probe_args = |args: &[&str]| {
        let mut a = vec![probe::PATH];
        a.extend_from_slice(args);
        serde_json::json!(a)
    };
    b.config["process"]["args"] = probe_args(&["syscall", "39"]);
    b.write();
    let prof = b.dir.join("recorded.json");
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let out = b.testudo(&["profile", "--bundle", &bundle, "--output", prof.to_str().expect("utf8"), &b.id]);
    assert!(out.status.success(), "profile: {}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("OK "), "the recorded run: {}", text(&out.stdout));
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(&prof).expect("profile written")).expect("json");
    let names: Vec<&str> = p["syscalls"][0]["names"].as_array().expect("names").iter().filter_map(|n| n.as_str()).collect();
    assert!(names.contains(&"getpid") && names.contains(&"execve") && !names.contains(&"unshare"), "{names:?}");
    assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
    // unshare(0) is allowed without a filter…
    b.config["process"]["args"] = probe_args(&["syscall", "272", "0"]);
    b.config["linux"].as_object_mut().expect("linux").remove("seccomp");
    assert_eq!(b.run().1.trim(), "OK 0");
    // …and refused under the recorded profile, while the recorded run passes.
    b.config["linux"]["seccomp"] = p;
    assert_eq!(b.run().1.trim(), "ERR 1");
    b.config["process"]["args"] = probe_args(&["syscall", "39"]);
    assert!(b.run_ok().starts_with("OK "));
}

/// `sandbox --record`: the same recorder for a sandboxed job.
#[test]
fn sandbox_record_writes_the_jobs_profile() {
    if !require_root() {
        return;
    }
    let j = Job::new("record");
    let prof = j.workspace.join("../job-profile.json");
    let out = j.run(&["--record", prof.to_str().expect("utf8")], "echo hi > out.txt; cat out.txt");
    assert_eq!(text(&out.stdout), "hi\n", "{}", text(&out.stderr));
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(&prof).expect("profile written")).expect("json");
    let names: Vec<&str> = p["syscalls"][0]["names"].as_array().expect("names").iter().filter_map(|n| n.as_str()).collect();
    assert!(names.contains(&"openat") && names.contains(&"write") && names.contains(&"execve"), "{names:?}");
    j.assert_nothing_left();
}

/// `testudo sandbox … | head -c 1`: the reader goes, testudo must not die of SIGPIPE with the job
/// running on. The job's next output is EPIPE on the relay: it is killed (reason output-closed,
/// exit 141) and nothing is left, for a fast writer and for a slow one.
#[test]
fn a_closed_output_ends_the_job_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let j = Job::new("epipe");
    for script in ["echo first; while :; do echo more; done", "echo first; while :; do sleep 0.5; echo more; done"] {
        let mut c = j.spawn(&[], script);
        assert_eq!(first_line(&mut c), "first");
        drop(c.stdout.take());
        let st = c.wait().expect("wait");
        assert_eq!(st.code(), Some(141), "{script}: {st:?}");
        let r = j.report();
        assert_eq!((r["reason"].as_str(), r["exit"].as_i64()), (Some("output-closed"), Some(141)), "{r}");
        j.assert_nothing_left();
    }
}

/// SIGKILL to testudo: the init's die-with-parent signal ends the job (its cgroups empty while
/// the state is still there), and `delete --force` removes the rest, bundle included: the bundle
/// lives in the container's directory under the state root, named with the pid and a random part.
#[test]
fn a_killed_sandbox_takes_its_job_along_and_delete_removes_the_rest() {
    if !require_root() {
        return;
    }
    let j = Job::new("killed");
    let mut c = j.spawn(&[], "sleep 600 & echo started; while :; do date > /workspace/beat; sleep 0.1; done");
    assert_eq!(first_line(&mut c), "started");
    let id = j.only_container();
    let rest = id.strip_prefix(&format!("sandbox-{}-", c.id())).expect("sandbox-PID-RANDOM");
    assert!(rest.len() == 16 && rest.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    // The bundle is in the container's directory; its config.json is the directory's own.
    assert!(j.root.join(&id).join("bundle").is_dir() && j.root.join(&id).join("config.json").is_file(), "the bundle is not in the state dir");
    assert!(!std::env::temp_dir().join(format!("testudo-sandbox-{}-{}", c.id(), c.id())).exists());
    assert!(!cgroup_procs(&id).is_empty());
    KILLED.lock().expect("lock").push(id.clone());
    c.kill().expect("SIGKILL");
    c.wait().expect("wait");
    common::wait_for("the job's processes to go", || cgroup_procs(&id).is_empty());
    let out = Command::new(BIN).arg("--root").arg(&j.root).args(["delete", "--force", &id]).output().expect("delete");
    assert!(out.status.success(), "{}", text(&out.stderr));
    j.assert_nothing_left();
}

/// Issue 22 item 6: what a SIGKILLed sandbox leaves (its state, bundle and cgroups) is removed by
/// the next `sandbox` on the same state root, and nothing else is: not a sandbox still running
/// (its lock is held), not a stopped container made from a bundle elsewhere, even one named
/// `sandbox-…`.
#[test]
fn the_next_sandbox_removes_what_a_killed_one_left_and_nothing_else() {
    if !require_root() {
        return;
    }
    let j = Job::new("sweep");
    let mut running = j.spawn(&[], "echo started; sleep 600");
    assert_eq!(first_line(&mut running), "started");
    let alive = j.only_container();
    let mut killed = j.spawn(&[], "echo started; sleep 600");
    assert_eq!(first_line(&mut killed), "started");
    let ids: Vec<String> = std::fs::read_dir(&j.root).expect("root").flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    let gone = ids.into_iter().find(|i| i.starts_with(&format!("sandbox-{}-", killed.id()))).expect("the second sandbox's id");
    KILLED.lock().expect("lock").push(gone.clone());
    killed.kill().expect("SIGKILL");
    killed.wait().expect("wait");
    common::wait_for("the killed job's processes to go", || cgroup_procs(&gone).is_empty());
    assert!(j.root.join(&gone).join("bundle").is_dir(), "the killed sandbox left nothing to sweep");
    // A stopped container of the same root, with a sandbox-like id and its bundle elsewhere.
    let mut b = common::Bundle::new("sleep 600");
    b.root = j.root.clone();
    b.id = format!("sandbox-{}-keep", std::process::id());
    assert!(b.create().status.success());
    assert!(b.cmd(&["kill", &b.id, "KILL"]).status().expect("kill").success());
    common::wait_for("the container to stop", || text(&b.cmd(&["state", &b.id]).output().expect("state").stdout).contains("\"stopped\""));

    let out = j.run(&[], "echo next");
    assert_eq!(text(&out.stdout), "next\n", "{}", text(&out.stderr));
    assert!(!j.root.join(&gone).exists(), "the killed sandbox's state and bundle are left");
    let left: Vec<PathBuf> =
        std::fs::read_dir("/sys/fs/cgroup").expect("cgroupfs").flatten().map(|h| h.path().join("testudo").join(&gone)).filter(|p| p.exists()).collect();
    assert!(left.is_empty(), "the killed sandbox's cgroups are left: {left:?}");
    assert!(j.root.join(&alive).join("bundle").is_dir() && !cgroup_procs(&alive).is_empty(), "the running sandbox was swept");
    assert!(j.root.join(&b.id).join("state.json").exists(), "a stopped container that is not a sandbox was swept");

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(running.id() as i32), nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    assert_eq!(running.wait().expect("wait").code(), Some(143));
    assert!(b.cmd(&["delete", &b.id]).status().expect("delete").success());
    j.assert_nothing_left();
}

/// Issue 22 item 5: `profile` keeps sandbox's lifecycle: SIGKILL to testudo, and the recorded
/// workload dies with it (its init has die-with-parent, and its pid namespace goes with it).
#[test]
fn a_killed_profile_takes_its_workload_along() {
    if !require_root() {
        return;
    }
    let b = common::Bundle::new("sleep 7501 & sleep 7502");
    b.write();
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let out = b.dir.join("profile.json");
    let mut c = b.cmd(&["profile", "--bundle", &bundle, "--output", out.to_str().expect("utf8"), &b.id]);
    let mut p = c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("profile");
    let sleeping = |n: &str| processes_running(&["sleep", n]);
    common::wait_for("the workload", || !sleeping("7501").is_empty() && !sleeping("7502").is_empty());
    p.kill().expect("SIGKILL");
    p.wait().expect("wait");
    common::wait_for("the workload to die with testudo", || sleeping("7501").is_empty() && sleeping("7502").is_empty());
}

/// Host processes whose command line is exactly `args`.
fn processes_running(args: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = args.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let pids = std::fs::read_dir("/proc").expect("proc").flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()));
    pids.filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want)).collect()
}

/// The default init: orphans are reaped (100 double forks fit in --pids 32), the job's own
/// signals act as they would anywhere (not pid 1's, which the kernel drops), its status is the
/// exit code. `--as-pid-1` runs the job as pid 1 itself.
#[test]
fn the_init_reaps_orphans_and_the_job_dies_of_its_signals() {
    if !require_root() {
        return;
    }
    let j = Job::new("init");
    // xargs waits for its own child only: the orphans are pid 1's to reap. Unreaped, their
    // zombies fill --pids and the forks fail ("can't fork").
    let out = j.run(&["--pids", "32"], "seq 100 > /tmp/n; exec xargs -n1 sh -c '(true &) && echo ok' < /tmp/n");
    assert_eq!((out.status.code(), text(&out.stdout).lines().count(), text(&out.stderr)), (Some(0), 100, String::new()));
    let out = j.run(&[], "kill -SEGV $$; echo survived");
    assert_eq!((out.status.code(), text(&out.stdout)), (Some(139), String::new()));
    let r = j.report();
    assert_eq!((r["reason"].as_str(), r["signal"].as_i64()), (Some("exited"), Some(11)), "{r}");
    let out = j.run(&[], "kill -TERM $$; echo survived");
    assert_eq!((out.status.code(), text(&out.stdout)), (Some(143), String::new()));
    let out = j.run(&[], "echo $$");
    assert_ne!(text(&out.stdout), "1\n");
    let out = j.run(&["--as-pid-1"], "echo $$");
    assert_eq!(text(&out.stdout), "1\n");
    // The init as the job sees it: the job's identity, and nothing of the host's to read
    // (no exe, fds or environ: non-dumpable; an empty command line, not testudo's).
    let out = j.run(
        &[],
        "grep -E '^(Uid|CapEff|NoNewPrivs):' /proc/1/status; tr -d '\\0' < /proc/1/cmdline | wc -c; \
                          for f in exe cwd root; do readlink /proc/1/$f || echo $f-denied; done; ls /proc/1/fd || echo fd-denied; \
                          cat /proc/1/environ || echo environ-denied",
    );
    let stdout = text(&out.stdout);
    assert_eq!(status_field(&stdout, "Uid"), Some("1000\t1000\t1000\t1000"), "{stdout}");
    assert_eq!(status_field(&stdout, "CapEff"), Some("0000000000000000"));
    assert_eq!(status_field(&stdout, "NoNewPrivs"), Some("1"));
    let rest: Vec<&str> = stdout.lines().skip(3).collect();
    assert_eq!(rest, ["0", "exe-denied", "cwd-denied", "root-denied", "fd-denied", "environ-denied"], "{stdout}");
    j.assert_nothing_left();
}

/// A test server on 127.0.0.1 inside the job: lo is up in the job's network namespace.
#[test]
fn the_job_can_serve_and_connect_on_loopback() {
    if !require_root() {
        return;
    }
    let j = Job::new("loopback");
    // The client retries until the server listens; with lo down it never connects (and the
    // server is stopped, not waited for). The server's stdin is a fifo held open until what it
    // received is there: busybox nc may end at its stdin's EOF before it reads the socket (a
    // /dev/null stdin lost "hello" once under load).
    let script = "mkfifo /tmp/in; nc -l -p 8080 < /tmp/in > /tmp/got & s=$!; exec 3> /tmp/in; \
                  n=0; until echo hello | nc 127.0.0.1 8080; do n=$((n+1)); [ $n -gt 100 ] && break; sleep 0.1; done; \
                  n=0; until grep -q hello /tmp/got || [ $n -gt 50 ]; do n=$((n+1)); sleep 0.1; done; \
                  exec 3>&-; kill $s 2>/dev/null; wait; cat /tmp/got; ip link show lo";
    let out = j.run(&[], script);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("hello\n") && stdout.contains(",UP,"), "{stdout} {}", text(&out.stderr));
    j.assert_nothing_left();
}

/// testudo's own failures: 126, not a job's 1, and the report still says what went wrong.
#[test]
fn a_failed_setup_exits_126_and_still_reports() {
    if !require_root() {
        return;
    }
    let j = Job::new("setup");
    // Bad options, and a job that cannot be executed (known at setup).
    for (opts, job, needle) in
        [(&["--memory", "lots"][..], &["true"][..], "--memory"), (&["--pids", "0"], &["true"], "--pids 0"), (&[], &["/no/such/tool"], "/no/such/tool")]
    {
        let out = j.command(opts, job).stdin(Stdio::null()).output().expect("run");
        assert_eq!(out.status.code(), Some(126), "{opts:?}: {}", text(&out.stderr));
        let r = j.report();
        assert_eq!(r["reason"], "setup-failed", "{r}");
        assert!(r["error"].as_str().is_some_and(|e| e.contains(needle)), "{r}");
    }
    j.assert_nothing_left();
}

/// Durations, sizes, and --kill-after: SIGTERM at the timeout (the job's trap runs), the kill later.
#[test]
fn timeouts_take_durations_and_kill_after_sends_sigterm_first() {
    if !require_root() {
        return;
    }
    let j = Job::new("durations");
    for t in ["500ms", "0.5", "1s"] {
        let out = j.run(&["--timeout", t], "sleep 60");
        assert_eq!(out.status.code(), Some(124), "{t}: {}", text(&out.stderr));
    }
    let out = j.run(&["--timeout", "300ms", "--kill-after", "30s"], "trap 'echo got-term; exit 7' TERM; while :; do sleep 0.1; done");
    assert_eq!((out.status.code(), text(&out.stdout)), (Some(124), "got-term\n".to_string()), "{}", text(&out.stderr));
    let r = j.report();
    assert_eq!((r["reason"].as_str(), r["jobExit"].as_i64()), (Some("timeout"), Some(7)), "{r}");
    // The grace ends with the kill when the job ignores SIGTERM.
    let out = j.run(&["--timeout", "300ms", "--kill-after", "300ms"], "trap '' TERM; sleep 60");
    assert_eq!(out.status.code(), Some(124));
    assert_eq!(j.report()["jobExit"], 137);
    for m in ["1T", "2GiB", "512MiB"] {
        let out = j.run(&["--memory", m], "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max");
        assert!(out.status.success(), "{m}: {}", text(&out.stderr));
    }
    j.assert_nothing_left();
}

/// `2>&1`: one file for both, one pipe for both, the order kept.
#[test]
fn merged_output_keeps_its_order() {
    if !require_root() {
        return;
    }
    let j = Job::new("merged");
    let (r, w) = nix::unistd::pipe().expect("pipe");
    let w2 = w.try_clone().expect("dup");
    let mut c = j.command(&[], &["sh", "-c", "for i in $(seq 200); do echo out$i; echo err$i >&2; done"]);
    let mut child = c.stdin(Stdio::null()).stdout(Stdio::from(w)).stderr(Stdio::from(w2)).spawn().expect("sandbox");
    // Our copies of the write ends, or the read below would never see EOF.
    drop(c);
    let mut all = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut all).expect("read");
    assert!(child.wait().expect("wait").success());
    let want: String = (1..=200).map(|i| format!("out{i}\nerr{i}\n")).collect();
    assert!(all == want, "out of order: {}", &all[..all.len().min(300)]);
    assert_eq!(j.report()["outputMerged"], true);
    j.assert_nothing_left();
}

/// RLIMIT_FSIZE from --output-limit: the file stops at the limit, the writer dies of SIGXFSZ,
/// and that is the output limit too.
#[test]
fn a_file_past_the_output_limit_is_cut_and_reported() {
    if !require_root() {
        return;
    }
    let j = Job::new("fsize");
    let out = j.run(&["--output-limit", "4k"], "head -c 100000 /dev/zero > /workspace/big");
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    let r = j.report();
    assert_eq!((r["reason"].as_str(), r["jobExit"].as_i64()), (Some("file-size-limit"), Some(153)), "{r}");
    assert_eq!(std::fs::metadata(j.workspace.join("big")).expect("big").len(), 4096);
    j.assert_nothing_left();
}

/// Issue 22 item 1 (CVE-2017-5226 class): a job started from the caller's terminal gets neither
/// the terminal nor the caller's session, so it can neither read what the caller types nor push
/// input into the caller's shell: its stdin is /dev/null, it has no controlling tty, /dev/tty
/// does not open. `--stdin` passes a pipe through and refuses a terminal.
#[test]
fn the_job_never_gets_the_callers_terminal_or_session() {
    if !require_root() {
        return;
    }
    let j = Job::new("tty");
    let script = "readlink /proc/self/fd/0; awk '{print \"tty_nr=\" $7}' /proc/self/stat; (exec 3</dev/tty) 2>/dev/null && echo has-dev-tty || echo no-dev-tty";
    let (code, seen) = common::on_callers_terminal(j.command(&[], &["sh", "-c", script]));
    assert_eq!(code, 0, "{seen}");
    assert!(seen.contains("/dev/null\r\n"), "stdin is /dev/null, not the caller's terminal: {seen:?}");
    assert!(seen.contains("tty_nr=0\r\n"), "no controlling terminal: {seen:?}");
    assert!(seen.contains("no-dev-tty"), "/dev/tty leads nowhere: {seen:?}");
    j.assert_nothing_left();

    let (code, seen) = common::on_callers_terminal(j.command(&["--stdin"], &["sh", "-c", "echo ran"]));
    assert_ne!(code, 0, "{seen}");
    assert!(seen.contains("standard input is a terminal") && !seen.contains("ran"), "{seen:?}");
    j.assert_nothing_left();

    let mut c = j.command(&["--stdin"], &["sh", "-c", "readlink /proc/self/fd/0 | cut -d: -f1; cat"]);
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sandbox");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(b"piped-in\n").expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(text(&out.stdout), "pipe\npiped-in\n", "{}", text(&out.stderr));
    j.assert_nothing_left();
}

/// Issue 25 item 4: a hostile `--profile` of 100,000 argument rules (19 MB) fails in well under a
/// second with the instruction count, before libseccomp works on it (it took 790 s of CPU), and
/// leaves nothing. `run` takes the same path (`seccomp::compile`).
#[test]
fn a_profile_of_100000_rules_fails_at_once_with_the_instruction_count() {
    if !require_root() {
        return;
    }
    let j = Job::new("huge-profile");
    let rules: Vec<serde_json::Value> = (0..100_000)
        .map(|i| serde_json::json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": i, "op": "SCMP_CMP_EQ"}]}))
        .collect();
    let profile = j.workspace.join("../huge.json");
    let v = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "syscalls": rules});
    std::fs::write(&profile, serde_json::to_vec(&v).expect("json")).expect("profile");
    let t = std::time::Instant::now();
    let out = j.run(&["--profile", &profile.to_string_lossy()], "echo ran");
    let err = text(&out.stderr);
    eprintln!("100,000 rules refused in {:?}", t.elapsed());
    assert!(!out.status.success() && !text(&out.stdout).contains("ran"), "{err}");
    // The sandbox adds a few rules of its own (no setuid file) to the profile given.
    assert!(err.contains("seccomp: the profile needs at least 2000") && err.contains("BPF instructions (max 4096): 1000"), "{err}");
    j.assert_nothing_left();
}

/// Issue 22 item 2: the workspace maps the job to the caller (root here) on disk, so a setuid file
/// the job made there would be a setuid-root executable on the host, whatever nosuid does inside.
/// Every call that can set S_ISUID or S_ISGID is refused under the build and the default profile
/// (EPERM, or ENOSYS where the mode is out of a filter's sight); plain modes still work.
#[test]
fn the_job_cannot_leave_a_setuid_or_setgid_file_in_the_workspace() {
    use std::os::unix::fs::PermissionsExt;
    if !require_root() {
        return;
    }
    let Some(probe) = probe::binary() else { return };
    let j = Job::new("setid");
    let script = "for how in chmod fchmodat fchmod; do touch f-$how; ./probe setid $how f-$how; ./probe setid $how f-$how 02755; done; \
                  for how in open openat creat mknod openat2; do ./probe setid $how n-$how; done; \
                  touch plain; chmod 4750 plain 2>/dev/null; chmod 750 plain && echo plain-ok";
    for profile in ["build", "default"] {
        std::fs::copy(probe, j.workspace.join("probe")).expect("probe");
        std::fs::set_permissions(j.workspace.join("probe"), std::fs::Permissions::from_mode(0o755)).expect("chmod probe");
        let out = j.run(&["--profile", profile], script);
        let stdout = text(&out.stdout);
        let results: Vec<&str> = stdout.lines().filter(|l| l.starts_with("OK") || l.starts_with("ERR")).collect();
        assert_eq!(results.len(), 11, "{profile}: {stdout} {}", text(&out.stderr));
        for (i, r) in results.iter().enumerate() {
            let want = if i == 10 { "ERR 38" } else { "ERR 1" };
            assert_eq!(*r, want, "{profile}: call {i} of {stdout}");
        }
        assert!(stdout.contains("plain-ok"), "{profile}: {stdout}");
        for e in std::fs::read_dir(&j.workspace).expect("workspace").flatten() {
            let m = e.metadata().expect("stat").mode();
            assert_eq!(m & 0o6000, 0, "{profile}: {:?} has mode {m:o} on the host", e.file_name());
            if e.file_name() == "plain" {
                assert_eq!(m & 0o7777, 0o750, "{profile}: plain modes still work");
            }
            std::fs::remove_file(e.path()).expect("clean");
        }
        j.assert_nothing_left();
    }
}

/// `testudo --root STATE sandbox --rootfs ROOTFS --workspace WS OPTS… -- sh -c SCRIPT`, with no
/// report unless asked for in OPTS.
fn sandbox(state: &Path, rootfs: &Path, ws: &Path, opts: &[&str], script: &str) -> Output {
    let mut c = Command::new(BIN);
    c.arg("--root").arg(state).arg("sandbox").arg("--rootfs").arg(rootfs).arg("--workspace").arg(ws);
    c.args(opts).args(["--", "sh", "-c", script]);
    c.stdin(Stdio::null()).output().expect("run sandbox")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// Item 11: `--report` and `--record` inside the workspace, where the job plants a symlink to a
/// host file (or swaps the directory for a symlink to a host directory) while it runs: root
/// replaces the link, never writes through it.
#[test]
fn report_and_record_paths_the_job_planted_symlinks_at_are_not_followed() {
    if !require_root() {
        return;
    }
    let j = Job::new("planted-report");
    let host = j.workspace.join("../host");
    std::fs::create_dir(&host).expect("host dir");
    for f in ["a", "b"] {
        std::fs::write(host.join(f), "precious\n").expect("host file");
    }
    let (report, record) = (j.workspace.join("report.json"), j.workspace.join("rec.json"));
    let script = format!("ln -s {} /workspace/report.json; ln -s {} /workspace/rec.json", s(&host.join("a")), s(&host.join("b")));
    let out = sandbox(&j.root, common::rootfs(), &j.workspace, &["--report", s(&report), "--record", s(&record)], &script);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for f in ["a", "b"] {
        assert_eq!(std::fs::read_to_string(host.join(f)).expect("host file"), "precious\n", "host file {f} was written through the job's symlink");
    }
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).expect("report")).expect("report json");
    assert_eq!(r["reason"], "exited");
    assert!(!std::fs::symlink_metadata(&record).expect("record").file_type().is_symlink());
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).expect("record")).expect("profile json");
    assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");

    // The report's directory swapped for a symlink to a host directory mid-run.
    std::fs::create_dir(j.workspace.join("sub")).expect("sub");
    let report = j.workspace.join("sub/report.json");
    let script = format!("mv /workspace/sub /workspace/sub.old && ln -s {} /workspace/sub", s(&host));
    let out = sandbox(&j.root, common::rootfs(), &j.workspace, &["--report", s(&report)], &script);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!host.join("report.json").exists(), "the report went through the job's symlink into the host directory");
    assert!(j.workspace.join("sub.old/report.json").is_file(), "the report is in the directory opened before the run");
    j.assert_nothing_left();
}

/// Item 22: a workspace (rootfs, bind source) that is or passes through a symlink a job planted
/// is refused, so no later run makes a host directory the job's.
#[test]
fn a_workspace_rootfs_or_bind_source_through_a_symlink_is_refused() {
    if !require_root() {
        return;
    }
    let j = Job::new("planted-ws");
    let host = j.workspace.join("../hostdir");
    std::fs::create_dir_all(host.join("sub")).expect("host dir");
    std::os::unix::fs::symlink(&host, j.workspace.join("out")).expect("symlink");
    for ws in [j.workspace.join("out"), j.workspace.join("out/sub")] {
        let out = sandbox(&j.root, common::rootfs(), &ws, &[], "touch /workspace/pwned");
        let err = text(&out.stderr);
        assert!(!out.status.success() && err.contains("symlink"), "{ws:?}: {err}");
        assert!(!host.join("pwned").exists() && !host.join("sub/pwned").exists(), "the job wrote the host directory");
    }
    let link = j.workspace.join("../rootfs-link");
    std::os::unix::fs::symlink(common::rootfs(), &link).expect("symlink");
    let out = sandbox(&j.root, &link, &j.workspace, &[], "true");
    assert!(!out.status.success() && text(&out.stderr).contains("--rootfs"), "{}", text(&out.stderr));
    let bind = format!("{}:/src", s(&j.workspace.join("out")));
    let out = sandbox(&j.root, common::rootfs(), &j.workspace, &["--ro-bind", &bind], "ls /src");
    assert!(!out.status.success() && text(&out.stderr).contains("symlink"), "{}", text(&out.stderr));
    j.assert_nothing_left();
}

/// Every file of a tree with its type, mode and mtime (the directories' too).
fn listing(dir: &Path) -> String {
    let out = Command::new("find").arg(dir).args(["-printf", "%P %y %m %U %T@ %l\n"]).output().expect("find");
    let mut lines: Vec<&str> = std::str::from_utf8(&out.stdout).expect("utf8").lines().collect();
    lines.sort_unstable();
    lines.join("\n")
}

/// Items 23 and 13: mount points go on the sandbox's own layer, never into the rootfs: a rootfs
/// whose /opt leads to a host directory gets nothing made there, a rootfs is byte for byte the
/// same after a run with binds, and a rootfs with nothing but busybox runs.
#[test]
fn the_rootfs_is_left_as_it_was_and_mount_points_never_follow_its_symlinks() {
    if !require_root() {
        return;
    }
    let j = Job::new("rootfs-untouched");
    let rootfs = j.workspace.join("../rootfs");
    let st = Command::new("bash").arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/busybox-rootfs.sh")).arg(&rootfs).status().expect("rootfs");
    assert!(st.success());
    let host = j.workspace.join("../host-opt");
    std::fs::create_dir(&host).expect("host dir");
    std::os::unix::fs::symlink(&host, rootfs.join("opt")).expect("symlink");
    let src = j.workspace.join("../src");
    std::fs::create_dir(&src).expect("src");
    std::fs::write(src.join("f"), "from-src\n").expect("src file");
    let before = listing(&rootfs);
    let bind = format!("{}:/opt/x", s(&src));
    let out = sandbox(&j.root, &rootfs, &j.workspace, &["--ro-bind", &bind], "cat /opt/x/f");
    assert_eq!(std::fs::read_dir(&host).expect("host").count(), 0, "a mount point was made in the host directory: {}", text(&out.stderr));
    assert!(!out.status.success() && text(&out.stderr).contains("symlink"), "{}", text(&out.stderr));
    let binds = [format!("{}:/new/deeper", s(&src)), format!("{}:/etc/extra", s(&src.join("f"))), format!("{}:/usr/share/src", s(&src))];
    let mut opts = Vec::new();
    for b in &binds {
        opts.extend(["--ro-bind", b.as_str()]);
    }
    let out = sandbox(&j.root, &rootfs, &j.workspace, &opts, "cat /new/deeper/f /etc/extra /usr/share/src/f; ls /etc/passwd");
    assert_eq!(text(&out.stdout), "from-src\nfrom-src\nfrom-src\n/etc/passwd\n", "{}", text(&out.stderr));
    assert_eq!(listing(&rootfs), before, "the run changed the rootfs");

    let bare = j.workspace.join("../bare");
    std::fs::create_dir_all(bare.join("bin")).expect("bare");
    std::fs::copy(rootfs.join("bin/busybox"), bare.join("bin/busybox")).expect("busybox");
    std::os::unix::fs::symlink("busybox", bare.join("bin/sh")).expect("sh");
    let before = listing(&bare);
    let out = sandbox(&j.root, &bare, &j.workspace, &[], "/bin/busybox ls / | /bin/busybox tr '\\n' ' '");
    assert_eq!(text(&out.stdout), "bin dev proc sys tmp workspace ", "{}", text(&out.stderr));
    assert_eq!(listing(&bare), before, "the run changed the bare rootfs");
    j.assert_nothing_left();
}

/// Item 24: recording does not lift the sandbox's filter: what the profile denies stays denied
/// (EPERM) and is not in the recorded allow-list.
#[test]
fn recording_keeps_the_profile_enforced() {
    if !require_root() {
        return;
    }
    let j = Job::new("record-enforced");
    let prof = j.workspace.join("../p.json");
    let out = j.run(&["--record", s(&prof)], "grep '^Seccomp:' /proc/self/status; unshare -U true 2>/dev/null && echo unshared || echo refused");
    assert_eq!(text(&out.stdout), "Seccomp:\t2\nrefused\n", "{}", text(&out.stderr));
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(&prof).expect("profile written")).expect("json");
    let names: Vec<&str> = p["syscalls"][0]["names"].as_array().expect("names").iter().filter_map(|n| n.as_str()).collect();
    assert!(names.contains(&"execve") && names.contains(&"write") && !names.contains(&"unshare"), "{names:?}");
    j.assert_nothing_left();
}

/// Item 21: the report lists the syscalls the profile denied, each with how often, and the job
/// still got the profile's own errno (EPERM) for each; a recording run lists none (null: its one
/// listener is the recorder's).
#[test]
fn the_report_lists_the_syscalls_the_profile_denied() {
    if !require_root() {
        return;
    }
    let j = Job::new("denied");
    let out = j.run(&[], "unshare -U true; unshare -m true; echo done");
    assert_eq!(text(&out.stdout), "done\n");
    let err = text(&out.stderr);
    assert!(err.contains("unshare(0x10000000): Operation not permitted") && err.contains("unshare(0x20000): Operation not permitted"), "{err}");
    let want = serde_json::json!([{"name": "unshare", "arch": "SCMP_ARCH_X86_64", "count": 2}]);
    assert_eq!(j.report()["deniedSyscalls"], want);
    let prof = j.workspace.join("../p.json");
    let out = j.run(&["--record", s(&prof)], "unshare -U true; echo done");
    assert_eq!(text(&out.stdout), "done\n");
    assert!(j.report()["deniedSyscalls"].is_null(), "{}", j.report());
    j.assert_nothing_left();
}

/// Items 14, 15, 16: a bind source under a 0700 directory (opened by the caller, not by the
/// job's root), a single file bound, and a workspace that holds the rootfs refused.
#[test]
fn binds_from_private_directories_and_of_single_files_and_a_workspace_holding_the_rootfs() {
    if !require_root() {
        return;
    }
    let j = Job::new("private-binds");
    let private = j.workspace.join("../private");
    std::fs::create_dir_all(private.join("tools")).expect("private");
    std::fs::write(private.join("tools/t"), "tool\n").expect("tool");
    std::fs::write(private.join("one"), "one\n").expect("one");
    assert!(Command::new("chmod").arg("700").arg(&private).status().expect("chmod").success());
    let (d, f) = (format!("{}:/opt/tools", s(&private.join("tools"))), format!("{}:/etc/one", s(&private.join("one"))));
    let out = j.run(&["--ro-bind", &d, "--ro-bind", &f], "cat /opt/tools/t /etc/one; test -f /etc/one && echo file");
    assert_eq!(text(&out.stdout), "tool\none\nfile\n", "{}", text(&out.stderr));
    let outer = j.workspace.join("../outer");
    std::fs::create_dir_all(outer.join("root")).expect("outer");
    let out = sandbox(&j.root, &outer.join("root"), &outer, &[], "true");
    assert!(!out.status.success() && text(&out.stderr).contains("is inside --workspace"), "{}", text(&out.stderr));
    j.assert_nothing_left();
}

/// Item 12: a workspace owned by someone else: its owner is the job's uid inside, and what the
/// job writes belongs to that owner.
#[test]
fn the_workspace_owner_is_the_job_and_owns_its_output() {
    if !require_root() {
        return;
    }
    let j = Job::new("owner");
    std::fs::write(j.workspace.join("in.txt"), "x").expect("input");
    nix::unistd::chown(&j.workspace, Some(nix::unistd::Uid::from_raw(4242)), Some(nix::unistd::Gid::from_raw(4343))).expect("chown");
    nix::unistd::chown(&j.workspace.join("in.txt"), Some(nix::unistd::Uid::from_raw(4242)), Some(nix::unistd::Gid::from_raw(4343))).expect("chown");
    let out = j.run(&[], "stat -c '%u %g' in.txt; echo made > out.txt && echo wrote");
    assert_eq!(text(&out.stdout), "1000 1000\nwrote\n", "{}", text(&out.stderr));
    let m = std::fs::metadata(j.workspace.join("out.txt")).expect("out.txt");
    assert_eq!((m.uid(), m.gid()), (4242, 4343));
    j.assert_nothing_left();
}

/// bubblewrap's flags: --setenv, --chdir, --bind (read-write, nosuid, nodev, the source's owner is
/// the job), --tmpfs (sized), --hostname; and binds that would hide the job's own mounts refused.
#[test]
fn setenv_chdir_bind_tmpfs_and_hostname_as_seen_from_inside() {
    if !require_root() {
        return;
    }
    let j = Job::new("flags");
    let cache = j.workspace.join("../cache");
    std::fs::create_dir(&cache).expect("cache");
    std::fs::create_dir(j.workspace.join("sub")).expect("sub");
    let bind = format!("{}:/cache", s(&cache));
    let opts =
        ["--setenv", "FOO=bar baz", "--setenv", "HOME=/tmp", "--chdir", "/workspace/sub", "--bind", &bind, "--tmpfs", "/scratch:8m", "--hostname", "buildbox"];
    let script = "echo \"$FOO|$HOME\"; pwd; hostname; echo c > /cache/c && echo cache-ok; echo s > /scratch/s && echo scratch-ok; \
                  grep -E ' /(cache|scratch) ' /proc/self/mountinfo | cut -d' ' -f5,6 | sort; df -k /scratch | tail -1 | tr -s ' ' | cut -d' ' -f2";
    let out = j.run(&opts, script);
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(&lines[..5], ["bar baz|/tmp", "/workspace/sub", "buildbox", "cache-ok", "scratch-ok"], "{stdout} {}", text(&out.stderr));
    assert!(lines[5].starts_with("/cache rw,nosuid,nodev") && lines[6].starts_with("/scratch rw,nosuid,nodev"), "{stdout}");
    assert_eq!(lines[7], "8192", "{stdout}");
    let m = std::fs::metadata(cache.join("c")).expect("cache file");
    assert_eq!((m.uid(), m.gid()), (0, 0), "the cache's owner (root, the caller) owns what the job wrote");
    for (opt, arg, needle) in [
        ("--ro-bind", bind.replace("/cache", "/workspace"), "/workspace"),
        ("--bind", bind.replace("/cache", "/proc"), "/proc"),
        ("--tmpfs", "/dev".into(), "/dev"),
        ("--tmpfs", "/sys/x".into(), "/sys"),
    ] {
        let out = j.run(&[opt, &arg], "true");
        let err = text(&out.stderr);
        assert!(!out.status.success() && err.contains(opt) && err.contains(needle), "{opt} {arg}: {err}");
    }
    j.assert_nothing_left();
}

/// Item 24's last part: `profile --output` into a directory the container writes, where it plants
/// a symlink to a host file: the link is replaced by the profile, the host file is untouched.
#[test]
fn profile_output_is_not_written_through_a_symlink_the_container_planted() {
    if !require_root() {
        return;
    }
    let out_dir = common::scratch_dir("profile-planted");
    let host = out_dir.join("../profile-planted-host");
    std::fs::write(&host, "precious\n").expect("host file");
    let mut b = common::Bundle::new(&format!("ln -s {} /out/profile.json", s(&host)));
    b.mount(serde_json::json!({"destination": "/out", "type": "bind", "source": out_dir, "options": ["rbind", "rw"]}));
    b.write();
    let prof = out_dir.join("profile.json");
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let out = b.testudo(&["profile", "--bundle", &bundle, "--output", s(&prof), &b.id]);
    assert!(out.status.success(), "profile: {}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&host).expect("host file"), "precious\n", "the profile went through the container's symlink");
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(&prof).expect("profile")).expect("json");
    assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
}

/// The lines of `seen` (a terminal's output) without the terminal's carriage returns.
fn tty_lines(seen: &str) -> Vec<String> {
    seen.split('\n').map(|l| l.trim_end_matches('\r').to_string()).collect()
}

/// Issue 22 item 8: `--tty` gives the job a new pty of its own devpts (stdout, stderr and stdin),
/// in a session of its own led by the job's init, with that pty as controlling terminal; testudo
/// relays the master to its stdout, completely and in order, counted by --output-limit; the exit
/// code and the report are the job's. With --stdin the caller's pipe stays the job's stdin.
#[test]
fn tty_gives_the_job_a_pty_of_its_own_relayed_and_counted() {
    if !require_root() {
        return;
    }
    let j = Job::new("tty-flag");
    let script = "for fd in 0 1 2; do test -t $fd && echo tty-$fd; done; tty; stat -L -c %d /proc/self/fd/1; stat -c %d /dev/pts/ptmx; \
                  awk '{print \"sid=\" $6, \"tty_nr=\" $7}' /proc/$$/stat; stty size; \
                  for i in $(seq 500); do echo out$i; echo err$i >&2; done; exit 3";
    let out = j.run(&["--tty"], script);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout} {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "stderr too goes through the pty");
    let lines = tty_lines(&stdout);
    assert_eq!(&lines[..4], ["tty-0", "tty-1", "tty-2", "/dev/pts/0"], "{stdout}");
    assert_eq!(lines[4], lines[5], "the pty is of the job's own devpts: {stdout}");
    let host_pts = std::fs::metadata("/dev/pts/ptmx").expect("host devpts").dev();
    assert_ne!(lines[4], host_pts.to_string(), "not a pty of the host's devpts: {stdout}");
    let (sid, tty_nr) = lines[6].split_once(' ').expect("sid and tty_nr");
    assert_eq!(sid, "sid=1", "the session of the job's init, not the caller's: {stdout}");
    assert_ne!(tty_nr, "tty_nr=0", "the pty is the controlling terminal: {stdout}");
    assert_eq!(lines[7], "24 80", "a caller without a terminal gives the default size: {stdout}");
    let want: String = (1..=500).map(|i| format!("out{i}\r\nerr{i}\r\n")).collect();
    assert!(stdout.ends_with(&want), "complete and in order: {}", &stdout[stdout.len().saturating_sub(300)..]);
    let r = j.report();
    assert_eq!((r["exit"].as_i64(), r["reason"].as_str()), (Some(3), Some("exited")), "{r}");
    assert_eq!((r["stdoutBytes"].as_u64(), r["outputMerged"].as_bool()), (Some(stdout.len() as u64), Some(true)), "{r}");
    assert!(r["stderrBytes"].is_null(), "{r}");
    j.assert_nothing_left();

    // --stdin: the caller's pipe is the job's stdin, the pty its output.
    let mut c = j.command(&["--tty", "--stdin"], &["sh", "-c", "readlink /proc/self/fd/0 | cut -d: -f1; test -t 1 && echo tty-1; cat"]);
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sandbox");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(b"piped-in\n").expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(text(&out.stdout), "pipe\r\ntty-1\r\npiped-in\r\n", "{}", text(&out.stderr));
    j.assert_nothing_left();

    // The output limit counts what the pty shows, and kills past it.
    let out = j.run(&["--tty", "--output-limit", "64k"], "yes");
    assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
    assert!(!out.stdout.is_empty() && out.stdout.len() <= 64 << 10, "{}", out.stdout.len());
    let r = j.report();
    assert_eq!((r["reason"].as_str(), r["jobExit"].as_i64()), (Some("output-limit"), Some(137)), "{r}");
    j.assert_nothing_left();
}

/// Item 8 with item 1 (CVE-2017-5226 class): with `--tty` on the caller's terminal, TIOCSTI on
/// any of the job's stdio fds or on its /dev/tty types into the job's own pty (the job reads it
/// back), never into the caller's terminal, whose input queue stays empty. A profile that allows
/// every ioctl shows it is the pty, not the filter, that keeps it there; the build profile refuses
/// TIOCSTI besides. The probe run straight on the terminal shows the queue would show it.
#[test]
fn tiocsti_with_tty_types_only_into_the_jobs_own_pty() {
    if !require_root() {
        return;
    }
    let Some(probe) = probe::binary() else { return };
    let j = Job::new("tty-tiocsti");
    // The control: on the terminal itself, TIOCSTI lands in its input queue.
    let mut c = Command::new(probe);
    c.args(["tiocsti", "1", "control\n"]);
    let (_, seen, term) = common::on_a_terminal(c, false, "");
    assert_eq!(term.pending_input(), "control\n", "the control: {seen:?}");

    let mut profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("seccomp-profiles/build-sandbox.json")).expect("profile"))
            .expect("json");
    let rules = profile["syscalls"].as_array_mut().expect("syscalls");
    rules.retain(|r| !r["names"].as_array().is_some_and(|n| n.iter().any(|n| n == "ioctl")));
    rules.push(serde_json::json!({"names": ["ioctl"], "action": "SCMP_ACT_ALLOW"}));
    let any_ioctl = j.workspace.join("../any-ioctl.json");
    std::fs::write(&any_ioctl, profile.to_string()).expect("profile");
    let bind = format!("{}:/opt/probe", s(probe));
    let inject = "exec 3</dev/tty; for fd in 0 1 2 3; do /opt/probe tiocsti $fd \"inj-$fd\n\"; done";
    // What was pushed is read back (without waiting: it is there already, or nothing is).
    let read_back = "; for v in a b c d; do read -t 5 $v; done; echo own=$a,$b,$c,$d";
    for (profile, want, own) in [(s(&any_ioctl), "OK 0", Some("own=inj-0,inj-1,inj-2,inj-3")), ("build", "ERR 1", None)] {
        let script = format!("{inject}{}; true", if own.is_some() { read_back } else { "" });
        let c = j.command(&["--tty", "--ro-bind", &bind, "--profile", profile, "--timeout", "60"], &["sh", "-c", &script]);
        let (code, seen, term) = common::on_a_terminal(c, false, "");
        let lines = tty_lines(&seen);
        let probes: Vec<&str> = lines.iter().map(|l| l.trim()).filter(|l| l.starts_with("OK") || l.starts_with("ERR")).collect();
        assert_eq!(probes, [want; 4], "{profile}: {seen:?}");
        if let Some(own) = own {
            assert!(lines.iter().any(|l| l == own), "{profile}: the job reads its own input back: {seen:?}");
        }
        assert_eq!(code, 0, "{profile}: {seen:?}");
        assert_eq!(term.pending_input(), "", "{profile}: nothing reached the caller's terminal: {seen:?}");
        j.assert_nothing_left();
    }
    // The caller's window size is the pty's.
    let (_, seen, _) = common::on_a_terminal(j.command(&["--tty"], &["stty", "size"]), false, "");
    assert!(tty_lines(&seen).iter().any(|l| l == "40 120"), "{seen:?}");
    j.assert_nothing_left();
}

/// `--tty` passes the caller's window changes on: the job's pty starts at the caller's size;
/// when the caller's terminal is resized (TIOCSWINSZ on its master: the kernel sends SIGWINCH to
/// testudo, the terminal's foreground process group), the job's pty takes the new size, which
/// the job reads with `stty size` (its pty's, not the caller's terminal, which it never holds).
#[test]
fn tty_passes_the_callers_new_window_size_to_the_job() {
    if !require_root() {
        return;
    }
    let j = Job::new("tty-winch");
    // Bounded: without the change the job gives up after 10 s and prints the old size again.
    let script = "echo first=$(stty size); echo ready; i=0; \
                  while [ \"$(stty size)\" = '40 120' ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; echo second=$(stty size)";
    let mut resized = false;
    let c = j.command(&["--tty", "--timeout", "60"], &["sh", "-c", script]);
    let (code, seen, _) = common::on_a_terminal_with(c, false, "", |seen, master| {
        if !resized && seen.contains("ready") {
            let ws = libc::winsize { ws_row: 33, ws_col: 101, ws_xpixel: 0, ws_ypixel: 0 };
            // SAFETY: TIOCSWINSZ reads the winsize through the pointer, which lives across the call.
            assert_eq!(unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(master), libc::TIOCSWINSZ, &ws) }, 0, "resize the caller's terminal");
            resized = true;
        }
    });
    assert_eq!(code, 0, "{seen:?}");
    let lines = tty_lines(&seen);
    assert!(lines.iter().any(|l| l == "first=40 120"), "the caller's size at the start: {seen:?}");
    assert!(lines.iter().any(|l| l == "second=33 101"), "the caller's new size: {seen:?}");
    j.assert_nothing_left();
}

/// The missing flags of issue 22: `--env-file` lines (comments and blank lines skipped, values
/// as they are), then `--setenv`, which wins; a bad line names the file and its number; a FIFO,
/// a device or a symlink is refused before anything runs (a FIFO without blocking).
#[test]
fn env_file_lines_then_setenv_as_seen_from_inside() {
    if !require_root() {
        return;
    }
    let j = Job::new("env-file");
    let dir = j.workspace.join("..");
    let file = dir.join("build.env");
    std::fs::write(&file, "# the build's\n\nCC=gcc\n  CFLAGS=-O2 -g\nQUOTED=\"as is\"\nEMPTY=\nOVERRIDDEN=file\nPATH=/usr/bin:/bin\n").expect("env file");
    let out = j.run(&["--env-file", s(&file), "--setenv", "OVERRIDDEN=setenv"], "env | sort");
    let env = text(&out.stdout);
    for want in ["CC=gcc", "CFLAGS=-O2 -g", "QUOTED=\"as is\"", "EMPTY=", "OVERRIDDEN=setenv", "PATH=/usr/bin:/bin"] {
        assert!(env.lines().any(|l| l == want), "{want}: {env} {}", text(&out.stderr));
    }
    assert!(!env.contains('#') && !env.contains("OVERRIDDEN=file"), "{env}");

    std::fs::write(&file, "A=1\n# fine\nNO_EQUALS_SIGN\n").expect("env file");
    let out = j.run(&["--env-file", s(&file)], "echo ran");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(126), "{err}");
    assert!(err.contains("--env-file") && err.contains("build.env") && err.contains("line 3") && !text(&out.stdout).contains("ran"), "{err}");

    let fifo = dir.join("env.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let link = dir.join("env.link");
    std::os::unix::fs::symlink(&file, &link).expect("symlink");
    for (bad, needle) in [(fifo.as_path(), "not a regular file"), (Path::new("/dev/zero"), "not a regular file"), (link.as_path(), "symlink")] {
        let mut child =
            j.command(&["--env-file", s(bad)], &["echo", "ran"]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("sandbox");
        common::wait_for("the sandbox to refuse the env file", || child.try_wait().expect("wait").is_some());
        let out = child.wait_with_output().expect("output");
        let err = text(&out.stderr);
        assert!(out.status.code() == Some(126) && err.contains(needle) && text(&out.stdout).is_empty(), "{bad:?}: {err}");
    }
    j.assert_nothing_left();
}

/// Opt-in network: `--net host` keeps the job in the host's network namespace (bubblewrap's
/// --share-net), said once on stderr and in the report; by default the job has its own, with lo
/// up, and a listener of the host's 127.0.0.1 is out of its reach. The build profile lets a TCP
/// client through either way. Unknown values are refused.
#[test]
fn net_host_shares_the_hosts_network_namespace_and_says_so() {
    if !require_root() {
        return;
    }
    let j = Job::new("net-host");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut got = String::new();
            let _ = std::io::Read::read_to_string(&mut conn.expect("accept"), &mut got);
            let _ = tx.send(got);
        }
    });
    let host_net = common::ns_link("self", "net");
    let script = format!(
        "readlink /proc/self/ns/net; ip link show lo | head -1 | cut -d' ' -f3; echo hi | nc 127.0.0.1 {port} && echo connected || echo refused; \
         ls /sys/class/net | grep -x lo"
    );

    let out = j.run(&[], &script);
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout} {}", text(&out.stderr));
    assert_ne!(lines[0], host_net, "a network namespace of its own: {stdout}");
    assert!(lines[1].contains(",UP"), "lo is up: {stdout}");
    assert_eq!(lines[2], "refused", "the host's listener is out of reach: {stdout}");
    assert!(rx.try_recv().is_err(), "nothing reached the host's listener");
    assert!(!text(&out.stderr).contains("--net"), "{}", text(&out.stderr));
    assert_eq!(j.report()["confinement"]["net"], "none");

    let out = j.run(&["--net", "host"], &script);
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout} {}", text(&out.stderr));
    assert_eq!(lines[0], host_net, "the host's network namespace: {stdout}");
    assert_eq!(lines[2], "connected", "{stdout}");
    assert_eq!(lines[3], "lo", "/sys is there (the host's, read-only): {stdout}");
    assert_eq!(rx.recv().expect("a connection"), "hi\n");
    let err = text(&out.stderr);
    assert_eq!(err.matches("--net host").count(), 1, "said once: {err}");
    assert!(err.contains("host's network namespace"), "{err}");
    assert_eq!(j.report()["confinement"]["net"], "host");

    let out = j.run(&["--net", "bridge"], "echo ran");
    assert!(out.status.code() == Some(126) && text(&out.stderr).contains("--net") && text(&out.stderr).contains("bridge"), "{}", text(&out.stderr));
    j.assert_nothing_left();
}

/// The README's recipe, run as written there (the lines are checked to be the README's): an
/// empty directory with the usr-merge links as the rootfs, the host's /usr and /etc bound
/// read-only. From inside: python3 runs, /etc/os-release reads, the workspace is writable and /
/// is not; the rootfs directory holds the links and nothing else afterwards.
#[test]
fn the_readme_recipe_for_a_rootfs_of_the_hosts_usr_and_etc_runs() {
    if !require_root() {
        return;
    }
    const SETUP: &str = r#"mkdir -p "$root" && for d in bin sbin lib lib64; do ln -sfn "usr/$d" "$root/$d"; done"#;
    const RUN: &str = r#"testudo sandbox --rootfs "$root" --ro-bind /usr:/usr --ro-bind /etc:/etc --workspace "$PWD" --"#;
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README");
    assert!(readme.contains(SETUP) && readme.contains(RUN), "the README's recipe is the one tested here");
    let j = Job::new("host-rootfs");
    let root = j.workspace.join("../hostroot");
    let job = "python3 -c 'import sys; print(\"python\", sys.version_info[0])'; . /etc/os-release && echo \"$ID\"; \
               echo made > /workspace/made && echo ws-ok; touch /x 2>/dev/null || echo root-ro";
    let script = format!("testudo() {{ {} --root {} \"$@\"; }}; root={}; {SETUP}; {RUN} sh -c '{}'", BIN, s(&j.root), s(&root), job.replace('\'', r"'\''"));
    let out = Command::new("bash").arg("-c").arg(&script).current_dir(&j.workspace).stdin(Stdio::null()).output().expect("bash");
    let stdout = text(&out.stdout);
    assert_eq!(stdout, "python 3\ndebian\nws-ok\nroot-ro\n", "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(j.workspace.join("made")).expect("made"), "made\n");
    let mut left: Vec<String> = std::fs::read_dir(&root).expect("rootfs").flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["bin", "lib", "lib64", "sbin"]);
    j.assert_nothing_left();
}

/// A hybrid host: the job joins the v1 hierarchies of its limits (cpu, memory, pids) and no
/// other (devices is enforced by the v2 program, the rest has nothing to limit), as the host sees
/// its process and as its own /sys/fs/cgroup shows.
#[test]
fn on_a_hybrid_host_the_job_joins_only_the_v1_hierarchies_of_its_limits() {
    if !require_root() || !Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        return;
    }
    let j = Job::new("v1-only");
    let mut c = j.spawn(&[], "ls /sys/fs/cgroup | tr '\\n' ' '; echo; sleep 30");
    let inside = first_line(&mut c);
    let id = j.only_container();
    let procs = std::fs::read_to_string(format!("/sys/fs/cgroup/unified/testudo/{id}/cgroup.procs")).expect("job's cgroup.procs");
    let pid = procs.lines().last().expect("a process in the job's cgroup").to_string();
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("the job's /proc/PID/cgroup");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let _ = c.wait();
    let mut joined: Vec<&str> = cgroups
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':').skip(1);
            f.next().zip(f.next())
        })
        .filter(|(ctrl, path)| !ctrl.is_empty() && path.contains(id.as_str()))
        .map(|(ctrl, _)| ctrl)
        .collect();
    joined.sort();
    let want: Vec<&str> = ["cpu", "memory", "pids"].into_iter().filter(|c| Path::new("/sys/fs/cgroup").join(c).exists()).collect();
    assert_eq!(joined, want, "{cgroups}");
    let mut seen: Vec<&str> = inside.split_whitespace().filter(|h| *h != "unified").collect();
    seen.sort();
    assert_eq!(seen, want, "the job's /sys/fs/cgroup: {inside}");
    j.assert_nothing_left();
}
