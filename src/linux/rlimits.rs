//! `process.rlimits`. A hard limit above the current one needs CAP_SYS_RESOURCE, which this kind
//! of host may not have: that is checked in the parent, so it is a clear create-time error.

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType as T};

use crate::error::{Context, Error, Result};

fn resource(t: T) -> Resource {
    match t {
        T::RlimitCpu => Resource::RLIMIT_CPU,
        T::RlimitFsize => Resource::RLIMIT_FSIZE,
        T::RlimitData => Resource::RLIMIT_DATA,
        T::RlimitStack => Resource::RLIMIT_STACK,
        T::RlimitCore => Resource::RLIMIT_CORE,
        T::RlimitRss => Resource::RLIMIT_RSS,
        T::RlimitNproc => Resource::RLIMIT_NPROC,
        T::RlimitNofile => Resource::RLIMIT_NOFILE,
        T::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        T::RlimitAs => Resource::RLIMIT_AS,
        T::RlimitLocks => Resource::RLIMIT_LOCKS,
        T::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        T::RlimitNice => Resource::RLIMIT_NICE,
        T::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        T::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

fn name(t: T) -> String {
    format!("{t:?}").to_uppercase().replace("RLIMIT", "RLIMIT_")
}

pub fn check(limits: &[PosixRlimit]) -> Result<()> {
    let privileged = caps::has_cap(None, caps::CapSet::Effective, caps::Capability::CAP_SYS_RESOURCE).unwrap_or(false);
    let mut seen = Vec::new();
    for l in limits {
        let n = name(l.typ());
        if seen.contains(&l.typ()) {
            return Err(Error::new(format!("rlimit {n} listed twice")));
        }
        seen.push(l.typ());
        if l.soft() > l.hard() {
            return Err(Error::new(format!("rlimit {n}: soft limit {} above hard limit {}", l.soft(), l.hard())));
        }
        let (_, cur_hard) = getrlimit(resource(l.typ())).with_context(|| format!("getrlimit {n}"))?;
        if l.hard() > cur_hard && !privileged {
            return Err(Error::new(format!("rlimit {n}: hard limit {} is above this host's {cur_hard} and raising it needs CAP_SYS_RESOURCE", l.hard())));
        }
    }
    Ok(())
}

pub fn apply(limits: &[PosixRlimit]) -> Result<()> {
    for l in limits {
        setrlimit(resource(l.typ()), l.soft(), l.hard()).with_context(|| format!("setrlimit {}", name(l.typ())))?;
    }
    Ok(())
}
