//! `--log FILE` and `--log-format text|json`. The containerd shim reads the last
//! `{"level":"error",...}` line of the log to tell users why a container failed, so `main` writes
//! exactly one error record per failure; nothing else logs errors.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    Text,
    Json,
}

struct Log {
    file: Option<File>,
    format: Format,
    debug: bool,
}

static LOG: OnceLock<Log> = OnceLock::new();

/// Open the log. Without `--log`, records go to stderr (as runc does).
pub fn init(path: Option<&Path>, format: Format, debug: bool) -> std::io::Result<()> {
    let file = match path {
        Some(p) => Some(std::fs::OpenOptions::new().append(true).create(true).custom_flags(libc::O_CLOEXEC).mode(0o644).open(p)?),
        None => None,
    };
    let _ = LOG.set(Log { file, format, debug });
    Ok(())
}

/// Whether records go to a file (then `main` also prints the final error on stderr).
pub fn to_file() -> bool {
    LOG.get().is_some_and(|l| l.file.is_some())
}

pub fn debug_enabled() -> bool {
    LOG.get().is_some_and(|l| l.debug)
}

pub fn error(msg: &str) {
    write("error", msg);
}

pub fn warn(msg: &str) {
    write("warning", msg);
}

/// Debug records are built only when `--debug` is on.
pub fn debug(msg: impl FnOnce() -> String) {
    if debug_enabled() {
        write("debug", &msg());
    }
}

fn write(level: &str, msg: &str) {
    let (format, file) = match LOG.get() {
        Some(l) => (l.format, l.file.as_ref()),
        None => (Format::Text, None),
    };
    let line = record(format, level, msg, &rfc3339(SystemTime::now()));
    // One write(2) per record so concurrent writers (several runtime calls) never interleave.
    let _ = match file {
        Some(mut f) => f.write_all(line.as_bytes()),
        None => std::io::stderr().write_all(line.as_bytes()),
    };
}

fn record(format: Format, level: &str, msg: &str, time: &str) -> String {
    match format {
        Format::Json => {
            let v = serde_json::json!({ "level": level, "msg": msg, "time": time });
            format!("{v}\n")
        }
        Format::Text => format!("time={time:?} level={level} msg={msg:?}\n"),
    }
}

/// RFC 3339 in UTC with nanoseconds, the form Go's time.Time parses ("created" in the state too).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z", rem / 3600, rem % 3600 / 60, rem % 60, d.subsec_nanos())
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn json_record_is_what_the_containerd_shim_parses() {
        let line = record(Format::Json, "error", "create: mount \"/proc\": no such device", "T");
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).expect("json");
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "create: mount \"/proc\": no such device");
        assert_eq!(v["time"], "T");
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    }

    #[test]
    fn text_record_quotes_the_message() {
        let line = record(Format::Text, "error", "a \"b\"", "T");
        assert_eq!(line, "time=\"T\" level=error msg=\"a \\\"b\\\"\"\n");
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        // 2024-02-29T12:34:56.5Z, a leap day.
        let t = UNIX_EPOCH + Duration::new(1_709_210_096, 500_000_000);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.500000000Z");
    }
}
