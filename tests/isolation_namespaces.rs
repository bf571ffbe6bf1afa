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
    out.lines().filter_map(|l| l.split_once(' ')).filter(|(n, v)| ALL.contains(n) && v.contains(":[")).map(|(n, v)| (n.to_string(), v.to_string())).collect()
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
            // runc's default spec has no cgroup namespace, and neither has testudo's (issue 24).
            "net" | "ipc" | "user" | "time" | "cgroup" => assert_eq!(inside, &host, "{name} should be shared: {out}"),
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
        common::skip("ip netns add failed");
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
        (
            "listed twice",
            Box::new(|b: &mut Bundle| b.config["linux"]["namespaces"].as_array_mut().expect("ns").push(serde_json::json!({"type": "uts"}))),
            "listed twice",
        ),
        (
            "time offsets without a time namespace",
            Box::new(|b: &mut Bundle| b.config["linux"]["timeOffsets"] = serde_json::json!({"monotonic": {"secs": 1}})),
            "linux.timeOffsets need a new time namespace",
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

/// No state dir (create_err checks it) and no cgroup after a refused create.
fn assert_no_cgroup(b: &Bundle, what: &str) {
    for base in ["/sys/fs/cgroup/unified/testudo", "/sys/fs/cgroup/testudo"] {
        assert!(!std::path::Path::new(base).join(&b.id).exists(), "{what}: cgroup {base}/{} left behind", b.id);
    }
}

#[test]
fn combinations_the_kernel_refuses_are_create_errors_naming_the_field() {
    if !require_root() {
        return;
    }
    let me = std::process::id();
    type Change = Box<dyn Fn(&mut Bundle)>;
    let userns = |b: &mut Bundle| b.userns(&[(0, 100000, 65536)], &[(0, 100000, 65536)]);
    let cases: Vec<(&str, Change, &[&str])> = vec![
        (
            "time offsets in a time namespace joined by path",
            Box::new(move |b: &mut Bundle| {
                b.namespace("time", Some(&format!("/proc/{me}/ns/time")));
                b.config["linux"]["timeOffsets"] = serde_json::json!({"monotonic": {"secs": 1}});
            }),
            &["linux.timeOffsets", "joined by path"],
        ),
        (
            "uid mappings with a user namespace joined by path",
            Box::new(move |b: &mut Bundle| {
                userns(b);
                b.namespace("user", Some(&format!("/proc/{me}/ns/user")));
            }),
            &["linux.uidMappings", "joined by path has its id maps"],
        ),
        // Each of these fails deep in init with EPERM from mount(2) without the check.
        (
            "mqueue in a user namespace with the host's ipc namespace",
            Box::new(move |b: &mut Bundle| {
                userns(b);
                b.drop_namespace("ipc");
            }),
            &["mount \"/dev/mqueue\"", "needs a new ipc namespace", "shared with the host"],
        ),
        (
            "mqueue in a user namespace with an ipc namespace joined by path",
            Box::new(move |b: &mut Bundle| {
                userns(b);
                b.namespace("ipc", Some(&format!("/proc/{me}/ns/ipc")));
            }),
            &["mount \"/dev/mqueue\"", "needs a new ipc namespace", "joined by path"],
        ),
        (
            "proc in a user namespace with the host's pid namespace",
            Box::new(move |b: &mut Bundle| {
                userns(b);
                b.drop_namespace("pid");
            }),
            &["mount \"/proc\"", "needs a new pid namespace"],
        ),
        (
            "sysfs in a user namespace with the host's network namespace",
            Box::new(move |b: &mut Bundle| {
                userns(b);
                b.drop_namespace("network");
            }),
            &["mount \"/sys\"", "needs a new net namespace"],
        ),
    ];
    for (name, change, expect) in cases {
        let mut b = Bundle::new("true");
        change(&mut b);
        // The text log format escapes the quotes around the object named.
        let err = b.create_err().replace("\\\"", "\"");
        for e in expect {
            assert!(err.contains(e), "{name}: {e:?} not in {err}");
        }
        assert_no_cgroup(&b, name);
    }
    // The same user namespace with its own ipc, pid and network namespaces mounts all three.
    let mut ok = Bundle::new(r#"awk '$5=="/proc"||$5=="/sys"||$5=="/dev/mqueue"{for(i=7;$i!="-";i++);print $5,$(i+1)}' /proc/self/mountinfo"#);
    userns(&mut ok);
    let mut seen: Vec<String> = ok.run_ok().lines().map(String::from).collect();
    seen.sort();
    assert_eq!(seen, ["/dev/mqueue mqueue", "/proc proc", "/sys sysfs"]);
}

/// `testudo create` inside throwaway mount, uts, network and ipc namespaces of its own: "the
/// host's" namespaces, for testudo, are these, so a missing check changes nothing of the real host.
fn create_in_throwaway_namespaces(b: &Bundle) -> String {
    b.write();
    let (o, e) = (b.dir.join(".unshare-out"), b.dir.join(".unshare-err"));
    let st = Command::new("unshare")
        .args(["--mount", "--uts", "--net", "--ipc", "--propagation", "private", common::BIN, "--root"])
        .arg(&b.root)
        .args(["create", "--bundle"])
        .arg(&b.dir)
        .arg(&b.id)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&o).expect("out"))
        .stderr(std::fs::File::create(&e).expect("err"))
        .status()
        .expect("unshare");
    let err = std::fs::read_to_string(&e).unwrap_or_default().replace("\\\"", "\"");
    assert!(!st.success(), "create succeeded: {err}");
    assert!(!b.root.join(&b.id).exists(), "state dir left after a failed create: {err}");
    err
}

