//! No setuid or setgid file from a job. The workspace is an idmapped bind that maps the job's uid
//! to the caller's on disk: a job that sets S_ISUID on its own file there leaves the caller (root,
//! as a rule) a setuid-root executable any local user can run. The workspace is mounted nosuid,
//! but that holds only inside the sandbox; on the host the file is an ordinary setuid binary. So
//! the job's seccomp profile, whichever it is, is rewritten: every call that sets a file's mode
//! (chmod, fchmod, fchmodat, creat, open and openat with O_CREAT or O_TMPFILE, mknod, mknodat) is
//! allowed only with S_ISUID and S_ISGID clear; the calls whose mode a filter cannot see (openat2
//! and io_uring, which pass it in memory) fail with ENOSYS, so that libc and runtimes fall back
//! to the ones it can. fchmodat2 is never allowed (no profile shipped names it, and a job's libc
//! falls back to fchmodat on ENOSYS).

use serde_json::{json, Value};

use crate::error::{Error, Result};

/// S_ISUID | S_ISGID.
const SET_ID: u64 = 0o6000;
/// O_CREAT | __O_TMPFILE (x86 and x86_64): the open flags that make open use its mode.
const CREATES: u64 = 0o100 | 0o20000000;

/// (syscall, index of its mode argument, index of its flags argument where the mode is used
/// only with CREATES).
const MODE_CALLS: &[(&str, u64, Option<u64>)] = &[
    ("chmod", 1, None),
    ("fchmod", 1, None),
    ("fchmodat", 2, None),
    ("creat", 1, None),
    ("mknod", 1, None),
    ("mknodat", 2, None),
    ("open", 2, Some(1)),
    ("openat", 3, Some(2)),
];
/// Calls that take a mode in memory: refused with ENOSYS.
const BLIND_CALLS: &[&str] = &["openat2", "io_uring_setup", "io_uring_enter", "io_uring_register", "fchmodat2"];

fn masked(index: u64, mask: u64, value: u64) -> Value {
    json!({"index": index, "value": mask, "valueTwo": value, "op": "SCMP_CMP_MASKED_EQ"})
}

/// Rewrite `profile` (OCI linux.seccomp) so that no call can set S_ISUID or S_ISGID. A profile
/// whose default action allows is refused: its job would be unconfined anyway, and libseccomp
/// cannot narrow a syscall that a rule allows outright.
pub fn deny_set_id_modes(profile: &mut Value) -> Result<()> {
    let default = profile["defaultAction"].as_str().unwrap_or("");
    if matches!(default, "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG") {
        return Err(Error::new(format!("--profile: defaultAction {default} leaves the job unconfined; give an allow-list profile")));
    }
    let rules = profile["syscalls"].as_array_mut().ok_or_else(|| Error::new("--profile: syscalls is not a list"))?;
    let guarded = |n: &str| MODE_CALLS.iter().any(|(c, _, _)| *c == n) || BLIND_CALLS.contains(&n);
    // Which mode-setting calls the profile allowed by name alone: those become conditional. A
    // rule with conditions of its own is the profile's and stays; one that allows a mode call
    // outright is removed from it, since libseccomp lets an unconditional rule swallow every
    // conditional one of the same syscall.
    let mut allowed: Vec<&str> = Vec::new();
    for r in rules.iter_mut() {
        let unconditional = r["args"].as_array().is_none_or(|a| a.is_empty());
        if !(unconditional && matches!(r["action"].as_str(), Some("SCMP_ACT_ALLOW" | "SCMP_ACT_LOG"))) {
            if r["names"].as_array().into_iter().flatten().any(|n| n.as_str().is_some_and(guarded)) {
                return Err(Error::new(
                    "--profile: a rule with conditions names a call that sets file modes (chmod, open, mknod …): the sandbox must own those",
                ));
            }
            continue;
        }
        if let Some(names) = r["names"].as_array_mut() {
            names.retain(|n| match n.as_str() {
                Some(n) if guarded(n) => {
                    if let Some((c, _, _)) = MODE_CALLS.iter().find(|(c, _, _)| *c == n) {
                        allowed.push(c);
                    }
                    false
                }
                _ => true,
            });
        }
    }
    rules.retain(|r| r["names"].as_array().is_some_and(|n| !n.is_empty()));
    for (name, mode, flags) in MODE_CALLS.iter().filter(|(c, _, _)| allowed.contains(c)) {
        rules.push(json!({"names": [name], "action": "SCMP_ACT_ALLOW", "args": [masked(*mode, SET_ID, 0)]}));
        if let Some(flags) = flags {
            rules.push(json!({"names": [name], "action": "SCMP_ACT_ALLOW", "args": [masked(*flags, CREATES, 0)]}));
        }
    }
    rules.push(json!({"names": BLIND_CALLS, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::seccomp;

    fn shipped(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seccomp-profiles").join(name);
        serde_json::from_slice(&std::fs::read(path).expect("profile")).expect("json")
    }

    #[test]
    fn the_shipped_profiles_keep_compiling_and_lose_every_outright_mode_call() {
        for name in ["build-sandbox.json", "default.json"] {
            let mut p = shipped(name);
            deny_set_id_modes(&mut p).expect(name);
            for r in p["syscalls"].as_array().expect("rules") {
                let names: Vec<&str> = r["names"].as_array().expect("names").iter().filter_map(Value::as_str).collect();
                let conditional = r["args"].as_array().is_some_and(|a| !a.is_empty());
                for (c, mode, flags) in MODE_CALLS {
                    if names.contains(c) && r["action"] == "SCMP_ACT_ALLOW" {
                        assert!(conditional, "{name}: {c} allowed outright");
                        let idx = r["args"][0]["index"].as_u64();
                        assert!(idx == Some(*mode) || idx == *flags, "{name}: {c} {r}");
                    }
                }
            }
            let s: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(p).expect("oci");
            seccomp::compile::bpf(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn a_permissive_profile_or_a_conditional_mode_rule_is_refused() {
        let mut p = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []});
        assert!(deny_set_id_modes(&mut p).is_err());
        let mut p = json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["chmod"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 0o4755, "op": "SCMP_CMP_EQ"}]}]});
        assert!(deny_set_id_modes(&mut p).is_err());
    }
}
