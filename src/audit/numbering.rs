//! Item numbers. testudo reports the CIS Docker Benchmark v1.6.0 numbering (what Docker Bench and
//! most scanners print); v1.7.0 numbers every item of section 5 one higher (5.4 "privileged" of
//! v1.6.0 is 5.5 there). A policy's `ignore` may use either, saying which with `numbering`: the
//! same number names different items in the two, so it is never guessed.

use std::borrow::Cow;

/// The item of the reported (v1.6.0) numbering that `item`, numbered as `numbering` says, names.
pub fn to_reported<'a>(numbering: &str, item: &'a str) -> Result<Cow<'a, str>, String> {
    match numbering {
        "v1.6.0" => Ok(Cow::Borrowed(item)),
        "v1.7.0" => match item.strip_prefix("5.").map(str::parse::<u32>) {
            Some(Ok(n)) if n >= 2 => Ok(Cow::Owned(format!("5.{}", n - 1))),
            Some(_) => Err(format!("ignore: {item:?} is not a section-5 item of v1.7.0 testudo audits")),
            None => Ok(Cow::Borrowed(item)),
        },
        other => Err(format!("numbering {other:?}: expected \"v1.6.0\" or \"v1.7.0\"")),
    }
}
