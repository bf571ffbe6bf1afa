//! Small wrappers named after the kernel concepts the spawn path uses.

pub mod creds;
pub mod devices;
pub mod exe;
pub mod fds;
pub mod idmap;
pub mod inroot;
pub mod keyring;
pub mod mounts;
pub mod namespaces;
pub mod pidfd;
pub mod procfs;
pub mod rlimits;
pub mod rootfs;
pub mod sysctl;
pub mod tty;
