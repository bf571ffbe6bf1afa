//! `linux.resources.rdma` → rdma.max, one line per device.

use std::collections::HashMap;

use oci_spec::runtime::LinuxRdma;

use crate::error::{Error, Result};

use super::resources::Writes;

pub fn check(r: &HashMap<String, LinuxRdma>) -> Result<()> {
    match r.keys().find(|d| d.is_empty() || d.contains(|c: char| c.is_whitespace() || c == '/')) {
        Some(d) => Err(Error::new(format!("linux.resources.rdma: invalid device name {d:?}"))),
        None => Ok(()),
    }
}

pub fn plan(r: &HashMap<String, LinuxRdma>, out: &mut Writes) {
    let mut devs: Vec<&String> = r.keys().collect();
    devs.sort();
    for d in devs {
        let l = r[d];
        let v = |n: Option<u32>| n.map_or("max".to_string(), |n| n.to_string());
        out.push(("rdma.max".into(), format!("{d} hca_handle={} hca_object={}", v(l.hca_handles()), v(l.hca_objects()))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let r: HashMap<String, LinuxRdma> = serde_json::from_str(r#"{"mlx5_1": {"hcaHandles": 3}}"#).expect("json");
        check(&r).expect("valid");
        let mut w = Writes::new();
        plan(&r, &mut w);
        assert_eq!(w, vec![("rdma.max".to_string(), "mlx5_1 hca_handle=3 hca_object=max".to_string())]);
    }
}
