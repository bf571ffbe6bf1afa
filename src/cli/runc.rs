//! The arguments of runc's own subcommands, as runc spells them.

use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct Id {
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct CreateOpts {
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master of a terminal container
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the container init's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use move mount + chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many descriptors after stdio (3 onwards) into the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Refuse to create a container that fails this audit policy (see `check`)
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Watch linux.seccomp: record what it allows (`profile`, `sandbox --record`) or list what it
    /// denies (`sandbox --report`)
    #[arg(skip)]
    pub watch: Option<crate::security::seccomp::Watch>,
    /// `sandbox`: every bind source opened by P0 without following a symlink, and the root a
    /// private layer over the rootfs (`linux::layer`)
    #[arg(skip)]
    pub sandbox: bool,
    /// `sandbox`'s init, die-with-parent and loopback (never a flag of `create` or `run`)
    #[arg(skip)]
    pub lifecycle: crate::spawn::prepare::Lifecycle,
}

#[derive(Args, Debug)]
pub struct Create {
    #[command(flatten)]
    pub opts: CreateOpts,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Run {
    #[command(flatten)]
    pub opts: CreateOpts,
    /// Do not wait for the container
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits
    #[arg(long)]
    pub keep: bool,
    /// Accepted for runc compatibility
    #[arg(long = "no-subreaper", hide = true)]
    pub no_subreaper: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Kill {
    /// Signal every process of the container
    #[arg(short = 'a', long)]
    pub all: bool,
    pub id: String,
    /// Signal number or name, with or without SIG (default SIGTERM)
    pub signal: Option<String>,
}

#[derive(Args, Debug)]
pub struct Delete {
    /// Kill the container first if it is still running
    #[arg(short = 'f', long)]
    pub force: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Exec {
    /// JSON file with the process to run (OCI `process` object)
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Environment variable KEY=VALUE (repeatable)
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    #[arg(long)]
    pub cwd: Option<String>,
    /// UID[:GID]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional gid (repeatable)
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (repeatable)
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Allow exec in a paused container (the process starts once it is resumed)
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Run in an existing sub-cgroup of the container's: SUB, or CONTROLLER[,CONTROLLER]:SUB
    /// for cgroup v1 controllers (repeatable)
    #[arg(long)]
    pub cgroup: Vec<String>,
    pub id: String,
    /// Command and arguments (when no --process is given)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct List {
    #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only the ids
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SpecCmd {
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write a spec for a rootless container (user namespace, no cgroup resources)
    #[arg(long)]
    pub rootless: bool,
    /// Write a spec that passes every `check` rule
    #[arg(long, conflicts_with = "rootless")]
    pub hardened: bool,
}

#[derive(Args, Debug)]
pub struct Ps {
    #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub ps_args: Vec<String>,
}

/// -1 is "unlimited" in every limit, as runc takes it: `--memory -1` as well as `--memory=-1`.
#[derive(Args, Debug)]
pub struct Update {
    /// OCI linux.resources JSON: a file, or - for stdin
    #[arg(short = 'r', long)]
    pub resources: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation", allow_negative_numbers = true)]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap", allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    #[arg(long = "kernel-memory", hide = true, allow_negative_numbers = true)]
    pub kernel_memory: Option<String>,
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    #[arg(long = "cpu-rt-runtime", allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Events {
    /// Print one statistics object and exit
    #[arg(long)]
    pub stats: bool,
    /// Statistics interval (e.g. 5s, 500ms)
    #[arg(long, default_value = "5s")]
    pub interval: String,
    pub id: String,
}

/// What `checkpoint` and `restore` both hand to CRIU, as runc spells them.
#[derive(Args, Debug, Clone)]
pub struct CriuFlags {
    /// Directory of the CRIU image files (default: ./checkpoint)
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// Directory for CRIU's work files and log (default: the image path)
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Handle file locks
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// cgroups mode: soft (default), full, strict or ignore
    #[arg(long = "manage-cgroups-mode", value_parser = ["soft", "full", "strict", "ignore"])]
    pub manage_cgroups_mode: Option<String>,
    /// Create a namespace but do not restore its properties (network only; the network namespace
    /// is always empty, as in runc)
    #[arg(long = "empty-ns", value_parser = ["network"])]
    pub empty_ns: Vec<String>,
    /// Deduplicate memory images as they are written
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// Not supported (CRIU's lazy pages need its page server): refused
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
}

#[derive(Args, Debug)]
pub struct Checkpoint {
    #[command(flatten)]
    pub criu: CriuFlags,
    /// Previous image directory (of a pre-dump), relative to the image path
    #[arg(long = "parent-path")]
    pub parent_path: Option<PathBuf>,
    /// Leave the container running after checkpointing
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// Dump the memory only and leave the container running (for a later dump with --parent-path)
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// Not supported (a page server over the network): refused
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
    /// Not supported (lazy pages): refused
    #[arg(long = "status-fd", allow_negative_numbers = true)]
    pub status_fd: Option<i32>,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Restore {
    #[command(flatten)]
    pub criu: CriuFlags,
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Do not wait for the restored container
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// File to write the restored init's pid to
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket for the pty master of a terminal container (refused: a checkpoint never
    /// holds a terminal container)
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility: CRIU makes the restored root itself
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Accepted for runc compatibility
    #[arg(long = "no-subreaper", hide = true)]
    pub no_subreaper: bool,
    /// LSM profile the restored processes get (CRIU's --lsm-profile, TYPE:NAME)
    #[arg(long = "lsm-profile")]
    pub lsm_profile: Option<String>,
    /// LSM mount context for the restored mounts (CRIU's --lsm-mount-context)
    #[arg(long = "lsm-mount-context")]
    pub lsm_mount_context: Option<String>,
    pub id: String,
}
