//! `pause` / `resume`: freeze or thaw every process of the container through cgroup.freeze,
//! returning only once cgroup.events says it is done.

use crate::commands::{open, Global};
use crate::container::Status;
use crate::error::{Error, Result};

pub fn run(g: &Global, id: &str, freeze: bool) -> Result<i32> {
    let (dir, facts) = open(g, id)?;
    let facts = facts.ok_or_else(|| Error::new(format!("container {id:?} is still being created")))?;
    let status = super::status(&dir, Some(&facts));
    let (want, verb) = if freeze { (Status::Running, "pause") } else { (Status::Paused, "resume") };
    if status != want {
        return Err(Error::new(format!("cannot {verb} container {id:?}: it is {}", status.as_str())));
    }
    super::cgroup(&facts, verb)?.freeze(freeze)?;
    Ok(0)
}