#[test]
fn joining_the_runtimes_own_namespace_by_path_is_sharing_the_hosts() {
    if !require_root() {
        return;
    }
    // /proc/self in the path is testudo itself: the namespaces it runs in.
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "network",
            "/proc/self/ns/net",
            r#"{"linux": {"sysctl": {"net.ipv4.ip_forward": "1"}}}"#,
            &["sysctl \"net.ipv4.ip_forward\"", "joined by path is the host's"],
        ),
        ("ipc", "/proc/self/ns/ipc", r#"{"linux": {"sysctl": {"kernel.shmmni": "1234"}}}"#, &["sysctl \"kernel.shmmni\"", "joined by path is the host's"]),
        ("uts", "/proc/self/ns/uts", r#"{"hostname": "not-the-host"}"#, &["hostname", "uts namespace joined by path is the host's"]),
        ("uts", "/proc/self/ns/uts", r#"{"hostname": "", "domainname": "not.the.host"}"#, &["domainname", "is the host's"]),
        ("mount", "/proc/self/ns/mnt", "{}", &["mount namespace joined by path is the host's"]),
    ];
    for (ns, path, extra, expect) in cases {
        let mut b = Bundle::new("true");
        b.namespace(ns, Some(path));
        let extra: serde_json::Value = serde_json::from_str(extra).expect("json");
        for (k, v) in extra.as_object().expect("object") {
            match (k.as_str(), v) {
                ("linux", serde_json::Value::Object(l)) => l.iter().for_each(|(lk, lv)| b.config["linux"][lk] = lv.clone()),
                _ => b.config[k] = v.clone(),
            }
        }
        let err = create_in_throwaway_namespaces(&b);
        for e in *expect {
            assert!(err.contains(e), "{ns} {extra}: {e:?} not in {err}");
        }
        assert_no_cgroup(&b, ns);
    }
    // Another process's namespace joined by path is the container's own: its sysctls are allowed.
    let holder = Bundle::new("exec sleep 100");
    let pid = holder.start();
    let mut b = Bundle::new("cat /proc/sys/net/ipv4/ip_forward");
    b.namespace("network", Some(&format!("/proc/{pid}/ns/net")));
    b.config["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
    assert_eq!(b.run_ok(), "1\n");
}
