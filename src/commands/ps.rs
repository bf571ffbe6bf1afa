//! `ps [--format json]`: the container's processes, from cgroup.procs. JSON is an array of pids
//! (what containerd parses); the table is `ps` (default `-ef`) filtered to those pids.

use crate::cgroups::Cgroup;
use crate::cli::Ps;
use crate::commands::{peek, Global};
use crate::error::{Context, Error, Result};

pub fn run(g: &Global, p: &Ps) -> Result<i32> {
    let (dir, facts) = peek(g, &p.id)?;
    let facts = facts.ok_or_else(|| Error::new(format!("container {:?} is still being created", p.id)))?;
    let pids = match &facts.cgroup {
        Some(p) => {
            let cg = Cgroup::at(p.clone());
            if cg.exists() {
                cg.procs()?
            } else {
                Vec::new()
            }
        }
        // Rootless without a cgroup: the processes of its pid namespace (cgroups::rootless).
        None if super::status(&dir, Some(&facts)) != crate::container::Status::Stopped => crate::linux::pidns::members(facts.pid)?,
        None => Vec::new(),
    };
    if p.format == "json" {
        println!("{}", serde_json::to_string(&pids).map_err(|e| Error::new(e.to_string()))?);
        return Ok(0);
    }
    let args: Vec<String> = if p.ps_args.is_empty() { vec!["-ef".into()] } else { p.ps_args.clone() };
    let out = std::process::Command::new("ps").args(&args).output().context("run ps")?;
    if !out.status.success() {
        return Err(Error::new(format!("ps {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header.split_whitespace().position(|h| h == "PID").ok_or_else(|| Error::new("ps output has no PID column"))?;
    println!("{header}");
    for line in lines {
        if line.split_whitespace().nth(col).and_then(|p| p.parse::<i32>().ok()).is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(0)
}
