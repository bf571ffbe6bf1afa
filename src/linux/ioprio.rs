//! `process.ioPriority`: ioprio_set(2) on the process itself, before capabilities are dropped
//! (the real-time class needs CAP_SYS_ADMIN).

use oci_spec::runtime::{IOPriorityClass as C, LinuxIOPriority};

use crate::error::{Error, Result};

const IOPRIO_WHO_PROCESS: libc::c_int = 1;
const IOPRIO_CLASS_SHIFT: u32 = 13;

fn value(p: &LinuxIOPriority) -> Result<libc::c_int> {
    let class = match p.class() {
        C::IoprioClassRt => 1,
        C::IoprioClassBe => 2,
        C::IoprioClassIdle => 3,
    };
    if !(0..=7).contains(&p.priority()) {
        return Err(Error::new(format!("process.ioPriority: priority {} is outside 0..7", p.priority())));
    }
    Ok((class << IOPRIO_CLASS_SHIFT) as libc::c_int | p.priority() as libc::c_int)
}

pub fn check(p: &LinuxIOPriority) -> Result<()> {
    value(p).map(drop)
}

pub fn apply(p: &LinuxIOPriority) -> Result<()> {
    let v = value(p)?;
    // SAFETY: ioprio_set takes three integers; `0` is the calling process.
    if unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, v) } < 0 {
        return Err(crate::error::last_os(format!("process.ioPriority: ioprio_set {:?}", p.class())));
    }
    Ok(())
}
