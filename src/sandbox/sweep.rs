//! What a SIGKILLed sandbox leaves (issue 22 item 6). Its job dies with it (die-with-parent), but
//! its directory under the state root stays: the state, the bundle, and the cgroup (empty, or a
//! user's systemd scope). bubblewrap leaves nothing because it holds nothing on disk; testudo's
//! next `sandbox` on the same state root removes it instead, as `delete --force ID` would.
//!
//! Only what is certainly a sandbox's and certainly ownerless is touched:
//! - its bundle is `bundle/` inside its own directory (a sandbox's or `profile`'s, never a
//!   container made from a bundle elsewhere), and, without a state yet (killed while created),
//!   its id is `sandbox-…`;
//! - its directory's lock is free: a running sandbox holds it from `Dir::create` until its
//!   directory is gone, so a free lock means its testudo has exited (the kernel drops a flock
//!   with the last fd, also on SIGKILL; the init never has it: `spawn::parent` closes it);
//! - its status is stopped: its init is gone.

use std::path::Path;

use crate::container::{self, Dir, Status};
use crate::error::Result;

/// Remove every ownerless, stopped sandbox under `root`. A sandbox it cannot remove is left for
/// `delete --force` and does not stop this run: the error is returned for the caller to show.
pub fn sweep(root: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(root) else { return Ok(()) };
    let mut first_error = None;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str() else { continue };
        if container::id::validate(id).is_err() || !entry.path().join("bundle").is_dir() {
            continue;
        }
        let Some(dir) = Dir::try_open(root, id) else { continue };
        let r = match dir.facts() {
            Ok(f) if f.bundle == dir.file("bundle") && crate::commands::status(&dir, Some(&f)) == Status::Stopped => crate::commands::delete::destroy(&dir, &f),
            Ok(_) => continue,
            Err(_) if id.starts_with("sandbox-") && !dir.file(container::STATE_FILE).exists() => crate::commands::delete::clean_up_creating(&dir),
            Err(_) => continue,
        };
        if let Err(e) = r {
            first_error.get_or_insert(e.context(format!("remove sandbox {id:?}, left by a testudo that was killed (delete --force {id} retries)")));
        }
    }
    first_error.map_or(Ok(()), Err)
}
