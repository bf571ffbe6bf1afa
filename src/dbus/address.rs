//! Where a bus listens. The system bus: `DBUS_SYSTEM_BUS_ADDRESS` or the well-known socket. The
//! user's bus (that of the user's systemd manager, `user@UID.service`, which dbus-user-session or
//! dbus-broker's user unit starts): `DBUS_SESSION_BUS_ADDRESS`, else `$XDG_RUNTIME_DIR/bus`, as
//! sd-bus finds it. Only `unix:path=` addresses are supported: that is what both buses use.

use crate::error::{Error, Result};

pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

/// The socket of the system bus.
pub fn system_bus_path() -> Result<String> {
    match std::env::var("DBUS_SYSTEM_BUS_ADDRESS").ok().filter(|a| !a.is_empty()) {
        Some(a) => unix_path("DBUS_SYSTEM_BUS_ADDRESS", &a),
        None => Ok(SYSTEM_BUS.to_string()),
    }
}

/// The socket of the user's bus.
pub fn user_bus_path() -> Result<String> {
    user_bus(std::env::var("DBUS_SESSION_BUS_ADDRESS").ok().as_deref(), std::env::var("XDG_RUNTIME_DIR").ok().as_deref())
}

fn user_bus(addr: Option<&str>, runtime_dir: Option<&str>) -> Result<String> {
    if let Some(a) = addr.filter(|a| !a.is_empty()) {
        return unix_path("DBUS_SESSION_BUS_ADDRESS", a);
    }
    match runtime_dir.filter(|d| d.starts_with('/')) {
        Some(d) => Ok(format!("{}/bus", d.trim_end_matches('/'))),
        None => Err(Error::new(
            "the user's d-bus: neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR (an absolute path) is set, so its socket ($XDG_RUNTIME_DIR/bus) is unknown",
        )),
    }
}

/// The first `unix:path=` address of `addr` (a `;`-separated list), named by `var` in errors.
fn unix_path(var: &str, addr: &str) -> Result<String> {
    for one in addr.split(';') {
        if let Some(rest) = one.strip_prefix("unix:") {
            if let Some(path) = rest.split(',').find_map(|kv| kv.strip_prefix("path=")) {
                return Ok(unescape(path));
            }
        }
    }
    Err(Error::new(format!("{var} {addr:?}: only unix:path= addresses are supported")))
}

/// D-Bus addresses escape bytes as `%xx`.
fn unescape(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(x)) => {
                out.push(x);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_bus_address() {
        let p = |a| unix_path("DBUS_SYSTEM_BUS_ADDRESS", a);
        assert_eq!(p("unix:path=/tmp/x,guid=1;tcp:host=a").ok().as_deref(), Some("/tmp/x"));
        assert_eq!(p("tcp:host=a;unix:guid=2,path=/tmp/z").ok().as_deref(), Some("/tmp/z"));
        assert_eq!(
            p("unix:abstract=/tmp/y").expect_err("abstract").to_string(),
            "DBUS_SYSTEM_BUS_ADDRESS \"unix:abstract=/tmp/y\": only unix:path= addresses are supported"
        );
    }

    #[test]
    fn user_bus_address() {
        assert_eq!(user_bus(Some("unix:path=/run/user/2001/bus"), Some("/elsewhere")).ok().as_deref(), Some("/run/user/2001/bus"), "the variable first");
        assert_eq!(user_bus(Some("unix:path=/tmp/a%20b%2cc"), None).ok().as_deref(), Some("/tmp/a b,c"), "escaped bytes");
        assert_eq!(user_bus(None, Some("/run/user/2001")).ok().as_deref(), Some("/run/user/2001/bus"));
        assert_eq!(user_bus(Some(""), Some("/run/user/2001/")).ok().as_deref(), Some("/run/user/2001/bus"), "empty is unset");
        let e = user_bus(Some("unix:abstract=/tmp/dbus-x"), Some("/run/user/2001")).expect_err("abstract").to_string();
        assert_eq!(e, "DBUS_SESSION_BUS_ADDRESS \"unix:abstract=/tmp/dbus-x\": only unix:path= addresses are supported");
        let e = user_bus(None, None).expect_err("nothing").to_string();
        assert!(e.starts_with("the user's d-bus: neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR"), "{e}");
        assert!(user_bus(None, Some("run/user/2001")).is_err(), "relative");
    }
}
