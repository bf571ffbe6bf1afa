//! D-Bus marshalling of the values the runtime sends and receives: every basic type but
//! doubles and unix fds, arrays, structs, dict entries and variants. Values are written
//! little-endian; a message from a big-endian peer is read with its own byte order. Alignment is
//! relative to the start of the message: the header is padded to 8, so a body encoded from
//! offset 0 has the same padding as inside the message.

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Str(String),
    Path(String),
    Sig(String),
    /// The element signature (needed for an empty array) and the elements.
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    /// A `{kv}` entry of a dictionary (an array of them).
    Entry(Box<Value>, Box<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(s.to_string())
    }

    pub fn variant(v: Value) -> Value {
        Value::Variant(Box::new(v))
    }

    pub fn bytes(b: &[u8]) -> Value {
        Value::Array("y".into(), b.iter().map(|&x| Value::Byte(x)).collect())
    }

    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I16(_) => "n".into(),
            Value::U16(_) => "q".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(m) => format!("({})", m.iter().map(Value::signature).collect::<String>()),
            Value::Entry(k, v) => format!("{{{}{}}}", k.signature(), v.signature()),
            Value::Variant(_) => "v".into(),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(x) => Some(*x),
            _ => None,
        }
    }
}

/// Alignment of the type a signature starts with.
fn alignment(sig: u8) -> usize {
    match sig {
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b's' | b'o' | b'a' | b'h' => 4,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 1,
    }
}

/// The first complete type of `sig` and the rest.
pub fn split_first(sig: &str) -> Result<(&str, &str)> {
    let b = sig.as_bytes();
    let bad = || Error::new(format!("d-bus signature {sig:?} is malformed"));
    let mut i = 0;
    while b.get(i) == Some(&b'a') {
        i += 1;
    }
    match b.get(i) {
        None => Err(bad()),
        Some(&open @ (b'(' | b'{')) => {
            let close = if open == b'(' { b')' } else { b'}' };
            let mut depth = 0usize;
            for (j, &c) in b.iter().enumerate().skip(i) {
                if c == b'(' || c == b'{' {
                    depth += 1;
                } else if c == b')' || c == b'}' {
                    depth -= 1;
                    if depth == 0 {
                        // An empty struct is not a type (and an array of it would never end).
                        return if c == close && j > i + 1 { Ok((&sig[..=j], &sig[j + 1..])) } else { Err(bad()) };
                    }
                }
            }
            Err(bad())
        }
        Some(c) if b"ybnqiuxtdsogvh".contains(c) => Ok((&sig[..=i], &sig[i + 1..])),
        Some(_) => Err(bad()),
    }
}

