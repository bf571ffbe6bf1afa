//! The systemd cgroup driver where systemd is not (this host, CI): what must fail, and that it
//! fails naming what is wrong, leaving no state, no cgroup and no process behind. The driver
//! against a real systemd is proven in the VM (integration/suites.d/27-vm-systemd.sh).

mod common;

use std::io::{Read, Write};
use std::process::Output;

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
    assert_eq!(f["linux"]["cgroup"]["systemdUser"], false);
}
