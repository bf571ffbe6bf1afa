//! Small wrappers named after the kernel concepts the spawn path uses.

pub mod affinity;
pub mod cgroupfs;
pub mod clone;
pub mod copyup;
pub mod creds;
pub mod devices;
pub mod exe;
pub mod exe_file;
pub mod fds;
pub mod idmap;
pub mod inroot;
pub mod ioprio;
pub mod keyring;
pub mod mempolicy;
pub mod mounts;
pub mod namespaces;
pub mod personality;
pub mod pidfd;
pub mod pidns;
pub mod procfs;
pub mod rlimits;
pub mod rootfs;
pub mod sched;
pub mod subid;
pub mod sysctl;
pub mod tty;
