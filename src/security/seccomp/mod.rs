//! `linux.seccomp`: compiled to classic BPF in the parent with libseccomp, before the clone, so the
//! container never runs libseccomp; installed in the child with a raw seccomp(2) as late as it can
//! be (the last step before execve, or before dropping CAP_SYS_ADMIN when no_new_privileges is off).

use std::io::{Read, Seek};

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction as A, LinuxSeccompFilterFlag as F, LinuxSeccompOperator as Op};

use crate::error::{Context, Error, Result};

/// A compiled filter, ready for seccomp(SECCOMP_SET_MODE_FILTER).
pub struct Program {
    pub filter: Vec<libc::sock_filter>,
    pub flags: libc::c_ulong,
}

fn action(a: A, errno_ret: Option<u32>, default_errno: u32) -> ScmpAction {
    match a {
        A::ScmpActKill | A::ScmpActKillThread => ScmpAction::KillThread,
        A::ScmpActKillProcess => ScmpAction::KillProcess,
        A::ScmpActTrap => ScmpAction::Trap,
        A::ScmpActErrno => ScmpAction::Errno(errno_ret.unwrap_or(default_errno) as i32),
        A::ScmpActTrace => ScmpAction::Trace(errno_ret.unwrap_or(default_errno) as u16),
        A::ScmpActAllow => ScmpAction::Allow,
        A::ScmpActLog => ScmpAction::Log,
        A::ScmpActNotify => ScmpAction::Notify,
    }
}

fn arch(a: Arch) -> Result<ScmpArch> {
    Ok(match a {
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        other => return Err(Error::new(format!("seccomp: architecture {other:?} is not supported"))),
    })
}

fn compare(op: Op, value: u64, value_two: u64) -> (ScmpCompareOp, u64) {
    match op {
        Op::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        Op::ScmpCmpLt => (ScmpCompareOp::Less, value),
        Op::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        Op::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        Op::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        Op::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // OCI: value is the mask, valueTwo the value compared after masking.
        Op::ScmpCmpMaskedEq => (ScmpCompareOp::MaskedEqual(value), value_two),
    }
}

pub fn compile(s: &LinuxSeccomp) -> Result<Program> {
    let default_errno = s.default_errno_ret().unwrap_or(libc::EPERM as u32);
    let default = action(s.default_action(), s.default_errno_ret(), libc::EPERM as u32);
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| Error::new(format!("seccomp: {e}")))?;
    // The kernel, not libseccomp, sets no_new_privs (or not) as the spec says.
    ctx.set_ctl_nnp(false).map_err(|e| Error::new(format!("seccomp: {e}")))?;
    for a in s.architectures().iter().flatten() {
        let a = arch(*a)?;
        ctx.add_arch(a).map_err(|e| Error::new(format!("seccomp: add architecture {a:?}: {e}")))?;
    }
    let mut flags: libc::c_ulong = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            F::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            F::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            F::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            F::SeccompFilterFlagWaitKillableRecv => 1 << 5,
        };
    }
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        let act = action(rule.action(), rule.errno_ret(), default_errno);
        if act == default {
            continue; // libseccomp refuses rules that repeat the default action
        }
        if act == ScmpAction::Notify {
            return Err(Error::new("seccomp: SCMP_ACT_NOTIFY (listenerPath) is not supported yet"));
        }
        let conds: Vec<ScmpArgCompare> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| {
                let (op, datum) = compare(a.op(), a.value(), a.value_two().unwrap_or(0));
                ScmpArgCompare::new(a.index() as u32, op, datum)
            })
            .collect();
        for name in rule.names() {
            let sc = match ScmpSyscall::from_name(name) {
                Ok(sc) => sc,
                Err(_) => {
                    // Profiles name syscalls of newer kernels than this libseccomp knows.
                    crate::log::debug(|| format!("seccomp: skipping unknown syscall {name:?}"));
                    continue;
                }
            };
            ctx.add_rule_conditional(act, sc, &conds)
                .map_err(|e| Error::new(format!("seccomp: syscalls[{i}] {name}: {e}")))?;
        }
    }
    let filter = export(&ctx)?;
    Ok(Program { filter, flags })
}

fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    let fd = nix::sys::memfd::memfd_create(c"testudo-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).context("seccomp: memfd")?;
    ctx.export_bpf(&fd).map_err(|e| Error::new(format!("seccomp: export: {e}")))?;
    let mut f = std::fs::File::from(fd);
    f.rewind().context("seccomp: rewind")?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).context("seccomp: read filter")?;
    let size = std::mem::size_of::<libc::sock_filter>();
    Ok(bytes
        .chunks_exact(size)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

/// Install the filter on this thread (the child's only one).
pub fn install(p: &Program) -> Result<()> {
    let prog = libc::sock_fprog { len: p.filter.len() as u16, filter: p.filter.as_ptr() as *mut libc::sock_filter };
    // SAFETY: `prog` points into `p.filter`, which outlives the call; the kernel copies the program.
    let r = unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, p.flags, &prog as *const libc::sock_fprog) };
    if r < 0 {
        return Err(crate::error::last_os("seccomp: install filter"));
    }
    Ok(())
}
