//! Shared by the root integration tests: a busybox rootfs (built once per test binary), bundles
//! made from testudo's own default spec with per-test changes, and helpers to run the binary.
//! Every test asserts what the process inside the container sees.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const BIN: &str = env!("CARGO_BIN_EXE_testudo");

/// A test that cannot run here fails: a test that returns early would count as passed. Only
/// with TESTUDO_ALLOW_SKIP=1 (a developer's machine that lacks something, never CI or the VM)
/// does it print "SKIP: why" and pass.
pub fn skip(why: &str) {
    let allowed = std::env::var_os("TESTUDO_ALLOW_SKIP").is_some_and(|v| v == "1") && std::env::var_os("TESTUDO_IN_VM").is_none();
    assert!(allowed, "cannot run here: {why} (TESTUDO_ALLOW_SKIP=1 turns this into a skip)");
    eprintln!("SKIP: {why}");
}

/// Whether this test can run: root is required (see `skip`).
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    skip("needs root");
    false
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("testudo-tests-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// A busybox rootfs shared (read-only in spirit) by the tests of one binary.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let dir = scratch().join("rootfs");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/busybox-rootfs.sh");
        let st = Command::new("bash").arg(script).arg(&dir).status().expect("busybox-rootfs.sh");
        assert!(st.success(), "busybox-rootfs.sh failed");
        dir
    })
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A bundle directory, a state root and a container id of its own.
pub struct Bundle {
    pub dir: PathBuf,
    pub root: PathBuf,
    pub id: String,
    pub config: serde_json::Value,
}

impl Bundle {
    /// testudo's default spec (`testudo spec`), non-terminal, running `sh -c script`.
    pub fn new(script: &str) -> Bundle {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = scratch().join(format!("bundle-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("bundle dir");
        let out = Command::new(BIN).args(["spec", "--bundle"]).arg(&dir).output().expect("testudo spec");
        assert!(out.status.success(), "testudo spec: {}", String::from_utf8_lossy(&out.stderr));
        let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("config.json")).expect("read")).expect("json");
        config["root"]["path"] = serde_json::Value::String(rootfs().to_str().expect("utf8").to_string());
        config["process"]["terminal"] = false.into();
        config["process"]["args"] = serde_json::json!(["sh", "-c", script]);
        let root = dir.join("state");
        Bundle { dir, root, id: format!("t{}-{n}", std::process::id()), config }
    }

    /// Use a rootfs of the test's own (a copy it may tamper with).
    pub fn own_rootfs(&mut self) -> PathBuf {
        let dst = self.dir.join("rootfs");
        let st = Command::new("cp").arg("-a").arg(rootfs()).arg(&dst).status().expect("cp");
        assert!(st.success());
        self.config["root"]["path"] = "rootfs".into();
        dst
    }

    pub fn write(&self) {
        std::fs::write(self.dir.join("config.json"), serde_json::to_vec_pretty(&self.config).expect("json")).expect("write config");
    }

