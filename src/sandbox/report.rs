//! Why a job ended, the exit code that says it, and the `--report` JSON.
//!
//! | exit  | reason           | when                                                              |
//! |-------|------------------|-------------------------------------------------------------------|
//! | job's | exited           | the job ended on its own: its code, or 128 + the signal           |
//! | 124   | timeout          | `--timeout` passed (SIGTERM first with `--kill-after`)            |
//! | 125   | output-limit     | stdout and stderr together passed `--output-limit`                |
//! | 125   | file-size-limit  | the job died of SIGXFSZ: a file reached `--output-limit`          |
//! | 126   | setup-failed     | testudo could not run the job (a bad option, a failed setup step) |
//! | 137   | oom              | the memory limit's OOM killer ended it                            |
//! | 129, 130, 143 | interrupted | testudo got SIGHUP, SIGINT or SIGTERM (128 + the signal)    |
//! | 141   | output-closed    | the job wrote to the caller's closed stdout or stderr (EPIPE)     |

use serde_json::Value;

use super::outfile::OutFile;
use crate::cgroups::Cgroup;
use crate::error::{Error, Result};

/// The code of a failure of testudo itself, as timeout(1) and env(1) use it for "could not run".
pub const SETUP_FAILED: i32 = 126;
/// As a shell reports a process killed by SIGPIPE, which is what the job would have got.
const OUTPUT_CLOSED: i32 = 128 + libc::SIGPIPE;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reason {
    Exited,
    Timeout,
    OutputLimit,
    FileSizeLimit,
    Oom,
    /// By this signal to testudo.
    Interrupted(i32),
    OutputClosed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Exited => "exited",
            Reason::Timeout => "timeout",
            Reason::OutputLimit => "output-limit",
            Reason::FileSizeLimit => "file-size-limit",
            Reason::Oom => "oom",
            Reason::Interrupted(_) => "interrupted",
            Reason::OutputClosed => "output-closed",
        }
    }

    /// The job's `code` (exit code, or 128 + signal) is the answer only when nothing else ended it.
    pub fn exit(self, code: i32) -> i32 {
        match self {
            Reason::Exited => code,
            Reason::Timeout => 124,
            Reason::OutputLimit | Reason::FileSizeLimit => 125,
            Reason::Oom => 137,
            Reason::Interrupted(sig) => 128 + sig,
            Reason::OutputClosed => OUTPUT_CLOSED,
        }
    }
}

pub struct Figures {
    pub cpu_usec: Option<u64>,
    pub memory_peak: Option<u64>,
    pub pids_peak: Option<u64>,
}

/// CPU time, peak memory and peak pids from the v2 files, or the v1 ones on a hybrid host; none
/// without a cgroup.
pub fn figures(cg: Option<&Cgroup>) -> Figures {
    let Some(cg) = cg else { return Figures { cpu_usec: None, memory_peak: None, pids_peak: None } };
    let v1 = |ctrl: &str, file: &str| cg.legacy().dir(ctrl).and_then(|d| std::fs::read_to_string(d.join(file)).ok()).and_then(|s| s.trim().parse::<u64>().ok());
    let v2 = |file: &str| cg.read(file).ok().and_then(|s| s.trim().parse::<u64>().ok());
    Figures {
        cpu_usec: cg.keyed("cpu.stat", "usage_usec").or_else(|| v1("cpuacct", "cpuacct.usage").map(|ns| ns / 1000)),
        memory_peak: v2("memory.peak").or_else(|| v1("memory", "memory.max_usage_in_bytes")),
        pids_peak: v2("pids.peak").or_else(|| v1("pids", "pids.peak")),
    }
}

/// Write `report` through `out`: never through a symlink the job planted (`outfile`).
pub fn write(out: &OutFile, report: &Value) -> Result<()> {
    out.write(&serde_json::to_vec_pretty(report).map_err(|e| Error::new(format!("--report: {e}")))?)
}
