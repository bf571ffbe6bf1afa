//! A connection to a bus (the system bus, or the user's: `address`): a unix socket, SASL EXTERNAL
//! with our uid as the bus sees it, `Hello`, then
//! method calls answered in order. Synchronous: a call writes its message and reads until the
//! reply with its serial arrives; signals read meanwhile are kept for `wait_signal`. Every wait
//! has a deadline, so a bus that stops answering is an error, never a hung create.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::message::{Kind, Message};
use super::wire::Value;
use crate::error::{Error, Result};

/// How long a call may take before the bus is declared unresponsive (libdbus uses 25 s).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(25);

pub struct Conn {
    sock: UnixStream,
    /// The socket path, for errors.
    pub bus: String,
    serial: u32,
    buf: Vec<u8>,
    signals: Vec<Message>,
    /// Replies read while waiting for another one.
    replies: Vec<Message>,
}

impl Conn {
    pub fn open(path: &str) -> Result<Conn> {
        let sock = UnixStream::connect(path).map_err(|e| io_error(&format!("d-bus {path}: connect"), e))?;
        let mut c = Conn { sock, bus: path.to_string(), serial: 0, buf: Vec::new(), signals: Vec::new(), replies: Vec::new() };
        // SASL EXTERNAL (the bus checks our uid against SO_PEERCRED), BEGIN and Hello in one
        // write, as sd-bus does: the bus reads what follows AUTH only once it has said OK. The
        // bus runs outside our user namespace (rootless podman calls us as its root): it sees
        // the uid that ours maps to there, so that is the one to claim.
        let uid = crate::linux::idmap::outer_uid().map_err(|e| e.context(format!("d-bus {path}: authenticate")))?.to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let mut bytes = format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n").into_bytes();
        let (hello, encoded) = c.message("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", vec![]);
        bytes.extend(encoded);
        c.write_all(&bytes, "authenticate")?;
        let line = c.read_line(Instant::now() + CALL_TIMEOUT)?;
        if !line.starts_with("OK ") {
            return Err(Error::new(format!("d-bus {path}: the bus refused authentication as uid {uid}: {line:?}")));
        }
        let name = c.reply(hello, "org.freedesktop.DBus.Hello")??;
        if name.first().and_then(Value::as_str).is_none() {
            return Err(Error::new(format!("d-bus {path}: Hello: the reply has no unique name")));
        }
        Ok(c)
    }

    fn read_line(&mut self, deadline: Instant) -> Result<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.buf.len() > 4096 {
                return Err(Error::new(format!("d-bus {}: authentication: the bus sent no line", self.bus)));
            }
            self.fill(deadline, "authenticate")?;
        }
    }

    fn write_all(&mut self, bytes: &[u8], what: &str) -> Result<()> {
        self.sock.set_write_timeout(Some(CALL_TIMEOUT)).map_err(|e| io_error(&format!("d-bus {}: {what}", self.bus), e))?;
        self.sock.write_all(bytes).map_err(|e| io_error(&format!("d-bus {}: {what}", self.bus), e))
    }

    /// Read more bytes into the buffer, by the deadline.
    fn fill(&mut self, deadline: Instant, what: &str) -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::sys(format!("d-bus {}: {what}: no answer", self.bus), nix::errno::Errno::ETIMEDOUT));
        }
        self.sock.set_read_timeout(Some(left)).map_err(|e| io_error(&format!("d-bus {}: {what}", self.bus), e))?;
        let mut chunk = [0u8; 4096];
        match self.sock.read(&mut chunk) {
            Ok(0) => Err(Error::new(format!("d-bus {}: {what}: the bus closed the connection", self.bus))),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                Err(Error::sys(format!("d-bus {}: {what}: no answer", self.bus), nix::errno::Errno::ETIMEDOUT))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(io_error(&format!("d-bus {}: {what}", self.bus), e)),
        }
    }

    /// The next whole message, by the deadline.
    fn next(&mut self, deadline: Instant, what: &str) -> Result<Message> {
        loop {
            if let Some(len) = Message::length(&self.buf).map_err(|e| e.context(format!("d-bus {}: {what}", self.bus)))? {
                if self.buf.len() >= len {
                    let m = Message::decode(&self.buf[..len]).map_err(|e| e.context(format!("d-bus {}: {what}", self.bus)));
                    self.buf.drain(..len);
                    return m;
                }
            }
            self.fill(deadline, what)?;
        }
    }

    /// Call a method and wait for its reply: the body, or the error reply (kept apart from the
    /// transport's errors, the outer ones, for callers that act on its name: a unit that already
    /// exists, a unit that is not loaded). A `BusError` names the bus, the method, the D-Bus
    /// error name and its message.
    pub fn try_call(&mut self, dest: &str, path: &str, iface: &str, member: &str, body: Vec<Value>) -> Result<std::result::Result<Vec<Value>, BusError>> {
        let serial = self.send(dest, path, iface, member, body)?;
        self.reply(serial, &format!("{iface}.{member}"))
    }

    fn message(&mut self, dest: &str, path: &str, iface: &str, member: &str, body: Vec<Value>) -> (u32, Vec<u8>) {
        self.serial += 1;
        let mut m = Message::call(dest, path, iface, member, body);
        m.serial = self.serial;
        (m.serial, m.encode())
    }

    /// Send a call without waiting for its reply (several calls then cost one round trip);
    /// returns the serial to give `reply`.
    pub fn send(&mut self, dest: &str, path: &str, iface: &str, member: &str, body: Vec<Value>) -> Result<u32> {
        let (serial, bytes) = self.message(dest, path, iface, member, body);
        self.write_all(&bytes, &format!("{iface}.{member}"))?;
        Ok(serial)
    }

    /// The reply to the call `serial` (`what` names it in errors). Replies to other calls read
    /// meanwhile are kept for their own `reply`, signals for `wait_signal`.
    pub fn reply(&mut self, serial: u32, what: &str) -> Result<std::result::Result<Vec<Value>, BusError>> {
        let deadline = Instant::now() + CALL_TIMEOUT;
        let reply = match self.replies.iter().position(|r| r.reply_serial == Some(serial)) {
            Some(i) => self.replies.remove(i),
            None => loop {
                let m = self.next(deadline, what)?;
                match m.kind {
                    Some(Kind::Signal) => self.signals.push(m),
                    Some(Kind::Return | Kind::Error) if m.reply_serial == Some(serial) => break m,
                    Some(Kind::Return | Kind::Error) => self.replies.push(m),
                    _ => {}
                }
            },
        };
        if reply.kind == Some(Kind::Error) {
            let name = reply.error_name.unwrap_or_default();
            let text = reply.body.first().and_then(Value::as_str).unwrap_or_default().to_string();
            return Ok(Err(BusError { bus: self.bus.clone(), method: what.to_string(), name, message: text }));
        }
        Ok(Ok(reply.body))
    }

    /// The first signal (already read, or arriving by the deadline) that `pick` accepts.
    pub fn wait_signal(&mut self, deadline: Instant, what: &str, pick: impl Fn(&Message) -> bool) -> Result<Message> {
        if let Some(i) = self.signals.iter().position(&pick) {
            return Ok(self.signals.remove(i));
        }
        loop {
            let m = self.next(deadline, what)?;
            if m.kind == Some(Kind::Signal) && pick(&m) {
                return Ok(m);
            }
        }
    }
}

