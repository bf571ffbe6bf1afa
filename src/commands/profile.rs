//! `profile`: run a bundle once with the syscall recorder (`security::seccomp::recorder`) in place
//! of its seccomp filter, and write the allow-list the run made: every syscall it used allowed,
//! everything else EPERM. `run` then enforces it, as `linux.seccomp`. The bundle runs as it is,
//! non-interactive, with no_new_privileges; its exit code is the command's.

use crate::cli::Profile;
use crate::commands::Global;
use crate::error::{Error, Result};
use crate::sandbox::{job, Plan};

pub fn run(g: &Global, p: &Profile) -> Result<i32> {
    let bundle = crate::spec::load(&p.bundle)?;
    let mut config: serde_json::Value = serde_json::from_slice(&bundle.bytes).map_err(|e| Error::new(format!("config.json: {e}")))?;
    // The job runs from a copy of config.json elsewhere: paths relative to the bundle made absolute.
    config["root"]["path"] = serde_json::json!(bundle.rootfs);
    for m in config["mounts"].as_array_mut().into_iter().flatten() {
        let bind = m["type"] == "bind" || m["options"].as_array().into_iter().flatten().any(|o| o == "bind" || o == "rbind");
        if let Some(src) = m["source"].as_str().filter(|s| bind && !s.starts_with('/')) {
            m["source"] = serde_json::json!(bundle.dir.join(src));
        }
    }
    config["process"]["terminal"] = serde_json::json!(false);
    let plan = Plan {
        id: p.id.clone(),
        config,
        timeout: None,
        kill_after: None,
        output_limit: None,
        record: Some(crate::sandbox::outfile::OutFile::open("--output", &p.output)?),
        sandbox: false,
        stdin: false,
        tty: false,
        // As `sandbox`: the recorded workload dies with testudo, never runs on unrecorded.
        lifecycle: crate::spawn::prepare::Lifecycle { die_with_parent: true, ..Default::default() },
        place: crate::sandbox::Place::Default,
        no_limits: false,
        net_host: false,
        confinement: serde_json::Value::Null,
        groups_kept: None,
    };
    job::run(g, plan, None)
}
