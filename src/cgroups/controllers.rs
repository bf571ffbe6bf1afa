//! Controllers in `cgroup.subtree_control`: a cgroup has a controller's files only if its parent
//! enables it for its children, which the parent can only do if its own parent does, up to the
//! hierarchy root. Create-time hot path: when the parent already enables everything (the common
//! case after the first container) this is one read.

use std::path::Path;

use crate::error::{Context, Error, Result};

/// A controller and the resource that needs it, for the error message.
pub type Need = (String, &'static str);

fn list(dir: &Path, file: &str) -> Result<Vec<String>> {
    let p = dir.join(file);
    let text = std::fs::read_to_string(&p).with_context(|| format!("read {p:?}"))?;
    Ok(text.split_whitespace().map(str::to_string).collect())
}

/// Make every controller in `needs` available in `cgroup` (a directory below `root`).
pub fn enable(root: &Path, cgroup: &Path, needs: &[Need]) -> Result<()> {
    if needs.is_empty() {
        return Ok(());
    }
    let parent = cgroup.parent().filter(|p| p.starts_with(root)).ok_or_else(|| Error::new(format!("cgroup {cgroup:?} is not below {root:?}")))?;
    ensure(root, parent, needs)
}

/// Enable `needs` in `dir`'s subtree_control, first enabling in the ancestors what `dir` lacks.
fn ensure(root: &Path, dir: &Path, needs: &[Need]) -> Result<()> {
    let enabled = list(dir, "cgroup.subtree_control")?;
    let missing: Vec<Need> = needs.iter().filter(|(c, _)| !enabled.contains(c)).cloned().collect();
    if missing.is_empty() {
        return Ok(());
    }
    let available = list(dir, "cgroup.controllers")?;
    let absent: Vec<Need> = missing.iter().filter(|(c, _)| !available.contains(c)).cloned().collect();
    if let Some((controller, resource)) = absent.first() {
        match dir.parent().filter(|_| dir != root) {
            Some(up) => ensure(root, up, &absent)?,
            None => {
                return Err(Error::new(format!(
                    "linux.resources.{resource}: the {controller} controller is not available in the cgroup v2 hierarchy at {root:?} \
                     (it offers: {}); on a hybrid host it is bound to cgroup v1",
                    if available.is_empty() { "nothing".to_string() } else { available.join(" ") }
                )))
            }
        }
    }
    let mut line = String::new();
    for (c, _) in &missing {
        if !line.contains(&format!("+{c} ")) {
            line.push_str(&format!("+{c} "));
        }
    }
    let p = dir.join("cgroup.subtree_control");
    std::fs::write(&p, line.trim_end()).with_context(|| format!("write {:?} to {p:?}", line.trim_end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!("testudo-controllers-{}-{:?}", std::process::id(), std::thread::current().id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        std::fs::write(root.join("cgroup.controllers"), "cpu io memory pids\n").expect("write");
        std::fs::write(root.join("cgroup.subtree_control"), "memory\n").expect("write");
        std::fs::write(root.join("a/cgroup.controllers"), "memory\n").expect("write");
        std::fs::write(root.join("a/cgroup.subtree_control"), "\n").expect("write");
        root
    }

    #[test]
    fn enables_top_down_only_what_is_missing() {
        let root = tree();
        let needs = vec![("memory".to_string(), "memory"), ("pids".to_string(), "pids")];
        enable(&root, &root.join("a/b"), &needs).expect("enable");
        assert_eq!(std::fs::read_to_string(root.join("cgroup.subtree_control")).expect("read"), "+pids");
        assert_eq!(std::fs::read_to_string(root.join("a/cgroup.subtree_control")).expect("read"), "+memory +pids");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_controller_the_hierarchy_lacks_is_named() {
        let root = tree();
        let e = enable(&root, &root.join("a/b"), &[("hugetlb".to_string(), "hugepageLimits")]).expect_err("must fail");
        let msg = e.to_string();
        assert!(msg.contains("linux.resources.hugepageLimits: the hugetlb controller is not available"), "{msg}");
        assert!(msg.contains("it offers: cpu io memory pids"), "{msg}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