/// An error reply, kept structured so that callers can act on its name (a unit that already
/// exists, a unit that is not loaded).
#[derive(Debug)]
pub struct BusError {
    pub bus: String,
    pub method: String,
    pub name: String,
    pub message: String,
}

impl std::fmt::Display for BusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "d-bus {}: {}: {}: {}", self.bus, self.method, self.name, self.message)
    }
}

impl From<BusError> for Error {
    fn from(e: BusError) -> Error {
        Error::new(e.to_string())
    }
}

fn io_error(what: &str, e: std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(n) => Error::sys(what.to_string(), nix::errno::Errno::from_raw(n)),
        None => Error::new(format!("{what}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dbus::testbus::{fake_bus, reply};

    #[test]
    fn an_error_reply_names_bus_method_error_and_message() {
        let e: Error = BusError {
            bus: "/run/dbus/system_bus_socket".into(),
            method: "org.freedesktop.systemd1.Manager.StartTransientUnit".into(),
            name: "org.freedesktop.systemd1.UnitExists".into(),
            message: "Unit a: b.scope already exists.".into(),
        }
        .into();
        assert_eq!(
            e.to_string(),
            "d-bus /run/dbus/system_bus_socket: org.freedesktop.systemd1.Manager.StartTransientUnit: org.freedesktop.systemd1.UnitExists: Unit a: b.scope already exists."
        );
    }

    #[test]
    fn a_bus_that_refuses_authentication() {
        let path = fake_bus("refuse", b"REJECTED EXTERNAL\r\n", |_| Vec::new());
        let e = Conn::open(&path).err().expect("refused").to_string();
        assert!(e.starts_with(&format!("d-bus {path}: the bus refused authentication as uid ")), "{e}");
    }

    #[test]
    fn no_bus_at_all() {
        let e = Conn::open("/nonexistent/bus").err().expect("no bus").to_string();
        assert_eq!(e, "d-bus /nonexistent/bus: connect: no such file or directory");
    }

    #[test]
    fn calls_replies_errors_and_signals() {
        let path = fake_bus("calls", b"OK 0123456789abcdef\r\n", |m| match m.member.as_deref() {
            Some("Hello") => vec![reply(m, None, vec![Value::str(":1.7")])],
            // A signal arrives before the reply and is kept for later.
            Some("Ping") => vec![
                Message { kind: Some(Kind::Signal), serial: 1, member: Some("JobRemoved".into()), body: vec![Value::U32(3)], ..Default::default() },
                reply(m, None, m.body.clone()),
            ],
            _ => vec![reply(m, Some("org.example.Nope"), vec![Value::str("no such thing")])],
        });
        let mut c = Conn::open(&path).expect("connect");
        assert_eq!(c.try_call("d", "/p", "i.f", "Ping", vec![Value::U64(5)]).expect("transport").ok(), Some(vec![Value::U64(5)]));
        let e = c.try_call("d", "/p", "i.f", "Other", vec![]).expect("transport").expect_err("error reply").to_string();
        assert_eq!(e, format!("d-bus {path}: i.f.Other: org.example.Nope: no such thing"));
        // Two calls in one round trip, their replies taken in the other order.
        let a = c.send("d", "/p", "i.f", "Ping", vec![Value::U32(1)]).expect("send a");
        let b = c.send("d", "/p", "i.f", "Ping", vec![Value::U32(2)]).expect("send b");
        assert_eq!(c.reply(b, "b").expect("transport").ok(), Some(vec![Value::U32(2)]));
        assert_eq!(c.reply(a, "a").expect("transport").ok(), Some(vec![Value::U32(1)]));
        let s = c.wait_signal(Instant::now() + Duration::from_secs(1), "wait", |m| m.member.as_deref() == Some("JobRemoved")).expect("queued signal");
        assert_eq!(s.body, vec![Value::U32(3)]);
        let e = c
            .wait_signal(Instant::now() + Duration::from_millis(50), "wait for nothing", |m| m.member.as_deref() == Some("Never"))
            .expect_err("timeout")
            .to_string();
        assert_eq!(e, format!("d-bus {path}: wait for nothing: no answer: connection timed out"));
    }
}
