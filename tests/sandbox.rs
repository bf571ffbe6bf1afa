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
    let out = j.run(&["--landlock"], script);
    assert_eq!(text(&out.stdout), "ws-ok\ntmp-ok\nnull-ok\nshm-denied\n", "{}", text(&out.stderr));
    // The same job without Landlock writes /dev/shm: the denial above is Landlock's.
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
        (vec!["--net".into(), "host".into()], "--net \\\"host\\\"".into()),
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
    assert!(j.root.join(&id).join("bundle/config.json").exists(), "the bundle is not in the state dir");
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
    // server is stopped, not waited for).
    let script = "nc -l -p 8080 > /tmp/got & s=$!; n=0; until echo hello | nc 127.0.0.1 8080; do n=$((n+1)); [ $n -gt 100 ] && kill $s && break; \
                  sleep 0.1; done; wait; cat /tmp/got; ip link show lo";
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
