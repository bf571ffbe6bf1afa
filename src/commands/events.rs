//! `events [--stats] [--interval D] ID`: runc's event stream. `--stats` prints one statistics
//! object; otherwise a statistics object every interval and an `{"type":"oom"}` object whenever
//! the OOM killer kills in the container's cgroup, until the container stops.
//!
//! OOM kills are counted by the kernel in memory.events (`oom_kill`); the kernel signals every
//! change of that file and of cgroup.events with POLLPRI, so the stream sleeps in poll. A kernfs
//! file only re-arms its poll once read through the polled fd, hence `read_at` on those fds.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::cgroups::stats;
use crate::cli::Events;
use crate::commands::{peek, Global};
use crate::container::Status;
use crate::error::{Context, Error, Result};

/// A Go duration as runc's flag takes it: "5s", "500ms", "1m30s", "1.5h".
pub fn duration(s: &str) -> Result<Duration> {
    let bad = || Error::new(format!("invalid --interval {s:?}"));
    let mut rest = s.trim();
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[u..];
        total += value * scale;
    }
    if total <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

/// runc's event, its keys in runc's order (its Event struct: type, id, data): a JSON parser does
/// not care, a client reading the text may.
#[derive(serde::Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    typ: &'static str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<stats::Stats>,
}

fn emit(e: &Event) -> Result<()> {
    let text = serde_json::to_string(e).map_err(|err| Error::new(format!("event: {err}")))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").and_then(|_| out.flush()).context("write event")
}

fn stats_event<'a>(cg: &crate::cgroups::Cgroup, id: &'a str) -> Event<'a> {
    Event { typ: "stats", id, data: Some(stats::read(cg)) }
}

fn read_from(f: &File) -> String {
    let mut buf = vec![0u8; 4096];
    let n = f.read_at(&mut buf, 0).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn value(text: &str, key: &str) -> u64 {
    text.lines().find_map(|l| l.split_once(' ').filter(|(k, _)| *k == key).and_then(|(_, v)| v.trim().parse().ok())).unwrap_or(0)
}

pub fn run(g: &Global, e: &Events) -> Result<i32> {
    let interval = duration(&e.interval)?;
    let (dir, facts) = peek(g, &e.id)?;
    let facts = facts.ok_or_else(|| Error::new(format!("container {:?} is still being created", e.id)))?;
    if super::status(&dir, Some(&facts)) == Status::Stopped {
        return Err(Error::new(format!("container {:?} is not running", e.id)));
    }
    let cg = super::cgroup(&facts, "events")?;
    if e.stats {
        emit(&stats_event(&cg, &e.id))?;
        return Ok(0);
    }
    let path = |f: &str| cg.path.join(f);
    let cgroup_events = File::open(path("cgroup.events")).with_context(|| format!("open {:?}", path("cgroup.events")))?;
    let memory_events = File::open(path("memory.events")).ok();
    let mut oom_kills = memory_events.as_ref().map_or(0, |f| value(&read_from(f), "oom_kill"));
    let mut next = Instant::now();
    loop {
        if value(&read_from(&cgroup_events), "populated") == 0 {
            return Ok(0);
        }
        if let Some(f) = &memory_events {
            let now = value(&read_from(f), "oom_kill");
            for _ in oom_kills..now {
                emit(&Event { typ: "oom", id: &e.id, data: None })?;
            }
            oom_kills = oom_kills.max(now);
        }
        if Instant::now() >= next {
            emit(&stats_event(&cg, &e.id))?;
            next += interval;
        }
        let left = next.saturating_duration_since(Instant::now()).as_millis().min(i32::MAX as u128) as i32;
        let mut fds = vec![PollFd::new(cgroup_events.as_fd(), PollFlags::POLLPRI)];
        if let Some(f) = &memory_events {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLPRI));
        }
        match poll(&mut fds, PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(err) => return Err(Error::sys("poll cgroup events", err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(duration("5s").ok(), Some(Duration::from_secs(5)));
        assert_eq!(duration("500ms").ok(), Some(Duration::from_millis(500)));
        assert_eq!(duration("1m30s").ok(), Some(Duration::from_secs(90)));
        assert_eq!(duration("1.5s").ok(), Some(Duration::from_millis(1500)));
        for bad in ["", "5", "s", "5x", "0s", "-1s"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }
}
