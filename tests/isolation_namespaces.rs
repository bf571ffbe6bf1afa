//! Namespaces (issue 3): all eight created, joined by path, shared when absent, joined by exec —
//! each shown by the namespace links and files the process inside the container sees.

mod common;

use std::process::Command;

use common::{ns_link, require_root, Bundle};

const ALL: [&str; 8] = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];

/// A script printing "name link" for every namespace of the shell.
fn print_links() -> String {
    ALL.iter().map(|n| format!("echo {n} $(readlink /proc/self/ns/{n}); ")).collect()
}

fn links_of(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(n, v)| ALL.contains(n) && v.contains(":["))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn all_eight(b: &mut Bundle) {
    for n in ["pid", "network", "ipc", "uts", "mount", "cgroup", "time"] {
        b.namespace(n, None);
    }
    b.userns(&[(0, 100000, 65536)], &[(0, 100000, 65536)]);
    b.config["linux"]["timeOffsets"] = serde_json::json!({
        "monotonic": {"secs": 86400, "nanosecs": 0},
        "boottime": {"secs": 31536000, "nanosecs": 0},
    });
}

#[test]
fn all_eight_namespaces_are_new_and_time_offsets_apply() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(&format!("{} cat /proc/self/timens_offsets; cat /proc/uptime", print_links()));
    all_eight(&mut b);
    let out = b.run_ok();
    let links = links_of(&out);
    assert_eq!(links.len(), 8, "{out}");
    for (name, inside) in &links {
        assert_ne!(inside, &ns_link("self", name), "{name} namespace is the host's: {out}");
    }
    // timens_offsets inside: the clock ids (1 = monotonic, 7 = boottime) with our offsets.
    let offsets: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).filter(|f: &Vec<&str>| f.len() == 3).collect();
    assert!(offsets.iter().any(|f| f[..2] == ["monotonic", "86400"] || f[..2] == ["1", "86400"]), "{out}");
    assert!(offsets.iter().any(|f| f[..2] == ["boottime", "31536000"] || f[..2] == ["7", "31536000"]), "{out}");
    // /proc/uptime is boottime: a year of offset shows.
    let uptime: f64 = out.lines().last().and_then(|l| l.split_whitespace().next()).and_then(|s| s.parse().ok()).expect("uptime");
    assert!(uptime > 31536000.0, "uptime {uptime} without the boottime offset");
}

#[test]
fn absent_namespaces_are_the_hosts() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new(&print_links());
    b.drop_namespace("network");
    b.drop_namespace("ipc");
    let out = b.run_ok();
    let links = links_of(&out);
    for (name, inside) in &links {
        let host = ns_link("self", name);
        match name.as_str() {
            "net" | "ipc" | "user" | "time" => assert_eq!(inside, &host, "{name} should be shared: {out}"),
            _ => assert_ne!(inside, &host, "{name} should be new: {out}"),
        }
    }
    assert_eq!(links.len(), 8, "{out}");
}

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn a_network_namespace_made_by_ip_netns_is_joined_by_path() {
    if !require_root() {
        return;
    }
    let name = format!("testudo-{}", std::process::id());
    let ok = Command::new("ip").args(["netns", "add", &name]).status().is_ok_and(|s| s.success());
    if !ok {
        assert!(std::env::var_os("TESTUDO_IN_VM").is_none(), "SKIP is a failure in the VM: ip netns add");
        eprintln!("SKIP: ip netns add failed");
        return;
    }
    let ns = Netns(name);
    // The netns gets a mark the host's does not have: its loopback up, with an extra address.
    let set = |args: &[&str]| assert!(Command::new("ip").args(["netns", "exec", &ns.0, "ip"]).args(args).status().expect("ip").success());
    set(&["link", "set", "lo", "up"]);
    set(&["addr", "add", "10.123.45.67/32", "dev", "lo"]);
    let path = format!("/run/netns/{}", ns.0);
    let mut b = Bundle::new("readlink /proc/self/ns/net; ip -o addr show dev lo");
    b.namespace("network", Some(&path));
    let out = b.run_ok();
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).expect("netns"));
    assert_eq!(out.lines().next(), Some(format!("net:[{ino}]").as_str()), "{out}");
    assert!(out.contains("10.123.45.67"), "the container does not see the netns' address: {out}");
    // Joining by path does not take the namespace away: it is still there after the container.
    drop(b);
    assert!(std::path::Path::new(&path).exists());
}

#[test]
fn the_pid_namespace_of_another_container_is_joined_by_path() {
    if !require_root() {
        return;
    }
    let a = Bundle::new("echo i-am-a > /dev/shm/a; exec sleep 100");
    let pid = a.start();
    let mut b = Bundle::new("echo pid=$$; readlink /proc/self/ns/pid; ps -o pid,args");
    b.namespace("pid", Some(&format!("/proc/{pid}/ns/pid")));
    let out = b.run_ok();
    assert_ne!(out.lines().next(), Some("pid=1"), "b is not init of a namespace of its own: {out}");
    assert_eq!(out.lines().nth(1), Some(ns_link(&pid.to_string(), "pid").as_str()), "{out}");
    // a's init is pid 1 of the shared namespace, visible in b's fresh /proc.
    assert!(out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "sleep", "100"]), "{out}");
}

#[test]
fn exec_joins_every_namespace_including_user_and_time() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("exec sleep 100");
    all_eight(&mut b);
    let pid = b.start().to_string();
    let (code, out, err) = b.exec(&["sh", "-c", &format!("{} cat /proc/self/uid_map /proc/self/timens_offsets", print_links())]);
    assert_eq!(code, 0, "{err}");
    let links = links_of(&out);
    assert_eq!(links.len(), 8, "{out}");
    for (name, inside) in &links {
        assert_eq!(inside, &ns_link(&pid, name), "exec is not in the init's {name} namespace");
    }
    assert!(out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["0", "100000", "65536"]), "{out}");
    assert!(out.contains("86400"), "exec's clocks lack the offsets: {out}");
}

#[test]
fn namespace_errors_are_clear_at_create() {
    if !require_root() {
        return;
    }
    type Change = Box<dyn Fn(&mut Bundle)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        ("path is not a namespace", Box::new(|b: &mut Bundle| b.namespace("network", Some("/etc/hostname"))), "not a namespace"),
        ("path of the wrong type", Box::new(|b: &mut Bundle| b.namespace("network", Some("/proc/self/ns/uts"))), "is not a net namespace"),
        ("path missing", Box::new(|b: &mut Bundle| b.namespace("ipc", Some("/nonexistent/ns"))), "No such file"),
        ("listed twice", Box::new(|b: &mut Bundle| b.config["linux"]["namespaces"].as_array_mut().expect("ns").push(serde_json::json!({"type": "uts"}))), "listed twice"),
        (
            "time offsets without a time namespace",
            Box::new(|b: &mut Bundle| b.config["linux"]["timeOffsets"] = serde_json::json!({"monotonic": {"secs": 1}})),
            "timeOffsets need a new time namespace",
        ),
        ("hostname without uts", Box::new(|b: &mut Bundle| b.drop_namespace("uts")), "hostname needs a uts namespace"),
    ];
    for (name, change, expect) in cases {
        let mut b = Bundle::new("true");
        change(&mut b);
        let err = b.create_err();
        assert!(err.to_lowercase().contains(&expect.to_lowercase()), "{name}: {err}");
    }
}