    /// `testudo --root R ARGS…` with the bundle as cwd.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(&self.root).args(args).current_dir(&self.dir);
        c
    }

    /// Run testudo to its exit. Output goes through files, not pipes: a created container's init
    /// inherits the caller's stdio and would hold a pipe open for as long as it lives.
    pub fn testudo(&self, args: &[&str]) -> Output {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let (o, e) = (self.dir.join(format!(".out{n}")), self.dir.join(format!(".err{n}")));
        let status = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).expect("stdout file"))
            .stderr(std::fs::File::create(&e).expect("stderr file"))
            .status()
            .expect("run testudo");
        let out = Output { status, stdout: std::fs::read(&o).unwrap_or_default(), stderr: std::fs::read(&e).unwrap_or_default() };
        let _ = std::fs::remove_file(o);
        let _ = std::fs::remove_file(e);
        out
    }

    /// `run` the container to completion: (exit code, stdout, stderr).
    pub fn run(&self) -> (i32, String, String) {
        self.write();
        let bundle = self.dir.to_str().expect("utf8").to_string();
        let out = self.testudo(&["run", "--bundle", &bundle, &self.id]);
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// `run` and require success; returns stdout.
    pub fn run_ok(&self) -> String {
        let (code, out, err) = self.run();
        assert_eq!(code, 0, "run failed: stdout={out} stderr={err}");
        out
    }

    pub fn create(&self) -> Output {
        self.write();
        let bundle = self.dir.to_str().expect("utf8").to_string();
        self.testudo(&["create", "--bundle", &bundle, &self.id])
    }

    pub fn state(&self) -> Option<serde_json::Value> {
        let out = self.testudo(&["state", &self.id]);
        out.status.success().then(|| serde_json::from_slice(&out.stdout).expect("state json"))
    }

    pub fn status(&self) -> String {
        self.state().map(|s| s["status"].as_str().unwrap_or("").to_string()).unwrap_or_else(|| "absent".into())
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = self.cmd(&["delete", "--force", &self.id]).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The value of a `Key:\tvalue` line of /proc/self/status printed by the container.
pub fn status_field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')).map(str::trim))
}

impl Bundle {
    /// `create` then `start`, both required to succeed; returns the init's host pid.
    pub fn start(&self) -> i32 {
        let out = self.create();
        assert!(out.status.success(), "create: {}", String::from_utf8_lossy(&out.stderr));
        let out = self.testudo(&["start", &self.id]);
        assert!(out.status.success(), "start: {}", String::from_utf8_lossy(&out.stderr));
        self.state().and_then(|s| s["pid"].as_i64()).expect("state pid") as i32
    }

    /// `create` that must fail; returns its stderr and checks nothing is left behind.
    pub fn create_err(&self) -> String {
        let out = self.create();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "create succeeded: {err}");
        assert!(!self.root.join(&self.id).exists(), "state dir left after a failed create: {err}");
        err
    }

    /// `exec ID ARGS…` to completion: (exit code, stdout, stderr).
    pub fn exec(&self, args: &[&str]) -> (i32, String, String) {
        let mut a = vec!["exec", self.id.as_str()];
        a.extend_from_slice(args);
        let out = self.testudo(&a);
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Add a namespace entry (with an optional path to join).
    pub fn namespace(&mut self, typ: &str, path: Option<&str>) {
        let list = self.config["linux"]["namespaces"].as_array_mut().expect("namespaces");
        list.retain(|n| n["type"] != typ);
        let mut ns = serde_json::json!({ "type": typ });
        if let Some(p) = path {
            ns["path"] = p.into();
        }
        list.push(ns);
    }

    pub fn drop_namespace(&mut self, typ: &str) {
        self.config["linux"]["namespaces"].as_array_mut().expect("namespaces").retain(|n| n["type"] != typ);
    }

    /// A new user namespace with these (container, host, size) uid and gid ranges.
    pub fn userns(&mut self, uids: &[(u32, u32, u32)], gids: &[(u32, u32, u32)]) {
        self.namespace("user", None);
        let maps = |m: &[(u32, u32, u32)]| {
            serde_json::Value::Array(m.iter().map(|&(c, h, n)| serde_json::json!({"containerID": c, "hostID": h, "size": n})).collect())
        };
        self.config["linux"]["uidMappings"] = maps(uids);
        self.config["linux"]["gidMappings"] = maps(gids);
    }

    pub fn mount(&mut self, m: serde_json::Value) {
        self.config["mounts"].as_array_mut().expect("mounts").push(m);
    }
}

/// `readlink /proc/<who>/ns/<name>`, e.g. "net:[4026531840]".
pub fn ns_link(who: &str, name: &str) -> String {
    std::fs::read_link(format!("/proc/{who}/ns/{name}")).expect("ns link").to_string_lossy().into_owned()
}

/// A directory of its own under the test binary's scratch dir, emptied first.
pub fn scratch_dir(name: &str) -> PathBuf {
    let d = scratch().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// Polls `ok` every 20 ms until it holds; fails the test after 20 s, naming `what`. For state the
/// container reaches on its own schedule (a shell forking its children after `start`): the runtime
/// has nothing to wait on there, and a loaded CI machine can take long to get there.
pub fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !ok() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Run `c` the way an interactive shell does: its stdio is a pty that is the caller's
/// controlling terminal (a session of the test's own, the pty's slave made its ctty). Returns the
/// exit code and everything the terminal showed.
pub fn on_callers_terminal(c: Command) -> (i32, String) {
    let (code, seen, _) = on_a_terminal(c, true, "");
    (code, seen)
}

/// A terminal of the test's own standing in for the caller's (40 rows, 120 columns): `c` runs in
/// a session of its own with it as controlling terminal and as stdout/stderr; stdin is the
/// terminal too, or /dev/null. `typed` waits in the terminal's input queue before `c` starts.
/// Returns the exit code, what the terminal showed and the terminal, kept open so that a test
/// can look at what is left in its input queue; the terminal's modes are as they were.
pub fn on_a_terminal(c: Command, stdin_too: bool, typed: &str) -> (i32, String, Terminal) {
    on_a_terminal_with(c, stdin_too, typed, |_, _| {})
}

/// `on_a_terminal`, with `react` called with all the terminal has shown so far and its master
/// after each read (to change the window size when the process says it is ready, say).
pub fn on_a_terminal_with(mut c: Command, stdin_too: bool, typed: &str, mut react: impl FnMut(&str, &std::os::fd::OwnedFd)) -> (i32, String, Terminal) {
    use std::os::fd::AsFd;
    use std::os::unix::process::CommandExt;
    let ws = nix::pty::Winsize { ws_row: 40, ws_col: 120, ws_xpixel: 0, ws_ypixel: 0 };
    let pty = nix::pty::openpty(Some(&ws), None).expect("openpty");
    let before = nix::sys::termios::tcgetattr(&pty.slave).expect("tcgetattr");
    c.stdin(if stdin_too { Stdio::from(pty.slave.try_clone().expect("dup")) } else { Stdio::null() });
    c.stdout(Stdio::from(pty.slave.try_clone().expect("dup")));
    c.stderr(Stdio::from(pty.slave.try_clone().expect("dup")));
    // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and exec.
    unsafe {
        c.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(1, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut done = 0;
    while done < typed.len() {
        done += nix::unistd::write(&pty.master, &typed.as_bytes()[done..]).expect("write pty");
    }
    let mut child = c.spawn().expect("testudo on a terminal");
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        assert!(std::time::Instant::now() < deadline, "testudo on a terminal did not finish: {seen:?}");
        let mut fds = [nix::poll::PollFd::new(pty.master.as_fd(), nix::poll::PollFlags::POLLIN)];
        if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(200u16)).expect("poll") == 0 {
            if child.try_wait().expect("wait").is_some() {
                break;
            }
            continue;
        }
        match nix::unistd::read(&pty.master, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                react(&seen, &pty.master);
            }
        }
    }
    let code = child.wait().expect("wait").code().unwrap_or(-1);
    let after = nix::sys::termios::tcgetattr(&pty.slave).expect("tcgetattr");
    assert_eq!(
        (before.local_flags, before.input_flags, before.output_flags),
        (after.local_flags, after.input_flags, after.output_flags),
        "the caller's terminal modes are restored: {seen:?}"
    );
    (code, seen, Terminal { master: pty.master, slave: pty.slave })
}

/// A terminal of `on_a_terminal`, both sides still open: closing the master hangs the slave up,
/// which empties its input queue, so a look at the queue needs the master kept.
pub struct Terminal {
    pub master: std::os::fd::OwnedFd,
    pub slave: std::os::fd::OwnedFd,
}

impl Terminal {
    /// What is waiting in the terminal's input queue (typed, or pushed there with TIOCSTI), read
    /// from its slave without waiting.
    pub fn pending_input(&self) -> String {
        let slave = &self.slave;
        let fl = nix::fcntl::fcntl(slave, nix::fcntl::FcntlArg::F_GETFL).expect("getfl");
        nix::fcntl::fcntl(slave, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::from_bits_truncate(fl) | nix::fcntl::OFlag::O_NONBLOCK)).expect("setfl");
        let mut buf = [0u8; 4096];
        match nix::unistd::read(slave, &mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(_) => String::new(),
        }
    }
}
