//! `process.selinuxLabel` and `linux.mountLabel`. On a host without SELinux a requested label is a
//! clear error, never ignored.

use crate::error::{Context, Error, Result};
use crate::linux::procfs::Proc;

pub fn enabled() -> bool {
    std::fs::read_to_string("/sys/fs/selinux/enforce").is_ok()
}

pub fn check(what: &str, label: &str) -> Result<()> {
    if !enabled() {
        return Err(Error::new(format!("{what} {label:?}: SELinux is not enabled on this host")));
    }
    Ok(())
}

pub fn apply_on_exec(proc: &Proc, label: &str) -> Result<()> {
    proc.write("thread-self/attr/exec", label.as_bytes()).with_context(|| format!("selinuxLabel {label:?}"))
}
