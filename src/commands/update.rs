//! `update`: change the resources of a running container.

use crate::cgroups::{resources, Cgroup};
use crate::cli::Update;
use crate::commands::{open, Global};
use crate::error::{Context, Error, Result};

pub fn run(g: &Global, u: &Update) -> Result<i32> {
    let (_, facts) = open(g, &u.id)?;
    let facts = facts.ok_or_else(|| Error::new(format!("container {:?} is still being created", u.id)))?;
    let r: oci_spec::runtime::LinuxResources = match u.resources.as_deref() {
        Some("-") => serde_json::from_reader(std::io::stdin()).map_err(|e| Error::new(format!("resources from stdin: {e}")))?,
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("read {path:?}"))?;
            serde_json::from_slice(&bytes).map_err(|e| Error::new(format!("resources {path:?}: {e}")))?
        }
        None => Default::default(),
    };
    let flags_given = u.memory.is_some() || u.memory_reservation.is_some() || u.memory_swap.is_some() || u.pids_limit.is_some()
        || u.cpu_quota.is_some() || u.cpu_period.is_some() || u.cpu_shares.is_some() || u.cpuset_cpus.is_some()
        || u.cpuset_mems.is_some() || u.blkio_weight.is_some() || u.cpu_rt_period.is_some() || u.cpu_rt_runtime.is_some();
    if flags_given {
        return Err(Error::new("update: resource flags are not supported yet; use --resources"));
    }
    resources::apply(&Cgroup::at(facts.cgroup), &r)?;
    Ok(0)
}
