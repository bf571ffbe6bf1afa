//! `list`: every container under --root with its derived status.

use crate::cli::List;
use crate::commands::{peek, Global};
use crate::error::{Context, Error, Result};

pub fn run(g: &Global, l: &List) -> Result<i32> {
    if let Err(e) = crate::container::sweep(&g.root) {
        crate::log::warn(&e.to_string());
    }
    let entries = match std::fs::read_dir(&g.root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        r => r.with_context(|| format!("read {:?}", g.root))?.flatten().collect(),
    };
    let mut found = Vec::new();
    for entry in entries {
        let Some(id) = entry.file_name().to_str().map(str::to_string) else { continue };
        // A container being created or deleted right now is simply not listed.
        if let Ok((dir, Some(facts))) = peek(g, &id) {
            let status = super::status(&dir, Some(&facts));
            found.push((facts, status, owner(&entry)));
        }
    }
    found.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    let rows: Vec<super::ContainerState> = found
        .iter()
        .map(|(facts, status, owner)| {
            let mut r = super::state_json(facts, *status);
            r.owner = owner.clone();
            r
        })
        .collect();
    if l.quiet {
        for r in &rows {
            println!("{}", r.id);
        }
    } else if l.format == "json" {
        println!("{}", serde_json::to_string(&rows).map_err(|e| Error::new(e.to_string()))?);
    } else {
        println!("{:<20} {:<8} {:<10} {:<40} {:<32} OWNER", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
        for (facts, status, owner) in &found {
            let pid = if *status == crate::container::Status::Stopped { 0 } else { facts.pid };
            println!("{:<20} {:<8} {:<10} {:<40} {:<32} {owner}", facts.id, pid, status.as_str(), facts.bundle.display(), facts.created);
        }
    }
    Ok(0)
}

/// The state directory's owner by name, as runc's list shows it ("#UID" for a uid without one).
fn owner(entry: &std::fs::DirEntry) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = entry.metadata().map(|m| m.uid()) else { return String::new() };
    crate::linux::passwd::name(uid).unwrap_or_else(|| format!("#{uid}"))
}
