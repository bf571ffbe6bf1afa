//! `process.scheduler`: the policy and its parameters through sched_setattr(2), the one call
//! that covers every policy including SCHED_DEADLINE. Set before capabilities are dropped, since
//! the real-time policies need CAP_SYS_NICE.

use oci_spec::runtime::{LinuxSchedulerFlag as F, LinuxSchedulerPolicy as P, Scheduler};

use crate::error::{Error, Result};

/// struct sched_attr of linux/sched/types.h (SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

fn policy(p: P) -> Result<u32> {
    Ok(match p {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
        P::SchedIso => return Err(Error::new("process.scheduler: SCHED_ISO is not implemented by Linux")),
    })
}

fn flag(f: F) -> u64 {
    match f {
        F::SchedResetOnFork => 0x01,
        F::SchedFlagReclaim => 0x02,
        F::SchedFlagDLOverrun => 0x04,
        F::SchedFlagKeepPolicy => 0x08,
        F::SchedFlagKeepParams => 0x10,
        F::SchedFlagUtilClampMin => 0x20,
        F::SchedFlagUtilClampMax => 0x40,
    }
}

fn attr(s: &Scheduler) -> Result<SchedAttr> {
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(Error::new(format!("process.scheduler: nice {nice} is outside -20..19")));
    }
    let priority = s.priority().unwrap_or(0);
    let policy = policy(*s.policy())?;
    let realtime = matches!(s.policy(), P::SchedFifo | P::SchedRr);
    if realtime && !(1..=99).contains(&priority) || !realtime && priority != 0 {
        return Err(Error::new(format!("process.scheduler: priority {priority} is invalid for {:?} (1..99 for FIFO and RR, else 0)", s.policy())));
    }
    Ok(SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy,
        flags: s.flags().iter().flatten().map(|f| flag(*f)).fold(0, |a, b| a | b),
        nice,
        priority: priority as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..SchedAttr::default()
    })
}

/// At create: what the kernel would refuse for a reason we can name.
pub fn check(s: &Scheduler) -> Result<()> {
    attr(s).map(drop)
}

pub fn apply(s: &Scheduler) -> Result<()> {
    let mut a = attr(s)?;
    // SAFETY: sched_setattr reads `a.size` bytes of a sched_attr that lives across the call.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &mut a as *mut SchedAttr, 0) };
    if r < 0 {
        return Err(crate::error::last_os(format!("process.scheduler: sched_setattr {:?}", s.policy())));
    }
    Ok(())
}
