//! bpf(2) for the device program: load it, attach it to the cgroup, replace the one attached
//! before. Since Linux 5.11 the program's memory is charged to the memory cgroup, not to
//! RLIMIT_MEMLOCK, so the limit is never raised (it cannot be without CAP_SYS_RESOURCE; crun 1.8
//! failed on exactly that).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;

use crate::error::{Error, Result};

use super::devices::Insn;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The BPF_PROG_LOAD member of union bpf_attr, up to expected_attach_type.
#[repr(C)]
#[derive(Default)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// BPF_PROG_ATTACH / BPF_PROG_DETACH.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// BPF_OBJ_GET_INFO_BY_FD.
#[repr(C)]
#[derive(Default)]
struct InfoAttr {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// struct bpf_prog_info, up to xlated_prog_insns.
#[repr(C)]
#[derive(Default)]
struct ProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
}

/// BPF_PROG_QUERY, up to prog_cnt.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::result::Result<libc::c_long, Errno> {
    // SAFETY: `attr` is a #[repr(C)] prefix of union bpf_attr for `cmd`, valid for the call;
    // pointers inside it point to buffers that outlive the call; the size passed is its own.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this fd to us and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Load the program. On a verifier rejection, load again with the log on to say why.
pub fn load(insns: &[Insn]) -> Result<OwnedFd> {
    let license = c"Apache";
    let mut name = [0u8; 16];
    name[..11].copy_from_slice(b"testudo_dev");
    let mut attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(Errno::EACCES) | Err(Errno::EINVAL) => {
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let e = bpf(BPF_PROG_LOAD, &mut attr).map(owned).err().unwrap_or(Errno::EINVAL);
            let text = String::from_utf8_lossy(&log[..log.iter().position(|&b| b == 0).unwrap_or(0)]).trim().to_string();
            Err(Error::sys(format!("load device program (verifier: {text})"), e))
        }
        Err(e) => Err(Error::sys("load device program", e)),
    }
}

/// The device programs attached to the cgroup itself (not its ancestors).
fn attached(cgroup: &OwnedFd) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr).map_err(|e| Error::sys("query device programs", e))?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// Attach `prog` to the cgroup, then detach what was attached before. Between the two calls
/// both programs run and both must allow an access: the switch never opens a gap.
pub fn replace(cgroup: &OwnedFd, prog: &OwnedFd) -> Result<()> {
    let old = attached(cgroup)?;
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| Error::sys("attach device program", e))?;
    for id in old {
        let mut get = [id, 0, 0];
        let fd = match bpf(BPF_PROG_GET_FD_BY_ID, &mut get) {
            Ok(fd) => owned(fd),
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(Error::sys(format!("open device program {id}"), e)),
        };
        let mut attr =
            AttachAttr { target_fd: cgroup.as_raw_fd() as u32, attach_bpf_fd: fd.as_raw_fd() as u32, attach_type: BPF_CGROUP_DEVICE, ..Default::default() };
        match bpf(BPF_PROG_DETACH, &mut attr) {
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::sys(format!("detach device program {id}"), e)),
        }
    }
    Ok(())
}

/// The device program for `insns`, verified once per host. The verifier costs ~1 ms of CPU for
/// runc's default rules — 14 % of a whole `run` of /bin/true, the largest single item (perf) —
/// and nearly every container compiles to the same instructions. A loaded program lives while
/// something holds it, so one copy is kept attached to an empty cgroup named after the
/// instructions, `<hierarchy>/testudo.device-programs/<digest>-<count>`; it controls no
/// process there. A later container takes that program by id instead of loading its own. Only
/// root can make or attach to that cgroup, as only root can attach the program to the container.
/// Keeping the copy is best effort: if it fails, the container still gets its program.
pub fn load_shared(insns: &[Insn], hierarchy: &Path) -> Result<OwnedFd> {
    let keeper = hierarchy.join("testudo.device-programs").join(format!("{:016x}-{}", digest(insns), insns.len()));
    let dir = |p: &Path| {
        nix::fcntl::open(p, nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
    };
    if let Ok(kept) = dir(&keeper) {
        let id = attached(&kept).ok().and_then(|ids| ids.first().copied());
        if let Some(fd) = id.and_then(|id| bpf(BPF_PROG_GET_FD_BY_ID, &mut [id, 0, 0]).ok()).map(owned) {
            if is_exactly(&fd, insns) {
                return Ok(fd);
            }
        }
    }
    let prog = load(insns)?;
    if std::fs::create_dir_all(&keeper).is_ok() {
        if let Ok(kept) = dir(&keeper) {
            let _ = replace(&kept, &prog);
        }
    }
    Ok(prog)
}

/// Whether the loaded program is a device program of exactly these instructions, as the kernel
/// holds them (no map or context rewriting applies to a device program). The name of the keeper
/// is only a hash: whoever may write config.json could pick rules whose hash matches another
/// rule set's, so the hash alone must never decide which rules a container gets.
fn is_exactly(prog: &OwnedFd, insns: &[Insn]) -> bool {
    let mut xlated = vec![Insn { code: 0, regs: 0, off: 0, imm: 0 }; insns.len() + 1];
    let mut info =
        ProgInfo { xlated_prog_len: (xlated.len() * std::mem::size_of::<Insn>()) as u32, xlated_prog_insns: xlated.as_mut_ptr() as u64, ..Default::default() };
    let mut attr = InfoAttr { bpf_fd: prog.as_raw_fd() as u32, info_len: std::mem::size_of::<ProgInfo>() as u32, info: &mut info as *mut ProgInfo as u64 };
    if bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).is_err() {
        return false;
    }
    let n = info.xlated_prog_len as usize / std::mem::size_of::<Insn>();
    info.prog_type == BPF_PROG_TYPE_CGROUP_DEVICE && n == insns.len() && xlated[..n] == *insns
}

/// FNV-1a over the instructions: the keeper's name (see `is_exactly` for the check).
fn digest(insns: &[Insn]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for i in insns {
        let bytes = [[i.code, i.regs], i.off.to_le_bytes()].concat();
        for b in bytes.iter().chain(i.imm.to_le_bytes().iter()) {
            h = (h ^ *b as u64).wrapping_mul(0x100000001b3);
        }
    }
    h
}
