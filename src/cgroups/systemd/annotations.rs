//! `org.systemd.property.<Name>` annotations: extra properties of the scope, as runc takes them
//! (docs/systemd-properties.md there). The name is ASCII letters only, at least three; the value
//! is GVariant text. Supported: booleans, strings ('…' or "…"), numbers (an untyped integer is
//! int32, as GVariant says; a type keyword or `@t` names another: `uint64 123`). A name ending
//! in a lower-case letter then `Sec` (TimeoutStopSec) is renamed to …USec and its value, a number
//! of seconds, converted to microseconds. Anything else (arrays, tuples) is refused, never sent
//! half-understood.

use std::collections::HashMap;

use crate::dbus::Value;
use crate::error::{Error, Result};

use super::properties::Property;

const PREFIX: &str = "org.systemd.property.";

/// The properties the annotations ask for, in the order of their keys (stable for tests).
pub fn properties(annotations: &HashMap<String, String>) -> Result<Vec<Property>> {
    let mut keys: Vec<&String> = annotations.keys().filter(|k| k.starts_with(PREFIX)).collect();
    keys.sort();
    let mut out = Vec::new();
    for key in keys {
        let name = &key[PREFIX.len()..];
        let text = &annotations[key];
        if name.len() < 3 || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(Error::new(format!("annotation {key}: a systemd property name is at least three ASCII letters")));
        }
        let bad = |why: String| Error::new(format!("annotation {key}={text:?}: {why}"));
        let value = parse(text).map_err(bad)?;
        match name.strip_suffix("Sec").filter(|stem| stem.bytes().last().is_some_and(|b| b.is_ascii_lowercase())) {
            Some(stem) => {
                let usec = seconds_to_usec(&value).ok_or_else(|| bad("a ...Sec property takes a number of seconds".into()))?;
                out.push((format!("{stem}USec"), Value::U64(usec)));
            }
            None => out.push((name.to_string(), value.into_value().map_err(bad)?)),
        }
    }
    Ok(out)
}

#[derive(Debug, PartialEq)]
enum Parsed {
    Value(Value),
    Double(f64),
}

impl Parsed {
    fn into_value(self) -> std::result::Result<Value, String> {
        match self {
            Parsed::Value(v) => Ok(v),
            Parsed::Double(_) => Err("a floating-point value is only understood for a ...Sec property".into()),
        }
    }
}

fn seconds_to_usec(v: &Parsed) -> Option<u64> {
    const M: u64 = 1_000_000;
    match v {
        Parsed::Double(d) if *d >= 0.0 => Some((*d * M as f64) as u64),
        Parsed::Value(Value::Byte(n)) => Some(*n as u64 * M),
        Parsed::Value(Value::U16(n)) => Some(*n as u64 * M),
        Parsed::Value(Value::U32(n)) => Some(*n as u64 * M),
        Parsed::Value(Value::U64(n)) => n.checked_mul(M),
        Parsed::Value(Value::I16(n)) => u64::try_from(*n).ok().map(|n| n * M),
        Parsed::Value(Value::I32(n)) => u64::try_from(*n).ok().map(|n| n * M),
        Parsed::Value(Value::I64(n)) => u64::try_from(*n).ok().and_then(|n| n.checked_mul(M)),
        _ => None,
    }
}

