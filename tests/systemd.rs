//! The systemd cgroup driver where systemd is not (this host, CI): what must fail, and that it
//! fails naming what is wrong, leaving no state, no cgroup and no process behind. The driver
//! against a real systemd is proven in the VM (integration/suites.d/27-vm-systemd.sh).

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// `--systemd-cgroup create` with DBUS_SYSTEM_BUS_ADDRESS pointing at `bus`.
fn create_on(b: &Bundle, bus: &str) -> Output {
    b.write();
    let bundle = b.dir.to_str().expect("utf8").to_string();
    b.cmd(&["--systemd-cgroup", "create", "--bundle", &bundle, &b.id]).env("DBUS_SYSTEM_BUS_ADDRESS", format!("unix:path={bus}")).output().expect("run testudo")
}

/// Nothing of the container is left: no state directory, no scope cgroup.
fn nothing_left(b: &Bundle, scope: &str) {
    assert!(!b.root.join(&b.id).exists(), "state dir left");
    // The seccomp cache ("..seccomp") is the runtime's, not the container's.
    let entries: Vec<String> = std::fs::read_dir(&b.root)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| !n.starts_with("..")).collect())
        .unwrap_or_default();
    assert!(entries.is_empty(), "left under the root: {entries:?}");
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        assert!(!std::path::Path::new(root).join("system.slice").join(scope).exists(), "cgroup {scope} left under {root}");
    }
}

/// The message of the one error record create wrote (the text log form: msg="…").
fn stderr(o: &Output) -> String {
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "create succeeded: {text}");
    let msg = text.split_once("msg=\"").map_or(text.as_ref(), |(_, m)| m).trim_end();
    msg.strip_suffix('"').unwrap_or(msg).replace("\\\"", "\"")
}

#[test]
fn no_bus_is_a_create_error_naming_the_socket() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("true");
    b.config["linux"]["cgroupsPath"] = format!("system.slice:testudo:{}", b.id).into();
    let bus = b.dir.join("no-bus-here");
    let e = stderr(&create_on(&b, bus.to_str().expect("utf8")));
    assert!(e.ends_with(&format!("create: systemd cgroup driver: d-bus {}: connect: no such file or directory", bus.display())), "{e}");
    nothing_left(&b, &format!("testudo-{}.scope", b.id));
}

#[test]
fn a_bus_that_refuses_us_is_a_create_error() {
    if !require_root() {
        return;
    }
    let b = Bundle::new("true");
    let bus = b.dir.join("refusing-bus");
    let listener = std::os::unix::net::UnixListener::bind(&bus).expect("bind");
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = [0u8; 256];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"REJECTED EXTERNAL\r\n");
        }
    });
    let e = stderr(&create_on(&b, bus.to_str().expect("utf8")));
    assert!(
        e.ends_with(&format!("create: systemd cgroup driver: d-bus {}: the bus refused authentication as uid 0: \"REJECTED EXTERNAL\"", bus.display())),
        "{e}"
    );
    nothing_left(&b, &format!("testudo-{}.scope", b.id));
}

#[test]
fn a_path_is_refused_under_the_systemd_driver() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("true");
    b.config["linux"]["cgroupsPath"] = "/testudo/plain".into();
    let e = stderr(&create_on(&b, "/nonexistent"));
    assert!(
        e.ends_with("create: cgroupsPath \"/testudo/plain\": with --systemd-cgroup it must have the form slice:prefix:name (as \"system.slice:docker:<id>\")"),
        "{e}"
    );
    b.config["linux"]["cgroupsPath"] = "system:testudo:x".into();
    let e = stderr(&create_on(&b, "/nonexistent"));
    assert!(e.ends_with("create: cgroupsPath \"system:testudo:x\": slice \"system\": a slice name ends in \".slice\""), "{e}");
    nothing_left(&b, "testudo-x.scope");
}

#[test]
fn a_bad_property_annotation_is_refused_before_the_bus_is_asked() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("true");
    b.config["annotations"] = serde_json::json!({"org.systemd.property.TimeoutStopSec": "'soon'"});
    let e = stderr(&create_on(&b, "/nonexistent"));
    assert!(e.ends_with("create: annotation org.systemd.property.TimeoutStopSec=\"'soon'\": a ...Sec property takes a number of seconds"), "{e}");
    nothing_left(&b, &format!("testudo-{}.scope", b.id));
}

#[test]
fn features_say_systemd() {
    let out = std::process::Command::new(BIN).arg("features").output().expect("run");
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).expect("features json");
    assert_eq!(f["linux"]["cgroup"]["systemd"], true);
    assert_eq!(f["linux"]["cgroup"]["systemdUser"], true);
}

