//! The arguments of testudo's own subcommands (no runc equivalent): check, sandbox, profile.

use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct Profile {
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Where the profile goes (OCI linux.seccomp form)
    #[arg(short = 'o', long, default_value = "profile.json")]
    pub output: PathBuf,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Sandbox {
    /// The job's root filesystem (read-only)
    #[arg(long)]
    pub rootfs: PathBuf,
    /// The job's working directory, at /workspace (DIR:rw, the default, or DIR:ro)
    #[arg(long)]
    pub workspace: String,
    /// Also bind SRC read-only at DST
    #[arg(long = "ro-bind", value_name = "SRC:DST")]
    pub ro_bind: Vec<String>,
    /// Bind SRC read-write at DST (nosuid, nodev; SRC's owner is the job's uid there, as in the workspace)
    #[arg(long = "bind", value_name = "SRC:DST")]
    pub bind: Vec<String>,
    /// A tmpfs at DST (nosuid, nodev; SIZE defaults to 64m)
    #[arg(long = "tmpfs", value_name = "DST[:SIZE]")]
    pub tmpfs: Vec<String>,
    /// Set an environment variable of the job (after --env-file: this wins)
    #[arg(long = "setenv", value_name = "KEY=VALUE")]
    pub setenv: Vec<String>,
    /// Environment variables from a file of KEY=VALUE lines (blank lines and # comments skipped;
    /// values as they are, no quotes removed): a regular file, not through a symlink
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// The job's working directory, inside (default /workspace)
    #[arg(long)]
    pub chdir: Option<String>,
    /// The job's hostname (default sandbox)
    #[arg(long)]
    pub hostname: Option<String>,
    /// Memory limit (e.g. 512M, 2G, 2GiB, 1T; binary units; default 2G)
    #[arg(long)]
    pub memory: Option<String>,
    /// Most processes and threads at once (above 0; default 512)
    #[arg(long, allow_negative_numbers = true)]
    pub pids: Option<i64>,
    /// CPUs (e.g. 1.5; default: a half share)
    #[arg(long)]
    pub cpus: Option<String>,
    /// The job's cgroup goes below this delegated cgroup2 directory (one the caller may write,
    /// and which testudo runs inside, when not root)
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<PathBuf>,
    /// Run without memory, pids and cpu limits (and, not root and without --cgroup, without a
    /// cgroup): the report and stderr say so
    #[arg(long = "no-limits")]
    pub no_limits: bool,
    /// Wall-clock limit (1.5, 2s, 500ms, 1m; plain numbers are seconds): the job is killed, exit 124
    #[arg(long)]
    pub timeout: Option<String>,
    /// At the timeout send SIGTERM first, and kill the job this long after (e.g. 10s)
    #[arg(long = "kill-after", value_name = "DURATION")]
    pub kill_after: Option<String>,
    /// Most bytes of stdout and stderr together: past it the job is killed, exit 125. Also the
    /// largest file the job may write (RLIMIT_FSIZE): the file stops at the limit, the write fails
    /// (EFBIG) and the writer gets SIGXFSZ; a job that dies of SIGXFSZ exits 125 too
    #[arg(long = "output-limit")]
    pub output_limit: Option<String>,
    /// A disk quota for the workspace: refused for now (README: "No workspace disk quota")
    #[arg(long, value_name = "SIZE")]
    pub disk: Option<String>,
    /// Size of the job's /tmp
    #[arg(long = "tmp-size", default_value = "256m")]
    pub tmp_size: String,
    /// none, or host-loopback-only (the same: a network namespace with only lo)
    #[arg(long, default_value = "none")]
    pub net: String,
    /// Seccomp: build (seccomp-profiles/build-sandbox.json), default, or a file in OCI form
    #[arg(long, default_value = "build")]
    pub profile: String,
    /// Landlock: write only beneath /workspace and /tmp (required, or best-effort)
    #[arg(long, num_args = 0..=1, default_missing_value = "required", value_parser = ["required", "best-effort"])]
    pub landlock: Option<String>,
    /// Give the job the caller's standard input (a pipe or a file, never a terminal); without
    /// it the job reads /dev/null
    #[arg(long)]
    pub stdin: bool,
    /// Give the job a new pty of its own (never the caller's terminal) as stdout and stderr, and
    /// as stdin unless --stdin, in a session of its own; testudo relays what it shows to its
    /// own stdout, counted by --output-limit (a newline shows as \r\n)
    #[arg(long)]
    pub tty: bool,
    /// Write a JSON report of the run here
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Run the job as pid 1 itself, without testudo's minimal init (which reaps orphans, forwards
    /// signals and exits with the job's status)
    #[arg(long = "as-pid-1")]
    pub as_pid_1: bool,
    /// Record the job's syscalls instead of filtering them; write the allow-list profile here
    #[arg(long)]
    pub record: Option<PathBuf>,
    /// The job: CMD ARGS…
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct Check {
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
    /// Exit 1 when a rule of this severity or higher fails
    #[arg(long = "fail-on", default_value = "high", value_parser = ["high", "medium", "low"])]
    pub fail_on: String,
}
