//! A small synchronous D-Bus client: what the systemd cgroup driver needs to talk to systemd
//! over the system bus or the user's, and nothing more (no async runtime, no threads, no new
//! crate). Only `--systemd-cgroup` pays for it: a connection is opened per command that needs one.
//!
//! - `address`: where the system bus and the user's bus listen;
//! - `wire`: marshalling of values (little-endian out, either byte order in);
//! - `message`: the header and its fields;
//! - `conn`: the socket, SASL EXTERNAL, `Hello`, calls and signals, each with a deadline.

pub mod address;
pub mod conn;
pub mod message;
#[cfg(test)]
pub mod testbus;
pub mod wire;

pub use conn::{BusError, Conn};
pub use wire::Value;