fn parse(text: &str) -> std::result::Result<Parsed, String> {
    let t = text.trim();
    match t {
        "true" => return Ok(Parsed::Value(Value::Bool(true))),
        "false" => return Ok(Parsed::Value(Value::Bool(false))),
        _ => {}
    }
    if let Some(s) = string(t) {
        return s.map(|s| Parsed::Value(Value::Str(s)));
    }
    let (kind, num) = match t.split_once(char::is_whitespace) {
        Some((k, rest)) => (k, rest.trim()),
        None => ("", t),
    };
    let kind = match kind {
        "" => "i",
        "byte" | "@y" => "y",
        "int16" | "@n" => "n",
        "uint16" | "@q" => "q",
        "int32" | "@i" => "i",
        "uint32" | "@u" => "u",
        "int64" | "@x" => "x",
        "uint64" | "@t" => "t",
        "double" | "@d" => "d",
        "boolean" | "@b" => return parse(num).and_then(|p| if matches!(p, Parsed::Value(Value::Bool(_))) { Ok(p) } else { Err("not a boolean".into()) }),
        "string" | "@s" => return string(num).unwrap_or_else(|| Err("not a quoted string".into())).map(|s| Parsed::Value(Value::Str(s))),
        other => return Err(format!("unsupported GVariant type {other:?} (booleans, strings and numbers are)")),
    };
    let float = kind == "d" || (kind == "i" && t == num && (num.contains('.') || num.contains(['e', 'E'])));
    if float {
        return num.parse::<f64>().map(Parsed::Double).map_err(|_| "not a number".into());
    }
    let n: i128 = num.parse().map_err(|_| "not a number, a boolean or a quoted string (arrays and tuples are not supported)".to_string())?;
    let range = || format!("{n} is out of range for GVariant type {kind}");
    Ok(Parsed::Value(match kind {
        "y" => Value::Byte(u8::try_from(n).map_err(|_| range())?),
        "n" => Value::I16(i16::try_from(n).map_err(|_| range())?),
        "q" => Value::U16(u16::try_from(n).map_err(|_| range())?),
        "i" => Value::I32(i32::try_from(n).map_err(|_| range())?),
        "u" => Value::U32(u32::try_from(n).map_err(|_| range())?),
        "x" => Value::I64(i64::try_from(n).map_err(|_| range())?),
        _ => Value::U64(u64::try_from(n).map_err(|_| range())?),
    }))
}

/// A quoted GVariant string, None if `t` is not quoted.
fn string(t: &str) -> Option<std::result::Result<String, String>> {
    let q = t.chars().next().filter(|&c| c == '\'' || c == '"')?;
    let inner = t.strip_prefix(q).and_then(|s| s.strip_suffix(q)).filter(|_| t.len() >= 2);
    let Some(inner) = inner else { return Some(Err("unterminated string".into())) };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(e @ ('\\' | '\'' | '"')) => out.push(e),
                _ => return Some(Err("unsupported escape in string".into())),
            },
            c if c == q => return Some(Err("unescaped quote inside string".into())),
            c => out.push(c),
        }
    }
    Some(Ok(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Result<Vec<Property>> {
        properties(&pairs.iter().map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string())).collect())
    }

    #[test]
    fn runc_documented_examples() {
        let p = props(&[("TimeoutStopUSec", "uint64 123456789"), ("CollectMode", "'inactive-or-failed'")]).expect("props");
        assert_eq!(p, vec![("CollectMode".into(), Value::str("inactive-or-failed")), ("TimeoutStopUSec".into(), Value::U64(123456789))]);
    }

    #[test]
    fn sec_becomes_usec() {
        assert_eq!(props(&[("TimeoutStopSec", "2")]).expect("int"), vec![("TimeoutStopUSec".into(), Value::U64(2_000_000))]);
        assert_eq!(props(&[("RuntimeMaxSec", "1.5")]).expect("double"), vec![("RuntimeMaxUSec".into(), Value::U64(1_500_000))]);
        assert_eq!(props(&[("TimeoutStopSec", "uint64 3")]).expect("typed"), vec![("TimeoutStopUSec".into(), Value::U64(3_000_000))]);
        assert!(props(&[("TimeoutStopSec", "'2'")]).expect_err("string").to_string().contains("takes a number of seconds"));
    }

    #[test]
    fn types() {
        assert_eq!(props(&[("Delegate", "true")]).expect("bool"), vec![("Delegate".into(), Value::Bool(true))]);
        assert_eq!(props(&[("CPUWeight", "@t 50")]).expect("@t"), vec![("CPUWeight".into(), Value::U64(50))]);
        assert_eq!(props(&[("Nice", "5")]).expect("int32"), vec![("Nice".into(), Value::I32(5))]);
        assert_eq!(props(&[("Description", r#""a \"b\"""#)]).expect("dq"), vec![("Description".into(), Value::str("a \"b\""))]);
        assert!(props(&[("Nice", "uint32 -1")]).is_err());
        assert!(props(&[("DeviceAllow", "['/dev/null rw']")]).is_err(), "arrays are refused, not half-read");
        assert!(props(&[("Nice", "1.5")]).is_err(), "a double only for ...Sec");
    }

    #[test]
    fn names() {
        let e = props(&[("CPU_Weight", "1")]).expect_err("underscore").to_string();
        assert_eq!(e, "annotation org.systemd.property.CPU_Weight: a systemd property name is at least three ASCII letters");
        assert!(props(&[("AB", "1")]).is_err());
        assert!(properties(&HashMap::from([("org.other.x".to_string(), "?".to_string())])).expect("ignored").is_empty());
    }
}
