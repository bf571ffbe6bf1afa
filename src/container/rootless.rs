//! Rootless: testudo run by a user without privilege over the host. Decided once per command, as
//! runc does: `--rootless true|false` says so; `auto` (or no flag) means rootless when the
//! effective uid is not 0, or when it is 0 but only inside a user namespace that is not the
//! initial one (a rootless podman or BuildKit calls us from there). A rootless runtime keeps its
//! state under the user's runtime directory, not /run, and uses a cgroup only when one was
//! delegated to the user (see `spawn::prepare`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The state root of a rootless runtime when `--root` is not given.
const STATE_DIR: &str = "testudo";

/// The default state root of a runtime with privilege (`--root`'s default).
pub const DEFAULT_ROOT: &str = "/run/testudo";

/// `--rootless`: true, false, or auto (the default).
pub fn detect(flag: Option<&str>) -> Result<bool> {
    match flag.map(str::to_ascii_lowercase).as_deref() {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        None | Some("auto") => Ok(!nix::unistd::geteuid().is_root() || in_user_namespace()),
        Some(other) => Err(Error::new(format!("--rootless {other:?}: must be true, false or auto"))),
    }
}

/// Root of the host: uid 0 in the initial user namespace. Root inside a user namespace (rootless
/// podman's) sees the host's root-owned files as the overflow uid, and has no say over the host.
pub fn host_root() -> bool {
    nix::unistd::geteuid().is_root() && !in_user_namespace()
}

/// Whether this process is in a user namespace other than the initial one: the initial one maps
/// every id, "0 0 4294967295", and no other can.
fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| !is_initial_map(&m))
}

fn is_initial_map(map: &str) -> bool {
    let fields: Vec<&str> = map.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

/// The state root: `--root` when given; rootless, `$XDG_RUNTIME_DIR/testudo`, which is the
/// user's own (0700, made by `container::Dir::create`); else /run/testudo.
pub fn state_root(given: Option<&Path>, rootless: bool) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    if !rootless {
        return Ok(PathBuf::from(DEFAULT_ROOT));
    }
    runtime_dir(std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)).map(|d| d.join(STATE_DIR))
}

/// `$XDG_RUNTIME_DIR`, which must be set, absolute, and a directory the user may write.
fn runtime_dir(var: Option<PathBuf>) -> Result<PathBuf> {
    let dir = var.filter(|d| !d.as_os_str().is_empty()).ok_or_else(|| Error::new("rootless: XDG_RUNTIME_DIR is not set (set it, or give --root)"))?;
    if dir.is_relative() {
        return Err(Error::new(format!("rootless: XDG_RUNTIME_DIR {dir:?}: not an absolute path")));
    }
    use nix::unistd::AccessFlags as A;
    nix::unistd::access(&dir, A::W_OK | A::X_OK).map_err(|e| Error::sys(format!("rootless: XDG_RUNTIME_DIR {dir:?}"), e))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_user_namespace_by_its_map() {
        assert!(is_initial_map("         0          0 4294967295\n"));
        assert!(!is_initial_map("         0       1000          1\n"));
        assert!(!is_initial_map("0 0 4294967295\n1 1 1\n"));
    }

    #[test]
    fn flag_values() {
        assert!(detect(Some("true")).expect("true"));
        assert!(!detect(Some("FALSE")).expect("false"));
        assert_eq!(detect(Some("yes")).expect_err("yes").to_string(), "--rootless \"yes\": must be true, false or auto");
    }

    #[test]
    fn state_root_choice() {
        assert_eq!(state_root(Some(Path::new("/r")), true).expect("given"), Path::new("/r"));
        assert_eq!(state_root(None, false).expect("root"), Path::new(DEFAULT_ROOT));
        assert_eq!(runtime_dir(None).expect_err("unset").to_string(), "rootless: XDG_RUNTIME_DIR is not set (set it, or give --root)");
        assert!(runtime_dir(Some(PathBuf::from("run/user/1"))).is_err());
        let missing = runtime_dir(Some(PathBuf::from("/nonexistent-xdg"))).expect_err("missing").to_string();
        assert!(missing.starts_with("rootless: XDG_RUNTIME_DIR \"/nonexistent-xdg\": "), "{missing}");
    }
}
