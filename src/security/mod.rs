//! What confines the container process beyond its namespaces.

pub mod apparmor;
pub mod capabilities;
pub mod landlock;
pub mod seccomp;
pub mod selinux;
