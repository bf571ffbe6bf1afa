//! `list`: every container under --root with its derived status.

use crate::cli::List;
use crate::commands::{peek, Global};
use crate::error::{Context, Error, Result};

pub fn run(g: &Global, l: &List) -> Result<i32> {
    if let Err(e) = crate::container::sweep(&g.root) {
        crate::log::warn(&e.to_string());
    }
    let mut rows = Vec::new();
    let entries = match std::fs::read_dir(&g.root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        r => r.with_context(|| format!("read {:?}", g.root))?.flatten().collect(),
    };
    for entry in entries {
        let Some(id) = entry.file_name().to_str().map(str::to_string) else { continue };
        // A container being created or deleted right now is simply not listed.
        if let Ok((dir, Some(facts))) = peek(g, &id) {
            let status = super::status(&dir, Some(&facts));
            rows.push(super::state_json(&facts, status));
        }
    }
    rows.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    if l.quiet {
        for r in &rows {
            println!("{}", r["id"].as_str().unwrap_or(""));
        }
    } else if l.format == "json" {
        println!("{}", serde_json::to_string(&rows).map_err(|e| Error::new(e.to_string()))?);
    } else {
        println!("{:<20} {:<8} {:<10} {:<40} {:<32} OWNER", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
        for r in &rows {
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<32} root",
                r["id"].as_str().unwrap_or(""),
                r["pid"],
                r["status"].as_str().unwrap_or(""),
                r["bundle"].as_str().unwrap_or(""),
                r["created"].as_str().unwrap_or(""),
            );
        }
    }
    Ok(0)
}
