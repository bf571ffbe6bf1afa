//! The ENOSYS stub. A syscall newer than every syscall a profile names must fail with ENOSYS, not
//! with the profile's default errno: libc then falls back to the older call (glibc tries clone3
//! and goes back to clone only on ENOSYS; an EPERM there broke every thread creation under
//! youki). libseccomp cannot say "above N", so we put a few instructions in front of its
//! program, per audit architecture in the filter:
//!
//! ```text
//!     ld  [4]                          ; seccomp_data.arch
//!     jeq #AUDIT_ARCH_X86_64, 0, next  ; one block per architecture
//!     ld  [0]                          ; seccomp_data.nr
//!     jset #0x40000000, x32, 0         ; x86_64 only: the x32 ABI sets this bit in nr
//!     jgt #max_x86_64, ENOSYS, prog
//! x32:jgt #max_x32, ENOSYS, prog       ; (jge #0x40000000 → prog when x32 is not in the filter,
//! next: …                              ;  so libseccomp's bad-arch action still applies)
//!     ja  prog
//! ENOSYS: ret #SECCOMP_RET_ERRNO|ENOSYS
//! prog: libseccomp's program
//! ```
//!
//! `max` is the highest number, on that architecture, of any syscall the profile names (whatever
//! its action). An architecture whose audit value is not known here gets no block and keeps the
//! default action. The stub is skipped when the default action is allow/log or already ENOSYS.

use libseccomp::{ScmpArch, ScmpSyscall};

const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// AUDIT_ARCH_* values (linux/audit.h) of the architectures we write a block for.
fn audit_arch(a: ScmpArch) -> Option<u32> {
    Some(match a {
        ScmpArch::X8664 | ScmpArch::X32 => AUDIT_ARCH_X86_64,
        ScmpArch::X86 => 0x4000_0003,
        ScmpArch::Aarch64 => 0xc000_00b7,
        ScmpArch::Arm => 0x4000_0028,
        ScmpArch::Riscv64 => 0xc000_00f3,
        ScmpArch::S390X => 0x8000_0016,
        ScmpArch::Ppc64Le => 0xc000_0015,
        _ => return None,
    })
}

/// One block: an audit arch, its highest named syscall, and for x86_64 the x32 one (`Some(None)`
/// when x32 is in the filter but names nothing, `None` when x32 is not in the filter).
#[derive(Debug, PartialEq, Eq)]
pub struct Highest {
    audit: u32,
    max: Option<u32>,
    x32: Option<Option<u32>>,
}

/// The highest syscall number named, per architecture of the filter.
pub fn highest(archs: &[ScmpArch], names: &[&str]) -> Vec<Highest> {
    let max_of =
        |a: ScmpArch| names.iter().filter_map(|n| ScmpSyscall::from_name_by_arch(n, a).ok()).map(i32::from).filter(|&nr| nr >= 0).map(|nr| nr as u32).max();
    let mut out: Vec<Highest> = Vec::new();
    for &a in archs {
        let Some(audit) = audit_arch(a) else { continue };
        let entry = match out.iter_mut().position(|h| h.audit == audit) {
            Some(i) => &mut out[i],
            None => {
                out.push(Highest { audit, max: None, x32: None });
                let last = out.len() - 1;
                &mut out[last]
            }
        };
        if a == ScmpArch::X32 {
            // libseccomp numbers x32 syscalls with the x32 bit already set.
            entry.x32 = Some(max_of(a).map(|n| n | X32_SYSCALL_BIT));
        } else {
            entry.max = max_of(a);
        }
    }
    out
}

/// Where a jump goes, resolved once the stub's length is known.
#[derive(Clone, Copy)]
enum T {
    Next,
    Skip1,
    NextBlock,
    Enosys,
    Prog,
}

struct Insn {
    code: u16,
    jt: T,
    jf: T,
    k: u32,
}

