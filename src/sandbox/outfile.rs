//! Where testudo writes as root after a job ran (`--report`, `--record`, `profile --output`):
//! often inside the workspace, which the job could write. The directory is opened before the job
//! starts, without following a symlink (`nofollow`); at the end the file is written under a new
//! name in that directory (O_CREAT|O_EXCL, which never follows a symlink) and renamed over the
//! final name, both relative to the directory fd. A job that plants `report.json -> /etc/shadow`
//! has its link replaced, not followed; one that swaps the directory for a symlink mid-run has
//! the file land in the directory that was opened (wherever it was moved), never where the
//! link leads.

use std::ffi::OsString;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;

use crate::error::{Context, Error, Result};
use crate::linux::nofollow;

pub struct OutFile {
    dir: OwnedFd,
    name: OsString,
    /// As given, for errors.
    path: PathBuf,
    what: &'static str,
}

impl OutFile {
    /// Open the directory of `path` now; `what` names the option in errors.
    pub fn open(what: &'static str, path: &Path) -> Result<OutFile> {
        let name = match path.file_name() {
            Some(n) if !path.as_os_str().as_encoded_bytes().ends_with(b"/") => n.to_os_string(),
            _ => return Err(Error::new(format!("{what} {path:?}: names no file"))),
        };
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let dir = nofollow::dir(what, parent)?;
        // A symlink there is replaced at the end, not followed; a directory is a mistake.
        if nix::sys::stat::fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR) {
            return Err(Error::new(format!("{what} {path:?}: is a directory")));
        }
        Ok(OutFile { dir, name, path: path.to_path_buf(), what })
    }

    /// Write `bytes` as the whole file, replacing whatever the name holds now.
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        let (what, path) = (self.what, &self.path);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let mut tmp = OsString::from(".");
        tmp.push(&self.name);
        tmp.push(format!(".{}-{nanos}.tmp", std::process::id()));
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&self.dir, tmp.as_os_str(), flags, Mode::from_bits_truncate(0o644)).with_context(|| format!("{what} {path:?}: create"))?;
        let written = std::fs::File::from(fd).write_all(bytes).map_err(|e| Error::new(format!("{what} {path:?}: write: {e}")));
        let renamed = written.and_then(|()| {
            nix::fcntl::renameat(&self.dir, tmp.as_os_str(), &self.dir, self.name.as_os_str()).with_context(|| format!("{what} {path:?}: rename into place"))
        });
        if renamed.is_err() {
            let _ = nix::unistd::unlinkat(&self.dir, tmp.as_os_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        renamed
    }
}
