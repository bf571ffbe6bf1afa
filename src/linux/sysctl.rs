//! `linux.sysctl`: only keys that belong to a namespace the container has its own of; everything
//! else would change the host. Written through the container's own, verified procfs.

use std::collections::HashMap;

use oci_spec::runtime::LinuxNamespaceType as T;

use crate::error::{Error, Result};
use crate::linux::namespaces::Plan;
use crate::linux::procfs::Proc;

const IPC_KEYS: &[&str] =
    &["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"];

/// The namespace that makes `key` safe to set, or an error naming it.
fn namespace_of(key: &str) -> Result<T> {
    if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        Ok(T::Ipc)
    } else if key.starts_with("net.") {
        Ok(T::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Ok(T::Uts)
    } else {
        Err(Error::new(format!("sysctl {key:?} is not namespaced; setting it would change the host")))
    }
}

pub fn check(sysctl: &HashMap<String, String>, ns: &Plan) -> Result<()> {
    for (key, value) in sysctl {
        if key.contains('/') || key.contains("..") {
            return Err(Error::new(format!("sysctl {key:?}: invalid key")));
        }
        // A newline would end the value the kernel parses and let the rest be read as another.
        if value.contains(['\n', '\0']) {
            return Err(Error::new(format!("linux.sysctl {key:?}: the value has a newline or NUL in it")));
        }
        let t = namespace_of(key)?;
        if !ns.private(t) {
            let why = if ns.has(t) { "the one joined by path is the host's" } else { "it shares the host's" };
            return Err(Error::new(format!("sysctl {key:?} needs a private {} namespace: {why}", crate::linux::namespaces::proc_name(t))));
        }
    }
    Ok(())
}

pub fn apply(proc: &Proc, sysctl: &HashMap<String, String>) -> Result<()> {
    for (key, value) in sysctl {
        let rel = format!("sys/{}", key.replace('.', "/"));
        proc.write(&rel, value.as_bytes()).map_err(|e| e.context(format!("sysctl {key}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_keys_only() {
        assert_eq!(namespace_of("net.ipv4.ip_forward").ok(), Some(T::Network));
        assert_eq!(namespace_of("kernel.shmmax").ok(), Some(T::Ipc));
        assert_eq!(namespace_of("fs.mqueue.msg_max").ok(), Some(T::Ipc));
        assert!(namespace_of("kernel.panic").is_err());
        assert!(namespace_of("vm.overcommit_memory").is_err());
    }

    #[test]
    fn a_value_with_a_newline_is_refused() {
        let ns = crate::linux::namespaces::plan(
            &serde_json::from_str::<Vec<oci_spec::runtime::LinuxNamespace>>(r#"[{"type": "network"}, {"type": "mount"}]"#).expect("ns"),
        )
        .expect("plan");
        let one = |v: &str| check(&HashMap::from([("net.ipv4.ip_forward".to_string(), v.to_string())]), &ns).map_err(|e| e.to_string());
        assert_eq!(one("1\n0"), Err("linux.sysctl \"net.ipv4.ip_forward\": the value has a newline or NUL in it".into()));
        assert!(one("1\0").is_err());
        assert!(one("1").is_ok());
    }
}
