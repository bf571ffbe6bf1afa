//! testudo: a minimal, hardened OCI container runtime with runc's command line.
//!
//! `no_main`: std's runtime start-up (main-thread stack guard, which parses /proc/self/maps, and
//! the sigaltstack handler) costs page faults on every spawn and buys nothing here: we never run
//! threads, panics abort, and glibc hands std the arguments through .init_array anyway.
#![cfg_attr(not(test), no_main)]

mod audit;
mod cgroups;
mod cli;
mod commands;
mod container;
mod criu;
mod dbus;
mod error;
mod linux;
mod log;
mod sandbox;
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
    if cli.global.version {
        println!("testudo version {}\ncommit: {}\nspec: {}", env!("CARGO_PKG_VERSION"), env!("TESTUDO_COMMIT"), spec::SPEC_VERSION);
        return;
    }
    let format = if cli.global.log_format == "json" { log::Format::Json } else { log::Format::Text };
    if let Err(e) = log::init(cli.global.log.as_deref(), format, cli.global.debug) {
        eprintln!("testudo: open log {:?}: {e}", cli.global.log);
        std::process::exit(1);
    }
    let Some(command) = &cli.command else {
        eprintln!("testudo: no command given (see --help)");
        std::process::exit(1);
    };
    let name = command_name(command);
    log::debug(|| format!("testudo {} (commit {}): {name}", env!("CARGO_PKG_VERSION"), env!("TESTUDO_COMMIT")));
    let criu = cli.global.criu.clone().unwrap_or_else(|| criu::DEFAULT.into());
    let result = global(&cli, command).and_then(|g| dispatch(&g, &criu, command));
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // The one error record of this command.
            let msg = format!("{name}: {e}");
            log::error(&msg);
            if log::to_file() {
                eprintln!("testudo: {msg}");
            }
            std::process::exit(failure_code(command));
        }
    }
}

/// The exit code of a command that failed. `sandbox` keeps 1 for a job's own failure: its own
/// is 126, as timeout(1) has it. `exec` exits 255 when the process could not be run, as runc's
/// does ("exec failed"), so that a caller can tell it from the process's own exit code.
fn failure_code(command: &Command) -> i32 {
    match command {
        Command::Sandbox(_) => sandbox::report::SETUP_FAILED,
        Command::Exec(_) => 255,
        _ => 1,
    }
}

/// The global flags resolved: rootless or not, and so the state root. `spec` and `features`
/// touch no state, so they need no runtime directory.
fn global(cli: &cli::Cli, c: &Command) -> error::Result<Global> {
    let rootless = container::rootless::detect(cli.global.rootless.as_deref())?;
    let stateless = matches!(c, Command::Spec(_) | Command::Features | Command::Check(_));
    let root = if stateless {
        cli.global.root.clone().unwrap_or_else(|| container::rootless::DEFAULT_ROOT.into())
    } else {
        container::rootless::state_root(cli.global.root.as_deref(), rootless)?
    };
    Ok(Global { root, systemd_cgroup: cli.global.systemd_cgroup, rootless, policy: cli.global.policy.clone() })
}

fn command_name(c: &Command) -> &'static str {
    match c {
        Command::Create(_) => "create",
        Command::Start(_) => "start",
        Command::State(_) => "state",
        Command::Kill(_) => "kill",
        Command::Delete(_) => "delete",
        Command::Run(_) => "run",
        Command::Exec(_) => "exec",
        Command::List(_) => "list",
        Command::Spec(_) => "spec",
        Command::Features => "features",
        Command::Ps(_) => "ps",
        Command::Pause(_) => "pause",
        Command::Resume(_) => "resume",
        Command::Update(_) => "update",
        Command::Events(_) => "events",
        Command::Checkpoint(_) => "checkpoint",
        Command::Restore(_) => "restore",
        Command::Check(_) => "check",
        Command::Profile(_) => "profile",
        Command::Sandbox(_) => "sandbox",
    }
}

fn dispatch(g: &Global, criu: &std::path::Path, c: &Command) -> error::Result<i32> {
    match c {
        Command::Create(c) => sealed(|| commands::create::run(g, &c.opts, &c.id)),
        Command::Start(i) => commands::start::run(g, &i.id),
        Command::State(i) => commands::state::run(g, &i.id),
        Command::Kill(k) => commands::kill::run(g, k),
        Command::Delete(d) => commands::delete::run(g, d),
        Command::Run(r) => sealed(|| commands::run::run(g, r)),
        Command::Exec(e) => sealed(|| commands::exec::run(g, e)),
        Command::List(l) => commands::list::run(g, l),
        Command::Spec(s) => commands::spec::run(s),
        Command::Features => commands::features::run(),
        Command::Ps(p) => commands::ps::run(g, p),
        Command::Pause(i) => commands::pause::run(g, &i.id, true),
        Command::Resume(i) => commands::pause::run(g, &i.id, false),
        Command::Update(u) => commands::update::run(g, u),
        Command::Events(e) => commands::events::run(g, e),
        Command::Checkpoint(c) => commands::checkpoint::run(g, criu, c),
        Command::Restore(r) => commands::restore::run(g, criu, r),
        Command::Check(c) => commands::check::run(c),
        Command::Profile(p) => sealed(|| commands::profile::run(g, p)),
        // The sandbox seals the binary itself, where its job could otherwise write it.
        Command::Sandbox(s) => sandbox::run(g, s),
    }
}

/// CVE-2019-5736: a command that starts a process inside a container first re-execs itself from
/// a read-only mount of its own binary (see `linux::exe`).
fn sealed(f: impl FnOnce() -> error::Result<i32>) -> error::Result<i32> {
    linux::exe::seal()?;
    f()
}