#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, n: usize) {
        while self.buf.len() % n != 0 {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, x: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&x.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    pub fn put(&mut self, v: &Value) {
        match v {
            Value::Byte(x) => self.buf.push(*x),
            Value::Bool(x) => self.u32(*x as u32),
            Value::I16(x) => {
                self.pad(2);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::U16(x) => {
                self.pad(2);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::I32(x) => self.u32(*x as u32),
            Value::U32(x) => self.u32(*x),
            Value::I64(x) => {
                self.pad(8);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::U64(x) => {
                self.pad(8);
                self.buf.extend_from_slice(&x.to_le_bytes());
            }
            Value::Str(s) | Value::Path(s) => self.string(s),
            Value::Sig(s) => {
                self.buf.push(s.len() as u8);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Array(elem, items) => {
                self.pad(4);
                let at = self.buf.len();
                self.buf.extend_from_slice(&[0; 4]);
                // The padding to the first element is there even for an empty array, and is not
                // counted in the length.
                self.pad(alignment(elem.as_bytes().first().copied().unwrap_or(b'y')));
                let start = self.buf.len();
                for item in items {
                    self.put(item);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(members) => {
                self.pad(8);
                for m in members {
                    self.put(m);
                }
            }
            Value::Entry(k, v) => {
                self.pad(8);
                self.put(k);
                self.put(v);
            }
            Value::Variant(inner) => {
                self.put(&Value::Sig(inner.signature()));
                self.put(inner);
            }
        }
    }
}

/// Values in order, as a message body.
pub fn encode(values: &[Value]) -> Vec<u8> {
    let mut w = Writer::default();
    for v in values {
        w.put(v);
    }
    w.buf
}

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big: bool,
}

/// Containers nest at most this deep in a message (the specification's limit is 64).
const MAX_DEPTH: usize = 64;

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], big: bool) -> Reader<'a> {
        Reader { buf, pos: 0, big }
    }

    fn short() -> Error {
        Error::new("d-bus message is truncated or malformed")
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(Self::short)?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn align(&mut self, n: usize) -> Result<()> {
        let pad = (n - self.pos % n) % n;
        self.take(pad).map(|_| ())
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.align(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        if self.big {
            a.reverse();
        }
        Ok(a)
    }

    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.fixed()?))
    }

    fn text(&mut self, len: usize) -> Result<String> {
        let bytes = self.take(len + 1)?;
        if bytes[len] != 0 {
            return Err(Self::short());
        }
        String::from_utf8(bytes[..len].to_vec()).map_err(|_| Error::new("d-bus string is not UTF-8"))
    }

    /// Values of the (possibly several) types in `sig`.
    pub fn values(&mut self, mut sig: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        while !sig.is_empty() {
            let (first, rest) = split_first(sig)?;
            out.push(self.value(first, 0)?);
            sig = rest;
        }
        Ok(out)
    }

    fn value(&mut self, sig: &str, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(Error::new("d-bus message nests too deep"));
        }
        let b = sig.as_bytes();
        Ok(match b[0] {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => match self.u32()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return Err(Error::new("d-bus boolean is neither 0 nor 1")),
            },
            b'n' => Value::I16(i16::from_le_bytes(self.fixed()?)),
            b'q' => Value::U16(u16::from_le_bytes(self.fixed()?)),
            b'i' => Value::I32(i32::from_le_bytes(self.fixed()?)),
            b'u' | b'h' => Value::U32(self.u32()?),
            b'x' => Value::I64(i64::from_le_bytes(self.fixed()?)),
            // A double is kept as its bits: the runtime reads none.
            b't' | b'd' => Value::U64(u64::from_le_bytes(self.fixed()?)),
            b's' => {
                let n = self.u32()? as usize;
                Value::Str(self.text(n)?)
            }
            b'o' => {
                let n = self.u32()? as usize;
                Value::Path(self.text(n)?)
            }
            b'g' => {
                let n = self.take(1)?[0] as usize;
                Value::Sig(self.text(n)?)
            }
            b'v' => {
                let n = self.take(1)?[0] as usize;
                let inner = self.text(n)?;
                let (first, rest) = split_first(&inner)?;
                if !rest.is_empty() {
                    return Err(Error::new(format!("d-bus variant signature {inner:?} holds more than one type")));
                }
                Value::variant(self.value(first, depth + 1)?)
            }
            b'a' => {
                let len = self.u32()? as usize;
                let elem = &sig[1..];
                self.align(alignment(elem.as_bytes()[0]))?;
                let end = self.pos.checked_add(len).filter(|&e| e <= self.buf.len()).ok_or_else(Self::short)?;
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.value(elem, depth + 1)?);
                }
                if self.pos != end {
                    return Err(Self::short());
                }
                Value::Array(elem.to_string(), items)
            }
            b'(' => {
                self.align(8)?;
                let members = Reader::members(&sig[1..sig.len() - 1])?;
                let mut out = Vec::new();
                for m in members {
                    out.push(self.value(m, depth + 1)?);
                }
                Value::Struct(out)
            }
            b'{' => {
                self.align(8)?;
                let (k, v) = split_first(&sig[1..sig.len() - 1])?;
                let key = self.value(k, depth + 1)?;
                let val = self.value(v, depth + 1)?;
                Value::Entry(Box::new(key), Box::new(val))
            }
            _ => return Err(Error::new(format!("d-bus type {sig:?} is not supported"))),
        })
    }

    fn members(mut sig: &str) -> Result<Vec<&str>> {
        let mut out = Vec::new();
        while !sig.is_empty() {
            let (first, rest) = split_first(sig)?;
            out.push(first);
            sig = rest;
        }
        Ok(out)
    }

    pub fn pos(&self) -> usize {
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: Value) {
        let bytes = encode(std::slice::from_ref(&v));
        let got = Reader::new(&bytes, false).values(&v.signature()).expect("decode");
        assert_eq!(got, vec![v]);
    }

    #[test]
    fn strings_and_padding() {
        assert_eq!(encode(&[Value::str("ab")]), b"\x02\0\0\0ab\0");
        // A byte, then a u32 aligned to 4, then a signature (no alignment).
        assert_eq!(encode(&[Value::Byte(7), Value::U32(1), Value::Sig("t".into())]), b"\x07\0\0\0\x01\0\0\0\x01t\0");
        assert_eq!(encode(&[Value::Bool(true)]), b"\x01\0\0\0");
    }

    #[test]
    fn arrays_count_their_bytes_not_the_padding() {
        // a(t): length 8, padding to 8 after the length not counted.
        assert_eq!(encode(&[Value::Array("t".into(), vec![Value::U64(1)])]), b"\x08\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0");
        // An empty array of structs still pads to the struct alignment.
        assert_eq!(encode(&[Value::Array("(sv)".into(), vec![])]), b"\0\0\0\0\0\0\0\0");
        assert_eq!(encode(&[Value::bytes(&[0x0f, 0x01])]), b"\x02\0\0\0\x0f\x01");
        assert_eq!(encode(&[Value::Array("u".into(), vec![Value::U32(5)])]), b"\x04\0\0\0\x05\0\0\0");
    }

    #[test]
    fn a_property_is_a_struct_of_name_and_variant() {
        // (sv) with a uint64: struct at 0, "Delegate"-like name, variant signature "t", pad to 8.
        let p = Value::Struct(vec![Value::str("Max"), Value::variant(Value::U64(0x0102))]);
        assert_eq!(p.signature(), "(sv)");
        assert_eq!(encode(std::slice::from_ref(&p)), b"\x03\0\0\0Max\0\x01t\0\0\0\0\0\0\x02\x01\0\0\0\0\0\0");
        roundtrip(Value::Array("(sv)".into(), vec![p.clone(), Value::Struct(vec![Value::str("B"), Value::variant(Value::Bool(true))])]));
        roundtrip(Value::Array("(sa(sv))".into(), vec![]));
    }

    #[test]
    fn every_kind_roundtrips() {
        roundtrip(Value::Struct(vec![
            Value::Byte(1),
            Value::I16(-2),
            Value::U16(3),
            Value::I32(-4),
            Value::I64(-5),
            Value::U64(u64::MAX),
            Value::Path("/org/freedesktop/systemd1/job/7".into()),
            Value::Array("au".into(), vec![Value::Array("u".into(), vec![Value::U32(1), Value::U32(2)])]),
            Value::Array("{sv}".into(), vec![Value::Entry(Box::new(Value::str("k")), Box::new(Value::variant(Value::str("v"))))]),
        ]));
    }

    #[test]
    fn signatures_split_into_complete_types() {
        assert_eq!(split_first("ssa(sv)a(sa(sv))").ok(), Some(("s", "sa(sv)a(sa(sv))")));
        assert_eq!(split_first("a(sa(sv))").ok(), Some(("a(sa(sv))", "")));
        assert_eq!(split_first("a{sv}u").ok(), Some(("a{sv}", "u")));
        for bad in ["", "a", "(s", "(s}", "z", "()", "a()"] {
            assert!(split_first(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert!(Reader::new(b"\x05\0\0\0ab", false).values("s").is_err());
        assert!(Reader::new(b"\xff\xff\xff\x7f", false).values("ay").is_err());
        assert!(Reader::new(b"\x02\0\0\0", false).values("b").is_err());
        assert!(Reader::new(b"\x02\0\0\0ab\x01", false).values("s").is_err(), "missing nul");
        assert!(Reader::new(b"\x01z\0", false).values("v").is_err(), "unknown type in a variant");
        let mut deep = b"\x01v\0".repeat(70);
        deep.extend_from_slice(b"\x01y\0\x05");
        let e = Reader::new(&deep, false).values("v").expect_err("too deep").to_string();
        assert_eq!(e, "d-bus message nests too deep");
    }

    #[test]
    fn big_endian_peers_are_read() {
        assert_eq!(Reader::new(b"\0\0\0\x02ab\0", true).values("s").ok(), Some(vec![Value::str("ab")]));
        assert_eq!(Reader::new(b"\0\0\0\0\0\0\x01\x02", true).values("t").ok(), Some(vec![Value::U64(0x0102)]));
    }
}
