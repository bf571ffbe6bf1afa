//! One error type for the whole runtime: a context chain ("create: init: mount \"/proc\"") and the
//! errno that caused it, if any. It has a wire form so that a failure inside the container's setup
//! reaches the parent intact over the sync socket (see `spawn::sync`).

use std::fmt;

use nix::errno::Errno;

#[derive(Debug)]
pub struct Error {
    msg: String,
    errno: Option<Errno>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(msg: impl Into<String>) -> Self {
        Error { msg: msg.into(), errno: None }
    }

    pub fn sys(msg: impl Into<String>, errno: Errno) -> Self {
        Error { msg: msg.into(), errno: Some(errno) }
    }

    pub fn errno(&self) -> Option<Errno> {
        self.errno
    }

    pub fn context(self, ctx: impl fmt::Display) -> Self {
        Error { msg: format!("{ctx}: {}", self.msg), errno: self.errno }
    }

    /// Wire form: errno as 4 little-endian bytes (0 = none), then the message.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = (self.errno.map_or(0, |e| e as i32)).to_le_bytes().to_vec();
        out.extend_from_slice(self.msg.as_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Self {
        if bytes.len() < 4 {
            return Error::new("malformed error record from the container");
        }
        let code = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        // The sender may be a setup process the container can ptrace: its text reaches the
        // caller's terminal and log, so control characters (escape sequences) are spelled out.
        let msg = String::from_utf8_lossy(&bytes[4..]).chars().flat_map(|c| if c.is_control() { c.escape_default().collect() } else { vec![c] }).collect();
        Error { msg, errno: (code != 0).then(|| Errno::from_raw(code)) }
    }
}

/// strerror, lower-cased as our messages are: "no such device".
pub fn describe(errno: Errno) -> String {
    let desc = errno.desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errno {
            Some(e) => write!(f, "{}: {}", self.msg, describe(e)),
            None => f.write_str(&self.msg),
        }
    }
}

/// Attach the object a failure concerns. Implemented for the error types the runtime meets, so
/// that no error crosses a function boundary unnamed.
pub trait Context<T> {
    fn context(self, what: impl fmt::Display) -> Result<T>;
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, Errno> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::sys(what.to_string(), e))
    }
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| Error::sys(what().to_string(), e))
    }
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| from_io(what.to_string(), e))
    }
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| from_io(what().to_string(), e))
    }
}

impl<T> Context<T> for Result<T> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.context(what))
    }
    fn with_context<D: fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| e.context(what()))
    }
}

fn from_io(msg: String, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(code) => Error::sys(msg, Errno::from_raw(code)),
        None => Error::new(format!("{msg}: {e}")),
    }
}

/// The last OS error, named.
pub fn last_os(what: impl fmt::Display) -> Error {
    Error::sys(what.to_string(), Errno::last())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_from_the_container_cannot_carry_terminal_escapes() {
        let mut wire = 1i32.to_le_bytes().to_vec();
        wire.extend_from_slice(b"bad \x1b]0;owned\x07 \x1b[2J\nline");
        let e = Error::decode(&wire);
        assert!(!e.to_string().chars().any(char::is_control), "{e}");
        assert!(e.to_string().starts_with("bad \\u{1b}]0;owned"), "{e}");
    }

    #[test]
    fn display_keeps_context_and_errno_lower_case() {
        let e = Error::sys("mount \"/proc\"", Errno::ENODEV).context("init").context("create");
        assert_eq!(e.to_string(), "create: init: mount \"/proc\": no such device");
    }

    #[test]
    fn wire_form_round_trips() {
        let e = Error::sys("pivot_root", Errno::EINVAL);
        let back = Error::decode(&e.encode());
        assert_eq!(back.to_string(), e.to_string());
        assert_eq!(back.errno, Some(Errno::EINVAL));
        let plain = Error::decode(&Error::new("no errno").encode());
        assert_eq!(plain.errno, None);
        assert_eq!(plain.to_string(), "no errno");
    }
}
