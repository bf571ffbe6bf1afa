//! `check`: audit a bundle's config.json against the CIS Docker Benchmark's container items
//! (`audit`), one line (or JSON object) per rule; exit 1 when a rule at `--fail-on` or above fails.
//! JSON `failed` counts every failed rule (`failedBySeverity` per severity); `failedAtFailOn` is
//! what the exit code counted.

use crate::audit::{self, Severity};
use crate::cli::Check;
use crate::error::{Error, Result};

pub fn run(c: &Check) -> Result<i32> {
    let (dir, _, spec) = crate::spec::read_config(&c.bundle)?;
    let findings = audit::audit(&spec);
    let at = Severity::parse(&c.fail_on)?;
    let counted = audit::failures(&findings, at, &[]).len();
    if c.format == "json" {
        let out = serde_json::json!({
            "benchmark": audit::BENCHMARK,
            "bundle": dir,
            "failOn": at,
            // Every failed rule, whatever its severity; the exit code counts `failedAtFailOn`.
            "failed": findings.iter().filter(|f| !f.passed).count(),
            "failedBySeverity": audit::failed_by_severity(&findings),
            "failedAtFailOn": counted,
            "findings": findings,
        });
        println!("{}", serde_json::to_string_pretty(&out).map_err(|e| Error::new(e.to_string()))?);
    } else {
        print!("{}", audit::text(&findings));
    }
    Ok(if counted > 0 { 1 } else { 0 })
}
