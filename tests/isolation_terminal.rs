//! Terminal (issue 3): the pty master reaches --console-socket by SCM_RIGHTS with the pty name as
//! payload, and a program drives the container's shell through it; `exec --tty` the same; `run`
//! in the foreground attaches the pty to the caller's terminal (under `script`).

mod common;
mod probe;

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use common::{require_root, scratch_dir, Bundle};

/// Receive one fd and its payload from the first connection to `l`.
fn receive_master(l: &UnixListener) -> (OwnedFd, String) {
    l.set_nonblocking(false).expect("blocking");
    let (conn, _) = l.accept().expect("accept");
    let mut buf = [0u8; 256];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).expect("recvmsg");
    let mut fd = None;
    for c in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel installed this fd for us with SCM_RIGHTS; nothing else owns it.
            fd = fds.first().map(|&f| unsafe { OwnedFd::from_raw_fd(f) });
        }
    }
    let n = msg.bytes;
    let name = String::from_utf8_lossy(&buf[..n]).into_owned();
    (fd.expect("no fd in the console socket message"), name)
}

/// Read from the master until `needle` shows up (or panic after a few seconds); returns all read.
fn read_until(master: &OwnedFd, needle: &str) -> String {
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        assert!(Instant::now() < deadline, "never saw {needle:?}; got {seen:?}");
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(200u16)).expect("poll") == 0 {
            continue;
        }
        match nix::unistd::read(master, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    seen
}

fn write_all(master: &OwnedFd, s: &str) {
    let mut done = 0;
    while done < s.len() {
        done += nix::unistd::write(master, &s.as_bytes()[done..]).expect("write pty");
    }
}

fn terminal_bundle(script: &str) -> Bundle {
    let mut b = Bundle::new(script);
    b.config["process"]["terminal"] = true.into();
    b.config["process"]["consoleSize"] = serde_json::json!({"height": 33, "width": 111});
    b.config["process"]["args"] = serde_json::json!(["sh"]);
    b
}

