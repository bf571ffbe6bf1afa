//! Container id rules. The id becomes a directory name under `--root`, so anything that could
//! escape or confuse that directory is refused.

use crate::error::{Error, Result};

/// NAME_MAX: the longest directory name.
pub const MAX_LEN: usize = 255;

pub fn validate(id: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::new(format!("invalid container id {id:?}: {why}")));
    if id.is_empty() {
        return bad("empty");
    }
    // The id is a directory name under --root and in every cgroup hierarchy.
    if id.len() > MAX_LEN {
        return bad(&format!("longer than {MAX_LEN} bytes"));
    }
    if id == "." || id == ".." || id.contains("..") {
        return bad("contains \"..\"");
    }
    if id.contains('/') {
        return bad("contains '/'");
    }
    if id.contains('\0') {
        return bad("contains NUL");
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("contains whitespace or control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_what_clients_send() {
        for id in ["c1", "a1b2c3d4e5f6", "k8s_pod-name.1", "x:y", "0123456789abcdef".repeat(4).as_str()] {
            assert!(validate(id).is_ok(), "{id}");
        }
        assert!(validate(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn refuses_escapes_and_junk() {
        for id in ["", ".", "..", "../x", "a/b", "/abs", "a\0b", "a..b", "a b", "a\nb"] {
            assert!(validate(id).is_err(), "{id:?}");
        }
        assert!(validate(&"a".repeat(256)).is_err());
    }
}
