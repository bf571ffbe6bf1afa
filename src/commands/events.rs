//! `events`: container statistics and events.

use crate::cli::Events;
use crate::commands::Global;
use crate::error::{Error, Result};

pub fn run(_g: &Global, e: &Events) -> Result<i32> {
    Err(Error::new(format!("events for {:?}: not supported yet", e.id)))
}