fn op(code: u16, jt: T, jf: T, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

/// The stub to put in front of libseccomp's program.
pub fn stub(archs: &[Highest]) -> Vec<libc::sock_filter> {
    // (instruction, index of the first instruction after its block)
    let mut out: Vec<(Insn, usize)> = Vec::new();
    for h in archs {
        let x32_max = h.x32.flatten();
        if h.max.is_none() && x32_max.is_none() {
            continue;
        }
        let mut block = vec![op(LD_W_ABS, T::Next, T::Next, OFF_ARCH), op(JEQ_K, T::Next, T::NextBlock, h.audit), op(LD_W_ABS, T::Next, T::Next, OFF_NR)];
        let ceiling = |m: Option<u32>| match m {
            Some(m) => op(JGT_K, T::Enosys, T::Prog, m),
            None => op(JA, T::Prog, T::Prog, 0),
        };
        match (h.audit == AUDIT_ARCH_X86_64, h.x32) {
            // x32 in the filter: its own ceiling after the native one.
            (true, Some(_)) => {
                block.push(op(JSET_K, T::Skip1, T::Next, X32_SYSCALL_BIT));
                block.push(ceiling(h.max));
                block.push(ceiling(x32_max));
            }
            // x32 not in the filter: leave those calls to libseccomp's bad-arch action.
            (true, None) => {
                block.push(op(JGE_K, T::Prog, T::Next, X32_SYSCALL_BIT));
                block.push(ceiling(h.max));
            }
            _ => block.push(ceiling(h.max)),
        }
        let end = out.len() + block.len();
        out.extend(block.into_iter().map(|i| (i, end)));
    }
    if out.is_empty() {
        return Vec::new();
    }
    // An architecture without a block falls through here, past the ENOSYS return.
    let n = out.len();
    out.push((op(JA, T::Skip1, T::Skip1, 0), n + 1));
    out.push((op(RET_K, T::Next, T::Next, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32), n + 2));
    let (enosys, prog) = (n + 1, n + 2);
    out.iter()
        .enumerate()
        .map(|(i, (insn, end))| {
            let off = |t: T| {
                let target = match t {
                    T::Next => i + 1,
                    T::Skip1 => i + 2,
                    T::NextBlock => *end,
                    T::Enosys => enosys,
                    T::Prog => prog,
                };
                (target - i - 1) as u32
            };
            if insn.code == JA {
                libc::sock_filter { code: JA, jt: 0, jf: 0, k: off(insn.jt) }
            } else if insn.code & 0x07 == libc::BPF_JMP as u16 {
                libc::sock_filter { code: insn.code, jt: off(insn.jt) as u8, jf: off(insn.jf) as u8, k: insn.k }
            } else {
                libc::sock_filter { code: insn.code, jt: 0, jf: 0, k: insn.k }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROG: u32 = 0x7fff_0000;
    const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

    /// Just enough of a classic BPF machine to run the stub followed by "ret PROG".
    fn run(p: &[libc::sock_filter], arch: u32, nr: u32) -> u32 {
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = p[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => a = if i.k == OFF_ARCH { arch } else { nr },
                JA => pc += i.k as usize,
                RET_K => return i.k,
                c => {
                    let hit = match c {
                        JEQ_K => a == i.k,
                        JGT_K => a > i.k,
                        JGE_K => a >= i.k,
                        JSET_K => a & i.k != 0,
                        _ => panic!("unexpected opcode {c:#x}"),
                    };
                    pc += if hit { i.jt } else { i.jf } as usize;
                }
            }
        }
    }

    fn prog(archs: &[ScmpArch], names: &[&str]) -> Vec<libc::sock_filter> {
        let mut p = stub(&highest(archs, names));
        p.push(ins(RET_K, 0, 0, PROG));
        p
    }

    fn ins(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
        libc::sock_filter { code, jt, jf, k }
    }

    const X86_64: u32 = AUDIT_ARCH_X86_64;
    const I386: u32 = 0x4000_0003;

    #[test]
    fn newer_than_every_named_syscall_is_enosys_per_architecture() {
        // x86_64: read 0, getppid 110, pidfd_open 434. i386: read 3, pidfd_open 434.
        let p = prog(&[ScmpArch::X8664, ScmpArch::X86], &["read", "getppid", "pidfd_open"]);
        assert_eq!(run(&p, X86_64, 0), PROG);
        assert_eq!(run(&p, X86_64, 200), PROG, "older, unnamed: libseccomp's default");
        assert_eq!(run(&p, X86_64, 434), PROG);
        assert_eq!(run(&p, X86_64, 435), ENOSYS, "clone3 is newer than anything named");
        assert_eq!(run(&p, I386, 434), PROG);
        assert_eq!(run(&p, I386, 435), ENOSYS);
        // x32 is not in the filter: its calls go to libseccomp (bad arch), never ENOSYS.
        assert_eq!(run(&p, X86_64, X32_SYSCALL_BIT | 600), PROG);
        // An architecture the filter does not have: libseccomp decides.
        assert_eq!(run(&p, 0xc000_00b7, 9999), PROG);
    }

    #[test]
    fn x32_has_its_own_ceiling() {
        let p = prog(&[ScmpArch::X8664, ScmpArch::X32], &["read", "getppid"]);
        assert_eq!(run(&p, X86_64, 111), ENOSYS);
        assert_eq!(run(&p, X86_64, X32_SYSCALL_BIT | 110), PROG);
        assert_eq!(run(&p, X86_64, X32_SYSCALL_BIT | 111), ENOSYS);
    }

    #[test]
    fn nothing_named_means_no_stub() {
        assert!(stub(&highest(&[ScmpArch::X8664], &[])).is_empty());
    }
}