/// The unprivileged test user of tests/rootless.rs (made here too, idempotently, with the same
/// subordinate range): its uid and gid.
fn test_user() -> (u32, u32) {
    const USER: &str = "testudo-rl";
    let id = |flag: &str| Command::new("id").arg(flag).arg(USER).output().ok().filter(|o| o.status.success());
    if id("-u").is_none() {
        let st = Command::new("useradd").args(["--no-create-home", "--shell", "/usr/sbin/nologin", USER]).status().expect("useradd");
        assert!(st.success() || id("-u").is_some(), "useradd {USER} failed");
    }
    for file in ["/etc/subuid", "/etc/subgid"] {
        let line = format!("{USER}:300000:65536");
        if !std::fs::read_to_string(file).unwrap_or_default().lines().any(|l| l == line) {
            let mut f = std::fs::OpenOptions::new().append(true).create(true).open(file).expect("open subid file");
            writeln!(f, "{line}").expect("write subid file");
        }
    }
    let num = |flag: &str| String::from_utf8_lossy(&id(flag).expect("id").stdout).trim().parse::<u32>().expect("id number");
    (num("-u"), num("-g"))
}

fn own(p: &Path, uid: u32, gid: u32, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap_or_else(|e| panic!("chown {p:?}: {e}"));
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap_or_else(|e| panic!("chmod {p:?}: {e}"));
}

/// `testudo ARGS…` as the test user (setpriv, a clean environment plus `env`), output through
/// files (see common::Bundle::testudo).
fn as_user(bin: &Path, cwd: &Path, (uid, gid): (u32, u32), args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new("/usr/bin/setpriv");
    c.args(["--reuid", &uid.to_string(), "--regid", &gid.to_string(), "--clear-groups", "--inh-caps=-all", "--"]);
    c.arg(bin).args(args).current_dir(cwd).env_clear().env("PATH", "/usr/local/bin:/usr/bin:/bin");
    for (k, v) in env {
        c.env(k, v);
    }
    let (o, e) = (cwd.join(".out"), cwd.join(".err"));
    let status =
        c.stdin(Stdio::null()).stdout(std::fs::File::create(&o).expect("out")).stderr(std::fs::File::create(&e).expect("err")).status().expect("spawn");
    Output { status, stdout: std::fs::read(&o).unwrap_or_default(), stderr: std::fs::read(&e).unwrap_or_default() }
}

#[test]
fn rootless_without_the_users_bus_is_a_create_error_saying_what_to_do() {
    if !require_root() {
        return;
    }
    let user = test_user();
    let (uid, gid) = user;
    let b = Bundle::new("true");
    own(&b.dir, uid, gid, 0o755);
    let bin = b.dir.join("testudo");
    std::fs::copy(BIN, &bin).expect("copy testudo");
    own(&bin, 0, 0, 0o755);
    // A runtime dir of the user's own with no bus in it (this host has no user manager anyway).
    let xdg: PathBuf = b.dir.join("xdg");
    std::fs::create_dir(&xdg).expect("xdg");
    own(&xdg, uid, gid, 0o700);
    let env = [("XDG_RUNTIME_DIR", xdg.as_path())];
    std::fs::remove_file(b.dir.join("config.json")).expect("remove the root spec");
    let spec = as_user(&bin, &b.dir, user, &["spec", "--rootless"], &env);
    assert!(spec.status.success(), "spec --rootless: {}", String::from_utf8_lossy(&spec.stderr));
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(b.dir.join("config.json")).expect("read")).expect("json");
    config["root"]["path"] = b.config["root"]["path"].clone();
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["true"]);
    config["linux"]["resources"] = serde_json::json!({"memory": {"limit": 33554432}});
    std::fs::write(b.dir.join("config.json"), serde_json::to_vec_pretty(&config).expect("json")).expect("write config");

    let out = as_user(&bin, &b.dir, user, &["--systemd-cgroup", "create", "--bundle", b.dir.to_str().expect("utf8"), &b.id], &env);
    let e = stderr(&out);
    let bus = xdg.join("bus");
    assert!(e.contains(&format!("create: rootless --systemd-cgroup: the user's bus {} does not answer", bus.display())), "{e}");
    assert!(e.contains(&format!("no systemd user manager (user@{uid}.service)")), "{e}");
    assert!(e.contains("loginctl enable-linger <user>"), "{e}");
    assert!(e.ends_with(&format!("d-bus {}: connect: no such file or directory", bus.display())), "{e}");
    assert!(!xdg.join("testudo").join(&b.id).exists(), "state dir left");

    // The bus's address can also come from DBUS_SESSION_BUS_ADDRESS, which wins.
    let other = b.dir.join("elsewhere");
    let addr = PathBuf::from(format!("unix:path={}", other.display()));
    let out = as_user(
        &bin,
        &b.dir,
        user,
        &["--systemd-cgroup", "create", "--bundle", b.dir.to_str().expect("utf8"), &b.id],
        &[("XDG_RUNTIME_DIR", xdg.as_path()), ("DBUS_SESSION_BUS_ADDRESS", addr.as_path())],
    );
    let e = stderr(&out);
    assert!(e.ends_with(&format!("d-bus {}: connect: no such file or directory", other.display())), "{e}");
    assert!(!xdg.join("testudo").join(&b.id).exists(), "state dir left");
}
