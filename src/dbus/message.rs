//! A D-Bus message: the fixed header (byte order, type, flags, version, body length, serial),
//! the header fields (an `a(yv)` of path, interface, member, error name, reply serial,
//! destination, sender, signature), padding to 8, the body.

use super::wire::{Reader, Value, Writer};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Call = 1,
    Return = 2,
    Error = 3,
    Signal = 4,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Message {
    pub kind: Option<Kind>,
    pub serial: u32,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub reply_serial: Option<u32>,
    pub destination: Option<String>,
    pub sender: Option<String>,
    pub body: Vec<Value>,
}

/// No message is longer (the specification's limit is 128 MiB; replies the runtime waits for
/// are a few hundred bytes).
const MAX_MESSAGE: usize = 8 << 20;

impl Message {
    pub fn call(dest: &str, path: &str, iface: &str, member: &str, body: Vec<Value>) -> Message {
        Message {
            kind: Some(Kind::Call),
            path: Some(path.into()),
            interface: Some(iface.into()),
            member: Some(member.into()),
            destination: Some(dest.into()),
            body,
            ..Default::default()
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let body = super::wire::encode(&self.body);
        let signature: String = self.body.iter().map(Value::signature).collect();
        let mut fields = Vec::new();
        let mut field = |code: u8, v: Value| fields.push(Value::Struct(vec![Value::Byte(code), Value::variant(v)]));
        if let Some(p) = &self.path {
            field(1, Value::Path(p.clone()));
        }
        if let Some(s) = &self.interface {
            field(2, Value::Str(s.clone()));
        }
        if let Some(s) = &self.member {
            field(3, Value::Str(s.clone()));
        }
        if let Some(s) = &self.error_name {
            field(4, Value::Str(s.clone()));
        }
        if let Some(n) = self.reply_serial {
            field(5, Value::U32(n));
        }
        if let Some(s) = &self.destination {
            field(6, Value::Str(s.clone()));
        }
        if let Some(s) = &self.sender {
            field(7, Value::Str(s.clone()));
        }
        if !signature.is_empty() {
            field(8, Value::Sig(signature));
        }
        let mut w = Writer::default();
        w.buf.extend_from_slice(&[b'l', self.kind.map_or(0, |k| k as u8), 0, 1]);
        w.put(&Value::U32(body.len() as u32));
        w.put(&Value::U32(self.serial));
        w.put(&Value::Array("(yv)".into(), fields));
        // The body starts 8-aligned.
        while w.buf.len() % 8 != 0 {
            w.buf.push(0);
        }
        w.buf.extend_from_slice(&body);
        w.buf
    }

    /// The length of the message at the start of `buf`, once its fixed header is there.
    pub fn length(buf: &[u8]) -> Result<Option<usize>> {
        if buf.len() < 16 {
            return Ok(None);
        }
        let big = byte_order(buf[0])?;
        let mut r = Reader::new(&buf[4..16], big);
        let body = r.u32()? as usize;
        let _serial = r.u32()?;
        let fields = r.u32()? as usize;
        let len = (16 + fields).div_ceil(8) * 8 + body;
        if len > MAX_MESSAGE {
            return Err(Error::new(format!("d-bus message of {len} bytes is too long")));
        }
        Ok(Some(len))
    }

    /// One whole message (`buf` is exactly `length` bytes).
    pub fn decode(buf: &[u8]) -> Result<Message> {
        let big = byte_order(buf[0])?;
        let mut r = Reader::new(buf, big);
        let head = r.values("yyyyuua(yv)")?;
        let mut m = Message {
            kind: match head[1] {
                Value::Byte(1) => Some(Kind::Call),
                Value::Byte(2) => Some(Kind::Return),
                Value::Byte(3) => Some(Kind::Error),
                Value::Byte(4) => Some(Kind::Signal),
                _ => None,
            },
            serial: head[5].as_u32().unwrap_or(0),
            ..Default::default()
        };
        let mut signature = String::new();
        if let Value::Array(_, fields) = &head[6] {
            for f in fields {
                let Value::Struct(kv) = f else { continue };
                let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (kv.first(), kv.get(1)) else { continue };
                let text = v.as_str().map(str::to_string);
                match code {
                    1 => m.path = text,
                    2 => m.interface = text,
                    3 => m.member = text,
                    4 => m.error_name = text,
                    5 => m.reply_serial = v.as_u32(),
                    6 => m.destination = text,
                    7 => m.sender = text,
                    8 => signature = text.unwrap_or_default(),
                    _ => {}
                }
            }
        }
        let start = r.pos().div_ceil(8) * 8;
        let body = buf.get(start..).ok_or_else(|| Error::new("d-bus message is truncated"))?;
        m.body = Reader::new(body, big).values(&signature)?;
        Ok(m)
    }
}

fn byte_order(b: u8) -> Result<bool> {
    match b {
        b'l' => Ok(false),
        b'B' => Ok(true),
        _ => Err(Error::new(format!("d-bus message with byte order {b:#x}: the peer does not speak d-bus"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// org.freedesktop.DBus.Hello as every client sends it first (fields path, interface,
    /// member, destination; the array is 109 bytes, the header padded to 128).
    const HELLO: &[u8] = b"l\x01\x00\x01\x00\x00\x00\x00\x01\x00\x00\x00\x6d\x00\x00\x00\
        \x01\x01o\x00\x15\x00\x00\x00/org/freedesktop/DBus\x00\x00\x00\
        \x02\x01s\x00\x14\x00\x00\x00org.freedesktop.DBus\x00\x00\x00\x00\
        \x03\x01s\x00\x05\x00\x00\x00Hello\x00\x00\x00\
        \x06\x01s\x00\x14\x00\x00\x00org.freedesktop.DBus\x00\x00\x00\x00";

    #[test]
    fn hello_byte_for_byte() {
        let mut m = Message::call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", vec![]);
        m.serial = 1;
        let bytes = m.encode();
        assert_eq!(bytes, HELLO);
        assert_eq!(Message::length(&bytes).ok(), Some(Some(128)));
        assert_eq!(Message::decode(&bytes).ok(), Some(m));
    }

    #[test]
    fn a_reply_with_a_body() {
        let m = Message {
            kind: Some(Kind::Error),
            serial: 9,
            reply_serial: Some(4),
            error_name: Some("org.freedesktop.systemd1.UnitExists".into()),
            sender: Some(":1.0".into()),
            body: vec![Value::str("Unit x.scope already exists.")],
            ..Default::default()
        };
        let bytes = m.encode();
        assert_eq!((bytes.len() - 33) % 8, 0, "the body (33 bytes) starts 8-aligned");
        assert_eq!(Message::length(&bytes[..16]).ok(), Some(Some(bytes.len())));
        assert_eq!(Message::decode(&bytes).ok(), Some(m));
    }

    #[test]
    fn not_d_bus() {
        assert!(Message::length(b"HTTP/1.1 400 Bad").is_err());
        assert!(Message::length(b"l\x02\0\x01\xff\xff\xff\x7f\0\0\0\0\0\0\0\0").is_err(), "too long");
    }
}
