//! `tmpcopyup` (a runc/crun mount option podman sends for `--read-only`'s /run, /tmp, /var/tmp):
//! a fresh tmpfs starts with a copy of what the rootfs had at its destination. The rootfs is the
//! container's, so nothing here follows a symlink: every entry is opened with O_NOFOLLOW beneath
//! an already-open directory, links are copied as links, and only directories, regular files
//! and symlinks are copied (a device node in an image gains nothing in a tmpfs).

use std::os::fd::{AsFd, OwnedFd};

use nix::dir::Dir;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};

use crate::error::{Context, Result};

/// Copy the tree under `from` (a directory fd of the rootfs, under the new mount) into `to`.
pub fn copy(from: &OwnedFd, to: &OwnedFd) -> Result<()> {
    copy_dir(from, to, 0)
}

/// Directory depth at which the copy gives up: an image with a deeper tree is broken.
const MAX_DEPTH: u32 = 64;

fn copy_dir(from: &OwnedFd, to: &OwnedFd, depth: u32) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(crate::error::Error::new("tmpcopyup: directory tree too deep"));
    }
    let st = nix::sys::stat::fstat(from).context("tmpcopyup: stat")?;
    fchmod(to, Mode::from_bits_truncate(st.st_mode & 0o7777)).context("tmpcopyup: chmod")?;
    chown(to, st.st_uid, st.st_gid)?;
    let names: Vec<std::ffi::CString> = {
        let dup = nix::fcntl::openat(from, ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).context("tmpcopyup: open")?;
        let mut dir = Dir::from_fd(dup).context("tmpcopyup: read directory")?;
        dir.iter().filter_map(|e| e.ok()).filter(|e| !matches!(e.file_name().to_bytes(), b"." | b"..")).map(|e| e.file_name().to_owned()).collect()
    };
    for name in names {
        let st = fstatat(from, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW).with_context(|| format!("tmpcopyup: stat {name:?}"))?;
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        let what = || format!("tmpcopyup: {name:?}");
        if kind == SFlag::S_IFDIR {
            nix::sys::stat::mkdirat(to, name.as_c_str(), Mode::from_bits_truncate(0o700)).with_context(what)?;
            let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let sub_from = nix::fcntl::openat(from, name.as_c_str(), flags, Mode::empty()).with_context(what)?;
            let sub_to = nix::fcntl::openat(to, name.as_c_str(), flags, Mode::empty()).with_context(what)?;
            copy_dir(&sub_from, &sub_to, depth + 1)?;
        } else if kind == SFlag::S_IFREG {
            let src = nix::fcntl::openat(from, name.as_c_str(), OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty()).with_context(what)?;
            let dst_flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let dst = nix::fcntl::openat(to, name.as_c_str(), dst_flags, Mode::from_bits_truncate(0o600)).with_context(what)?;
            let (mut r, mut w) = (std::fs::File::from(src), std::fs::File::from(dst));
            std::io::copy(&mut r, &mut w).with_context(what)?;
            fchmod(&w, Mode::from_bits_truncate(st.st_mode & 0o7777)).with_context(what)?;
            chown(&w, st.st_uid, st.st_gid)?;
        } else if kind == SFlag::S_IFLNK {
            let target = nix::fcntl::readlinkat(from, name.as_c_str()).with_context(what)?;
            nix::unistd::symlinkat(target.as_os_str(), to, name.as_c_str()).with_context(what)?;
            fchownat(to, name.as_c_str(), Some(Uid::from_raw(st.st_uid)), Some(Gid::from_raw(st.st_gid)), AtFlags::AT_SYMLINK_NOFOLLOW).with_context(what)?;
        }
    }
    Ok(())
}

fn chown(fd: &impl AsFd, uid: u32, gid: u32) -> Result<()> {
    nix::unistd::fchown(fd.as_fd(), Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid))).context("tmpcopyup: chown")
}
