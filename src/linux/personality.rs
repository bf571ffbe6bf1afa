//! `linux.personality`: the execution domain, set right before execve (it is inherited across
//! it). Only the domain: no flag is defined by the runtime spec yet, so any is refused.

use oci_spec::runtime::{LinuxPersonality, LinuxPersonalityDomain as D};

use crate::error::{Error, Result};

const PER_LINUX: libc::c_ulong = 0x0000;
const PER_LINUX32: libc::c_ulong = 0x0008;

pub fn check(p: &LinuxPersonality) -> Result<()> {
    match p.flags().as_deref() {
        Some([_, ..]) => Err(Error::new(format!("linux.personality: flags {:?} are not supported", p.flags().as_deref().unwrap_or(&[])))),
        _ => Ok(()),
    }
}

pub fn apply(p: &LinuxPersonality) -> Result<()> {
    let persona = match p.domain() {
        D::PerLinux => PER_LINUX,
        D::PerLinux32 => PER_LINUX32,
    };
    // SAFETY: personality takes one integer and changes only this process's execution domain.
    if unsafe { libc::personality(persona) } < 0 {
        return Err(crate::error::last_os(format!("linux.personality {:?}", p.domain())));
    }
    Ok(())
}
