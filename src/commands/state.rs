//! `state`: the OCI state of a container, derived from facts.

use crate::commands::{peek, Global};
use crate::error::{Error, Result};

pub fn run(g: &Global, id: &str) -> Result<i32> {
    let (dir, facts) = peek(g, id)?;
    let facts = facts.ok_or_else(|| Error::new(format!("container {id:?} is still being created")))?;
    let status = super::status(&dir, Some(&facts));
    println!("{}", serde_json::to_string_pretty(&super::state_json(&facts, status)).map_err(|e| Error::new(e.to_string()))?);
    Ok(0)
}
