//! testudo: a minimal, hardened OCI container runtime with runc's command line.
//!
//! `no_main`: std's runtime start-up (main-thread stack guard, which parses /proc/self/maps, and
//! the sigaltstack handler) costs page faults on every spawn and buys nothing here: we never run
//! threads, panics abort, and glibc hands std the arguments through .init_array anyway.
#![cfg_attr(not(test), no_main)]

mod cgroups;
mod cli;
mod commands;
mod container;
mod dbus;
mod error;
mod linux;
mod log;
mod security;
mod spawn;
mod spec;

use crate::cli::Command;
use crate::commands::Global;

#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    run();
    0
}

#[cfg_attr(test, allow(dead_code))]
fn run() {
    linux::exe::seal_early();
    let cli = match cli::parse(std::env::args().collect()) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    if cli.version {
        println!("testudo version {}\ncommit: {}\nspec: {}", env!("CARGO_PKG_VERSION"), env!("TESTUDO_COMMIT"), spec::SPEC_VERSION);
        return;
    }
    let format = if cli.log_format == "json" { log::Format::Json } else { log::Format::Text };
    if let Err(e) = log::init(cli.log.as_deref(), format, cli.debug) {
        eprintln!("testudo: open log {:?}: {e}", cli.log);
        std::process::exit(1);
    }
    let Some(command) = cli.command else {
        eprintln!("testudo: no command given (see --help)");
        std::process::exit(1);
    };
    let g = Global { root: cli.root.clone(), systemd_cgroup: cli.systemd_cgroup };
    let (name, result) = dispatch(&g, &command);
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // The one error record of this command.
            let msg = format!("{name}: {e}");
            log::error(&msg);
            if log::to_file() {
                eprintln!("testudo: {msg}");
            }
            std::process::exit(1);
        }
    }
}

fn dispatch(g: &Global, c: &Command) -> (&'static str, error::Result<i32>) {
    match c {
        Command::Create(c) => ("create", sealed(|| commands::create::run(g, &c.opts, &c.id))),
        Command::Start(i) => ("start", commands::start::run(g, &i.id)),
        Command::State(i) => ("state", commands::state::run(g, &i.id)),
        Command::Kill(k) => ("kill", commands::kill::run(g, k)),
        Command::Delete(d) => ("delete", commands::delete::run(g, d)),
        Command::Run(r) => ("run", sealed(|| commands::run::run(g, r))),
        Command::Exec(e) => ("exec", sealed(|| commands::exec::run(g, e))),
        Command::List(l) => ("list", commands::list::run(g, l)),
        Command::Spec(s) => ("spec", commands::spec::run(s)),
        Command::Features => ("features", commands::features::run()),
        Command::Ps(p) => ("ps", commands::ps::run(g, p)),
        Command::Pause(i) => ("pause", commands::pause::run(g, &i.id, true)),
        Command::Resume(i) => ("resume", commands::pause::run(g, &i.id, false)),
        Command::Update(u) => ("update", commands::update::run(g, u)),
        Command::Events(e) => ("events", commands::events::run(g, e)),
    }
}

/// CVE-2019-5736: a command that starts a process inside a container first re-execs itself from
/// a read-only mount of its own binary (see `linux::exe`).
fn sealed(f: impl FnOnce() -> error::Result<i32>) -> error::Result<i32> {
    linux::exe::seal()?;
    f()
}
