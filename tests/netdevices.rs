//! `linux.netDevices` (runtime-spec 1.3, issue 24): a host link moved into the container's
//! network namespace under its new name, with its MTU, MAC, addresses of global scope and up;
//! into a namespace joined by path, where it stays after the container; and the refusals.

mod common;

use std::process::Command;

use common::{require_root, Bundle};

/// A virtual link on the host (one end of a veth pair: this kernel has no dummy driver), deleted
/// with its peer when dropped, if it is still there.
struct Link(String);

impl Link {
    fn new(tag: &str) -> Link {
        let name = format!("td{tag}{}", std::process::id() % 100_000);
        let peer = format!("tp{tag}{}", std::process::id() % 100_000);
        let _ = Command::new("ip").args(["link", "del", &name]).output();
        let _ = Command::new("ip").args(["link", "del", &peer]).output();
        ip(&["link", "add", &name, "type", "veth", "peer", "name", &peer]);
        Link(name)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).output();
    }
}

fn ip(args: &[&str]) -> String {
    let o = Command::new("ip").args(args).output().expect("ip");
    assert!(o.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn on_host(name: &str) -> bool {
    Command::new("ip").args(["link", "show", name]).output().is_ok_and(|o| o.status.success())
}

#[test]
fn a_host_link_moves_in_renamed_with_its_attributes_and_addresses() {
    if !require_root() {
        return;
    }
    let d = Link::new("a");
    ip(&["link", "set", "dev", &d.0, "mtu", "1789", "address", "00:11:22:33:44:55"]);
    ip(&["addr", "add", "169.254.169.77/16", "dev", &d.0]);
    ip(&["addr", "add", "127.0.0.33/8", "dev", &d.0]);
    let mut b = Bundle::new("ip addr show dev ctr_dummy0; cat /sys/class/net/ctr_dummy0/operstate /sys/class/net/ctr_dummy0/flags");
    b.config["linux"]["netDevices"] = serde_json::json!({ d.0.clone(): {"name": "ctr_dummy0"} });
    let out = b.run_ok();
    assert!(out.contains("mtu 1789"), "{out}");
    assert!(out.contains("00:11:22:33:44:55"), "{out}");
    assert!(out.contains("169.254.169.77/16"), "the address of global scope was not kept: {out}");
    assert!(!out.contains("127.0.0.33"), "a host-scope address went along: {out}");
    let flags = out.lines().last().and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok()).expect("flags");
    assert_eq!(flags & 1, 1, "the link is not up in the container: {out}");
    // The container's own namespace is gone with it; a virtual link goes too (the kernel's way),
    // and it never came back to the host under its old name while the container ran.
    assert!(!on_host("ctr_dummy0"));
}

#[test]
fn a_link_moved_into_a_namespace_joined_by_path_stays_there() {
    if !require_root() {
        return;
    }
    let d = Link::new("b");
    let ns = format!("testudo-nd-{}", std::process::id());
    let _ = Command::new("ip").args(["netns", "del", &ns]).output();
    ip(&["netns", "add", &ns]);
    let mut b = Bundle::new("ip link show dev inside0");
    b.config["linux"]["netDevices"] = serde_json::json!({ d.0.clone(): {"name": "inside0"} });
    for n in b.config["linux"]["namespaces"].as_array_mut().expect("namespaces") {
        if n["type"] == "network" {
            n["path"] = format!("/run/netns/{ns}").into();
        }
    }
    let out = b.run_ok();
    assert!(out.contains("inside0"), "{out}");
    assert!(!on_host(&d.0), "the link is still on the host");
    let there = ip(&["netns", "exec", &ns, "ip", "link", "show", "dev", "inside0"]);
    assert!(there.contains("inside0"), "the link left the namespace with the container: {there}");
    ip(&["netns", "del", &ns]);
}

#[test]
fn net_devices_that_cannot_be_moved_are_refused_before_anything_runs() {
    if !require_root() {
        return;
    }
    let mut b = Bundle::new("echo ran");
    b.config["linux"]["netDevices"] = serde_json::json!({"no-such-link0": {}});
    let (code, out, err) = b.run();
    assert_ne!(code, 0);
    assert!(!out.contains("ran") && err.contains("no network device") && err.contains("no-such-link0"), "{out} {err}");
    assert!(!b.root.join(&b.id).exists(), "a refused create left its state");

    let d = Link::new("c");
    let mut b = Bundle::new("echo ran");
    b.config["linux"]["netDevices"] = serde_json::json!({ d.0.clone(): {"name": "bad/name"} });
    let (code, _, err) = b.run();
    assert!(code != 0 && err.contains("not a valid interface name"), "{err}");

    let mut b = Bundle::new("echo ran");
    b.config["linux"]["netDevices"] = serde_json::json!({ d.0.clone(): {} });
    b.config["linux"]["namespaces"].as_array_mut().expect("namespaces").retain(|n| n["type"] != "network");
    let (code, _, err) = b.run();
    assert!(code != 0 && err.contains("no network namespace of its own"), "{err}");
    assert!(on_host(&d.0), "a refused create moved the link anyway");
}