#[test]
fn the_console_socket_gets_the_master_and_drives_the_shell() {
    if !require_root() {
        return;
    }
    let dir = scratch_dir("console");
    let sock = dir.join("console.sock");
    let l = UnixListener::bind(&sock).expect("bind");
    let b = terminal_bundle("");
    b.write();
    let out = b.testudo(&["create", "--bundle", b.dir.to_str().expect("utf8"), "--console-socket", sock.to_str().expect("utf8"), &b.id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (master, name) = receive_master(&l);
    assert_eq!(name, "/dev/pts/0", "payload is the pty's name in the container's own devpts");
    assert!(b.testudo(&["start", &b.id]).status.success());
    write_all(&master, "tty; stat -c 'console %t:%T' /dev/console; stty size; echo answer-$((6*7)); exit\n");
    let seen = read_until(&master, "answer-42");
    assert!(seen.contains("/dev/pts/0\r\n"), "stdio is the pty: {seen:?}");
    assert!(seen.contains("console 88:0\r\n"), "/dev/console is the pty: {seen:?}");
    assert!(seen.contains("33 111\r\n"), "consoleSize applied: {seen:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn exec_tty_sends_a_new_pty_to_the_console_socket() {
    if !require_root() {
        return;
    }
    let dir = scratch_dir("console-exec");
    let sock = dir.join("exec.sock");
    let l = UnixListener::bind(&sock).expect("bind");
    let b = Bundle::new("exec sleep 100");
    b.start();
    let out = b.testudo(&["exec", "--tty", "--detach", "--console-socket", sock.to_str().expect("utf8"), &b.id, "sh"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (master, name) = receive_master(&l);
    assert!(name.starts_with("/dev/pts/"), "{name}");
    write_all(&master, "tty; echo pid-one-is-$(cat /proc/1/comm); exit\n");
    let seen = read_until(&master, "pid-one-is-sleep");
    assert!(seen.contains(&format!("{name}\r\n")), "{seen:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn foreground_run_attaches_the_pty_to_the_callers_terminal() {
    if !require_root() {
        return;
    }
    if std::process::Command::new("script").arg("--version").output().is_err() {
        common::skip("no script(1)");
        return;
    }
    let mut b = terminal_bundle("");
    b.config["process"]["args"] = serde_json::json!(["sh", "-c", "tty; read line; echo got-$line; exit 7"]);
    b.write();
    let cmd = format!("{} --root {} run --bundle {} {}", common::BIN, b.root.display(), b.dir.display(), b.id);
    let dir = scratch_dir("script");
    let out_path = dir.join("out");
    // script(1) gives testudo a pty as its terminal; what we pipe in is typed into it.
    let mut child = std::process::Command::new("script")
        .args(["-qefc", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&out_path).expect("out"))
        .spawn()
        .expect("script");
    std::thread::sleep(Duration::from_millis(300));
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(b"typed-in\n").expect("type");
    let st = child.wait().expect("wait");
    let out = std::fs::read_to_string(&out_path).expect("out");
    assert!(out.contains("/dev/pts/0"), "the container's stdio is its own pty: {out:?}");
    assert!(out.contains("got-typed-in"), "the caller's terminal input reached the container: {out:?}");
    assert_eq!(st.code(), Some(7), "run's exit code through script: {out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_console_socket_closed_by_its_peer_fails_create_clearly() {
    if !require_root() {
        return;
    }
    let dir = scratch_dir("console-closed");
    let sock = dir.join("closed.sock");
    let l = UnixListener::bind(&sock).expect("bind");
    // The peer accepts and hangs up before the pty master can be sent.
    let t = std::thread::spawn(move || drop(l.accept().expect("accept")));
    let b = terminal_bundle("");
    b.write();
    let out = b.testudo(&["create", "--bundle", b.dir.to_str().expect("utf8"), "--console-socket", sock.to_str().expect("utf8"), &b.id]);
    t.join().expect("accept thread");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("send pty master") || err.contains("connection reset"), "{err}");
    assert!(!b.root.join(&b.id).exists(), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn detached_run_with_a_console_socket_returns_and_the_container_runs_on_the_pty() {
    if !require_root() {
        return;
    }
    let dir = scratch_dir("console-run-detached");
    let sock = dir.join("run.sock");
    let l = UnixListener::bind(&sock).expect("bind");
    let b = terminal_bundle("");
    b.write();
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let out = b.testudo(&["run", "-d", "--console-socket", sock.to_str().expect("utf8"), "--bundle", &bundle, &b.id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // run -d has returned, and the shell waits on the pty for input no one has sent yet.
    assert_eq!(b.status(), "running");
    let (master, name) = receive_master(&l);
    assert_eq!(name, "/dev/pts/0");
    write_all(&master, "tty; echo init-is-$$; echo answer-$((6*7))\n");
    let seen = read_until(&master, "answer-42");
    assert!(seen.contains("/dev/pts/0\r\n"), "stdio is the pty: {seen:?}");
    assert!(seen.contains("init-is-1\r\n"), "the shell on the pty is the container's init: {seen:?}");
    write_all(&master, "exit\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.status() != "stopped" {
        assert!(Instant::now() < deadline, "the container did not stop after exit: {}", b.status());
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The probe's TIOCSTI result on the container's stdin (the caller's terminal), plus the
/// container process's controlling tty (field 7 of /proc/self/stat: 0 is none).
const TIOCSTI_SCRIPT: &str = "awk '{print \"tty_nr=\" $7}' /proc/self/stat; /dev/probe tiocsti 0 'id>/tmp/pwned'; /dev/probe tiocsti 0 x high";

fn probe_lines(seen: &str) -> Vec<String> {
    seen.lines().map(|l| l.trim().to_string()).filter(|l| l.starts_with("OK") || l.starts_with("ERR")).collect()
}

/// CVE-2017-5226 class, issue 25 item 1: without a session of its own, a container whose stdio is
/// the caller's terminal has it as its controlling tty and can type into the caller's shell with
/// TIOCSTI, no capability needed. No seccomp profile here: the session alone must stop it.
#[test]
fn a_container_on_the_callers_terminal_is_in_a_session_of_its_own_and_cannot_type_into_it() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(TIOCSTI_SCRIPT);
    if !probe::add(&mut b) {
        return;
    }
    b.config["linux"].as_object_mut().expect("linux").remove("seccomp");
    b.write();
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let (_, seen) = common::on_callers_terminal(b.cmd(&["run", "--bundle", &bundle, &b.id]));
    assert!(seen.contains("tty_nr=0"), "the container has no controlling terminal: {seen:?}");
    assert_eq!(probe_lines(&seen), ["ERR 1", "ERR 1"], "TIOCSTI into the caller's terminal is refused: {seen:?}");
    assert!(!seen.contains("id>/tmp/pwned"), "nothing was typed into the caller's terminal: {seen:?}");

    // The same for a process exec'd into a running container.
    let mut b = Bundle::new("exec sleep 100");
    assert!(probe::add(&mut b));
    b.config["linux"].as_object_mut().expect("linux").remove("seccomp");
    b.start();
    let (_, seen) = common::on_callers_terminal(b.cmd(&["exec", &b.id, "sh", "-c", TIOCSTI_SCRIPT]));
    assert!(seen.contains("tty_nr=0"), "the exec'd process has no controlling terminal: {seen:?}");
    assert_eq!(probe_lines(&seen), ["ERR 1", "ERR 1"], "exec: TIOCSTI refused: {seen:?}");
}

/// With CAP_SYS_ADMIN (of the host's user namespace) the kernel allows TIOCSTI on any terminal:
/// the default profile refuses it by argument (its default action, EPERM), also with the
/// request's high bits set, which the kernel truncates away.
#[test]
fn the_default_profile_refuses_tiocsti_to_a_container_with_cap_sys_admin() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(TIOCSTI_SCRIPT);
    if !probe::add(&mut b) {
        return;
    }
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set].as_array_mut().expect("caps").push("CAP_SYS_ADMIN".into());
    }
    assert!(b.config["linux"]["seccomp"].is_object(), "the default spec has the default profile");
    b.write();
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let (_, seen) = common::on_callers_terminal(b.cmd(&["run", "--bundle", &bundle, &b.id]));
    assert_eq!(probe_lines(&seen), ["ERR 1", "ERR 1"], "TIOCSTI refused by the profile: {seen:?}");
}

/// What the process reports about its fd 0 and its session, one "key=value" a line.
const WHERE_AM_I: &str = "echo tty=$(tty); echo fd0=$(readlink /proc/self/fd/0); echo fd0dev=$(stat -L -c %d /proc/self/fd/0); \
     echo ptsdev=$(stat -c %d /dev/pts/ptmx); echo pid=$$; awk '{print \"sid=\" $6}' /proc/$$/stat; echo size=$(stty size)";

fn value<'a>(seen: &'a str, key: &str) -> &'a str {
    seen.lines().find_map(|l| l.trim().strip_prefix(key).and_then(|r| r.strip_prefix('='))).unwrap_or_else(|| panic!("no {key}= in {seen:?}"))
}

/// Issue 24: a foreground `exec -t` (no --console-socket) gets a new pty, relayed to and from the
/// caller's terminal as runc does: its stdin is a /dev/pts of the container's own devpts, in a
/// session of its own, with the caller's window size; what is typed reaches it; its exit code
/// is exec's; the caller's terminal modes are back as they were.
#[test]
fn foreground_exec_tty_relays_a_new_pty_to_the_callers_terminal() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("exec sleep 100");
    b.start();
    let script = format!("{WHERE_AM_I}; read line; echo got-$line; exit 3");
    let (code, seen, term) = common::on_a_terminal(b.cmd(&["exec", "-t", &b.id, "sh", "-c", &script]), true, "typed-in\n");
    assert_eq!(code, 3, "exec's exit code is the process's: {seen:?}");
    assert!(value(&seen, "tty").starts_with("/dev/pts/"), "{seen:?}");
    assert_eq!(value(&seen, "tty"), value(&seen, "fd0"), "{seen:?}");
    assert_eq!(value(&seen, "fd0dev"), value(&seen, "ptsdev"), "stdin is a pty of the container's own devpts: {seen:?}");
    let callers = nix::sys::stat::fstat(&term.slave).expect("fstat").st_dev;
    assert_ne!(value(&seen, "fd0dev"), callers.to_string(), "not a pty of the caller's devpts: {seen:?}");
    assert_eq!(value(&seen, "sid"), value(&seen, "pid"), "a session of its own: {seen:?}");
    assert_eq!(value(&seen, "size"), "40 120", "the caller's window size: {seen:?}");
    assert!(seen.contains("got-typed-in"), "the caller's input reached the process: {seen:?}");
}

/// Two `yes > /dev/null` hogs, one a core, until dropped: the machine under load, as CI is.
struct Hogs(Vec<std::process::Child>);

impl Hogs {
    fn start() -> Hogs {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let hog = || std::process::Command::new("yes").stdout(std::process::Stdio::null()).spawn().expect("yes");
        Hogs((0..cores).map(|_| hog()).collect())
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A foreground `exec -t` or `run` (the pty relayed by testudo itself) has the caller's window
/// size before its process runs: a process that reads it as the very first thing it does reads
/// the caller's, every time, with every core busy (set after the process was let go, the size
/// came too late under load, and `stty size` read 0 0).
#[test]
fn foreground_tty_has_the_callers_size_before_the_process_runs() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("exec sleep 100");
    b.start();
    let mut run = terminal_bundle("");
    run.config["process"].as_object_mut().expect("process").remove("consoleSize");
    run.config["process"]["args"] = serde_json::json!(["stty", "size"]);
    run.write();
    let bundle = run.dir.to_str().expect("utf8").to_string();
    let _hogs = Hogs::start();
    for i in 0..20 {
        let (code, seen, _) = common::on_a_terminal(b.cmd(&["exec", "-t", &b.id, "stty", "size"]), true, "");
        assert_eq!((code, seen.trim()), (0, "40 120"), "exec, try {i}");
    }
    for i in 0..20 {
        let id = format!("{}-run{i}", run.id);
        let (code, seen, _) = common::on_a_terminal(run.cmd(&["run", "--bundle", &bundle, &id]), true, "");
        assert_eq!((code, seen.trim()), (0, "40 120"), "run, try {i}");
    }
}

/// Issue 24 with issue 25 item 1: TIOCSTI by a foreground `exec -t` or `run` on any of its stdio
/// fds types into its own new pty (it reads it back), never into the caller's terminal. testudo's
/// own stdin is /dev/null here, so nothing relays what lands in the caller's input queue: it
/// would still be there, for the caller's shell, when testudo exits.
#[test]
fn tiocsti_from_a_foreground_tty_process_stays_in_its_own_pty() {
    if !require_root() {
        return;
    }
    let script = "/dev/probe tiocsti 0 'inj-zero\n'; /dev/probe tiocsti 1 'inj-one\n'; /dev/probe tiocsti 2 'inj-two\n'; \
                  read -t 5 a; read -t 5 b; read -t 5 c; echo own=$a,$b,$c";
    let mut b = Bundle::new("exec sleep 100");
    if !probe::add(&mut b) {
        return;
    }
    b.config["linux"].as_object_mut().expect("linux").remove("seccomp");
    b.start();
    let (code, seen, term) = common::on_a_terminal(b.cmd(&["exec", "-t", &b.id, "sh", "-c", script]), false, "");
    assert_eq!(code, 0, "{seen:?}");
    assert_eq!(probe_lines(&seen), ["OK 0", "OK 0", "OK 0"], "the process may push input into its own pty: {seen:?}");
    assert!(seen.contains("own=inj-zero,inj-one,inj-two"), "and reads it back itself: {seen:?}");
    assert_eq!(term.pending_input(), "", "nothing reached the caller's terminal: {seen:?}");

    let mut b = terminal_bundle("");
    assert!(probe::add(&mut b));
    b.config["linux"].as_object_mut().expect("linux").remove("seccomp");
    b.config["process"]["args"] = serde_json::json!(["sh", "-c", script]);
    b.write();
    let bundle = b.dir.to_str().expect("utf8").to_string();
    let (code, seen, term) = common::on_a_terminal(b.cmd(&["run", "--bundle", &bundle, &b.id]), false, "");
    assert_eq!(code, 0, "{seen:?}");
    assert!(seen.contains("own=inj-zero,inj-one,inj-two"), "run: {seen:?}");
    assert_eq!(term.pending_input(), "", "run: nothing reached the caller's terminal: {seen:?}");
}
