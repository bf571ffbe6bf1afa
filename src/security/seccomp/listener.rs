//! `listenerPath` (seccomp user notification): the notify fd that installing the filter returned
//! in the child comes to P0 over the sync socket, and P0 hands it, with the runtime-spec's
//! "container process state", to the listener's unix socket in one message (SCM_RIGHTS).

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use crate::error::{Context, Error, Result};

#[derive(Debug, Clone)]
pub struct Listener {
    pub path: PathBuf,
    pub metadata: String,
}

/// The container process state: `pid` is the process the filter was installed in, `state` the
/// container's OCI state JSON.
pub fn state(pid: i32, metadata: &str, container: &[u8]) -> Result<Vec<u8>> {
    let container: serde_json::Value = serde_json::from_slice(container).map_err(|e| Error::new(format!("seccomp listener: container state: {e}")))?;
    let v = serde_json::json!({
        "ociVersion": container["ociVersion"],
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": container,
    });
    Ok(v.to_string().into_bytes())
}

pub fn send(l: &Listener, notify: &OwnedFd, message: &[u8]) -> Result<()> {
    let what = || format!("seccomp listener {:?}", l.path);
    let sock = UnixStream::connect(&l.path).with_context(what)?;
    let fds = [notify.as_raw_fd()];
    let iov = [IoSlice::new(message)];
    let n = sendmsg::<()>(sock.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::MSG_NOSIGNAL, None).with_context(what)?;
    if n != message.len() {
        return Err(Error::new(format!("{}: short write ({n} of {} bytes)", what(), message.len())));
    }
    Ok(())
}
