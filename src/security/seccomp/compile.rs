//! `linux.seccomp` → libseccomp → classic BPF, in P0. Every field is either honoured exactly or
//! refused; the only thing skipped is a syscall name this libseccomp does not know (profiles name
//! syscalls of newer kernels), with a warning, as runc does. Skipping one only ever leaves that
//! syscall to the default action, and the ENOSYS stub counts only names that were known.

use std::io::{Read, Seek};

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction as A, LinuxSeccompFilterFlag as F, LinuxSeccompOperator as Op};

use super::{budget, enosys};
use crate::error::{Context, Error, Result};

/// The largest errno the kernel passes through (MAX_ERRNO); larger SECCOMP_RET_DATA is clamped.
const MAX_ERRNO: u32 = 4095;

fn action(a: A, errno_ret: Option<u32>, default_errno: u32, what: &str) -> Result<ScmpAction> {
    if errno_ret.is_some() && !matches!(a, A::ScmpActErrno | A::ScmpActTrace) {
        return Err(Error::new(format!("seccomp: {what}: errnoRet only goes with SCMP_ACT_ERRNO or SCMP_ACT_TRACE")));
    }
    let errno = errno_ret.unwrap_or(default_errno);
    if errno > MAX_ERRNO {
        return Err(Error::new(format!("seccomp: {what}: errno {errno} is out of range (max {MAX_ERRNO})")));
    }
    Ok(match a {
        A::ScmpActKill | A::ScmpActKillThread => ScmpAction::KillThread,
        A::ScmpActKillProcess => ScmpAction::KillProcess,
        A::ScmpActTrap => ScmpAction::Trap,
        A::ScmpActErrno => ScmpAction::Errno(errno as i32),
        A::ScmpActTrace => ScmpAction::Trace(errno as u16),
        A::ScmpActAllow => ScmpAction::Allow,
        A::ScmpActLog => ScmpAction::Log,
        A::ScmpActNotify => ScmpAction::Notify,
    })
}

pub(super) fn arch(a: Arch) -> Result<ScmpArch> {
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

fn compare(op: Op, value: u64, value_two: u64, what: &str) -> Result<(ScmpCompareOp, u64)> {
    if value_two != 0 && op != Op::ScmpCmpMaskedEq {
        return Err(Error::new(format!("seccomp: {what}: valueTwo only goes with SCMP_CMP_MASKED_EQ")));
    }
    Ok(match op {
        Op::ScmpCmpNe => (ScmpCompareOp::NotEqual, value),
        Op::ScmpCmpLt => (ScmpCompareOp::Less, value),
        Op::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, value),
        Op::ScmpCmpEq => (ScmpCompareOp::Equal, value),
        Op::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, value),
        Op::ScmpCmpGt => (ScmpCompareOp::Greater, value),
        // OCI: value is the mask, valueTwo the value compared after masking.
        Op::ScmpCmpMaskedEq => (ScmpCompareOp::MaskedEqual(value), value_two),
    })
}

/// The install flags, and whether the profile asks for a notify fd: cheap checks, no libseccomp.
pub fn flags(s: &LinuxSeccomp) -> Result<(libc::c_ulong, bool)> {
    let mut flags: libc::c_ulong = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            F::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            F::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            F::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            F::SeccompFilterFlagWaitKillableRecv => libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
        };
    }
    if s.default_action() == A::ScmpActNotify {
        return Err(Error::new("seccomp: SCMP_ACT_NOTIFY cannot be the default action"));
    }
    let notify = s.syscalls().iter().flatten().any(|r| r.action() == A::ScmpActNotify);
    match (notify, s.listener_path().is_some()) {
        (true, false) => return Err(Error::new("seccomp: SCMP_ACT_NOTIFY needs a listenerPath")),
        (false, true) => return Err(Error::new("seccomp: listenerPath is set but no syscall uses SCMP_ACT_NOTIFY")),
        _ => {}
    }
    if s.listener_metadata().is_some() && s.listener_path().is_none() {
        return Err(Error::new("seccomp: listenerMetadata needs a listenerPath"));
    }
    if notify {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
        // The kernel refuses TSYNC with NEW_LISTENER unless told to report a failed sync as
        // ESRCH; we are single-threaded, so it never fails.
        if flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
            flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    } else if flags & libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV != 0 {
        return Err(Error::new("seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a SCMP_ACT_NOTIFY rule"));
    }
    Ok((flags, notify))
}

/// The filter program: the ENOSYS stub (see `enosys`) followed by libseccomp's program.
pub fn bpf(s: &LinuxSeccomp) -> Result<Vec<libc::sock_filter>> {
    let default_errno = s.default_errno_ret().unwrap_or(libc::EPERM as u32);
    let default = action(s.default_action(), s.default_errno_ret(), libc::EPERM as u32, "defaultAction")?;
    let ctx_err = |e: libseccomp::error::SeccompError| Error::new(format!("seccomp: {e}"));
    let mut ctx = ScmpFilterContext::new(default).map_err(ctx_err)?;
    // The kernel, not libseccomp, sets no_new_privs (or not) as the spec says.
    ctx.set_ctl_nnp(false).map_err(ctx_err)?;
    let mut archs = vec![ScmpArch::native()];
    for a in s.architectures().iter().flatten() {
        let a = arch(*a)?;
        if !archs.contains(&a) {
            ctx.add_arch(a).map_err(|e| Error::new(format!("seccomp: add architecture {a:?}: {e}")))?;
            archs.push(a);
        }
    }
    let plan = plan(s, default, default_errno)?;
    // Issue 25: libseccomp's cost is unbounded in the rules; count first, fail in milliseconds.
    plan.check(&archs, libc::BPF_MAXINSNS as usize)?;
    let named = plan.named();
    for (i, name, act, sc, c) in &plan.rules {
        let c: Vec<ScmpArgCompare> = c.iter().map(|(i, op, d)| ScmpArgCompare::new(*i, *op, *d)).collect();
        ctx.add_rule_conditional(*act, *sc, &c).map_err(|e| Error::new(format!("seccomp: syscalls[{i}] {name}: {e}")))?;
    }
    let mut prog = Vec::new();
    let permissive = matches!(default, ScmpAction::Allow | ScmpAction::Log);
    if !permissive && default != ScmpAction::Errno(libc::ENOSYS) {
        prog = enosys::stub(&enosys::highest(&archs, &named));
    }
    // A binary search on the syscall number rather than libseccomp's default linear list. The
    // kernel's load cost is not in the length alone: attaching the filter emulates it for every
    // syscall number of every architecture to fill its allow cache (seccomp_cache_prepare), a
    // walk down the list for each, with the task's siglock held and interrupts off. For the build
    // profile (384 names, 3 architectures) the load took 1.02 ms linear and 0.39 ms as a tree,
    // median of 200 loads each; each syscall the job makes then takes ~9 compares instead of up
    // to ~400. The tree is longer, so a profile near the kernel's limit falls back to the list.
    // libseccomp before 2.5 has no tree: the list is as safe, only slower.
    let stub = prog.len();
    let tree = ctx.set_ctl_optimize(2).is_ok();
    prog.extend(export(&ctx)?);
    if tree && prog.len() > libc::BPF_MAXINSNS as usize {
        prog.truncate(stub);
        ctx.set_ctl_optimize(1).map_err(ctx_err)?;
        prog.extend(export(&ctx)?);
    }
    if prog.len() > libc::BPF_MAXINSNS as usize {
        return Err(Error::new(format!("seccomp: the filter has {} instructions (max {})", prog.len(), libc::BPF_MAXINSNS)));
    }
    Ok(prog)
}

/// The rules to add, checked and without repeats (`budget`); no libseccomp work but name lookups.
pub(super) fn plan(s: &LinuxSeccomp, default: ScmpAction, default_errno: u32) -> Result<budget::Plan<'_>> {
    let mut plan = budget::Plan::default();
    let mut shadows = Shadows::default();
    for (i, rule) in s.syscalls().iter().flatten().enumerate() {
        let what = format!("syscalls[{i}]");
        let act = action(rule.action(), rule.errno_ret(), default_errno, &what)?;
        if rule.names().is_empty() {
            return Err(Error::new(format!("seccomp: {what}: names is empty")));
        }
        let mut conds: Vec<budget::Cmp> = Vec::new();
        for a in rule.args().iter().flatten() {
            if a.index() > 5 {
                return Err(Error::new(format!("seccomp: {what}: argument index {} (max 5)", a.index())));
            }
            let (op, datum) = compare(a.op(), a.value(), a.value_two().unwrap_or(0), &what)?;
            conds.push((a.index() as u32, op, datum));
        }
        // libseccomp refuses two comparisons of one argument in a rule; like runc, such a rule
        // means "any of them" and becomes one rule per comparison.
        let mut idx: Vec<u32> = conds.iter().map(|c| c.0).collect();
        idx.sort_unstable();
        let split = idx.windows(2).any(|w| w[0] == w[1]);
        for name in rule.names() {
            let sc = *plan.known.entry(name.as_str()).or_insert_with(|| {
                let sc = ScmpSyscall::from_name(name).ok();
                if sc.is_none() {
                    // Profiles name syscalls of newer kernels than this libseccomp knows.
                    crate::log::warn(&format!("linux.seccomp.{what}: unknown syscall {name:?} skipped"));
                }
                sc
            });
            let Some(sc) = sc else { continue };
            shadows.note(name, i, act, conds.is_empty())?;
            if act == default {
                continue; // libseccomp refuses rules that repeat the default action
            }
            let groups: Vec<&[budget::Cmp]> = if split { conds.chunks(1).collect() } else { vec![&conds[..]] };
            for c in groups {
                plan.add(i, name, act, sc, c.to_vec());
            }
        }
    }
    Ok(plan)
}

/// A rule that libseccomp would not honour, refused rather than lost. For one syscall, an
/// unconditional rule swallows every conditional one (whatever their order), and a rule whose
/// action is the default one is not added at all, so "allow ioctl, but not TIOCSTI" written as
/// an unconditional ALLOW and a conditional ERRNO (or a conditional rule of the default action
/// next to an unconditional rule of another) would silently allow what the profile denies.
/// runc loses it silently; here the profile is refused, naming both rules. A conditional rule
/// that is less strict than the unconditional one only loses an exception (the syscall stays as
/// strict as the unconditional rule says), and is let through, as is a repeated unconditional
/// rule (libseccomp keeps the first).
#[derive(Default)]
struct Shadows<'a> {
    /// Per syscall: its unconditional rule, and its conditional ones.
    seen: std::collections::HashMap<&'a str, (Option<Rule>, Vec<Rule>)>,
}

/// A rule's index in `syscalls` and its action.
type Rule = (usize, ScmpAction);

impl<'a> Shadows<'a> {
    fn note(&mut self, name: &'a str, i: usize, act: ScmpAction, unconditional: bool) -> Result<()> {
        let e = self.seen.entry(name).or_default();
        if unconditional {
            e.0.get_or_insert((i, act));
        } else {
            e.1.push((i, act));
        }
        let Some((u, uact)) = e.0 else { return Ok(()) };
        for &(c, cact) in &e.1 {
            if strictness(cact) > strictness(uact) {
                return Err(Error::new(format!(
                    "seccomp: syscalls[{c}] ({name}, with conditions, {cact:?}) would have no effect: syscalls[{u}] gives {name} {uact:?} \
                     unconditionally, and libseccomp then ignores every conditional rule of that syscall; deny by argument \
                     with the allowed values instead (allow only the arguments wanted)"
                )));
            }
        }
        Ok(())
    }
}

/// The kernel's precedence of seccomp returns: the higher, the stricter.
fn strictness(a: ScmpAction) -> u8 {
    match a {
        ScmpAction::KillProcess => 8,
        ScmpAction::KillThread => 7,
        ScmpAction::Trap => 6,
        ScmpAction::Errno(_) => 5,
        ScmpAction::Notify => 4,
        ScmpAction::Trace(_) => 3,
        ScmpAction::Log => 2,
        _ => 1,
    }
}

fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    let fd = nix::sys::memfd::memfd_create(c"testudo-seccomp", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).context("seccomp: memfd")?;
    ctx.export_bpf(&fd).map_err(|e| Error::new(format!("seccomp: export: {e}")))?;
    let mut f = std::fs::File::from(fd);
    f.rewind().context("seccomp: rewind")?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).context("seccomp: read filter")?;
    Ok(super::decode(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).expect("seccomp json")
    }

    fn estimate(s: &LinuxSeccomp) -> (usize, Vec<ScmpArch>, Vec<String>) {
        let mut archs = vec![ScmpArch::native()];
        for a in s.architectures().iter().flatten() {
            let a = arch(*a).expect("arch");
            if !archs.contains(&a) {
                archs.push(a);
            }
        }
        let errno = s.default_errno_ret().unwrap_or(libc::EPERM as u32);
        let p = plan(s, action(s.default_action(), s.default_errno_ret(), libc::EPERM as u32, "d").expect("action"), errno).expect("plan");
        (p.estimate(&archs), archs.clone(), p.named().iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn the_estimate_stays_under_what_libseccomp_emits_for_the_shipped_profiles() {
        for name in ["default.json", "build-sandbox.json"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seccomp-profiles").join(name);
            let s = profile(serde_json::from_slice(&std::fs::read(&path).expect("profile")).expect("json"));
            let (est, archs, named) = estimate(&s);
            let named: Vec<&str> = named.iter().map(String::as_str).collect();
            let stub = enosys::stub(&enosys::highest(&archs, &named)).len();
            let emitted = bpf(&s).expect("compile").len() - stub;
            eprintln!("{name}: estimated {est}, libseccomp emitted {emitted} (+{stub} stub)");
            assert!(est <= emitted && est * 2 > emitted, "{name}: estimate {est} vs {emitted}");
        }
    }

    /// Enough of a classic BPF machine for libseccomp's programs: the number of instructions a
    /// syscall (with every argument 0) runs through, and the action it ends with.
    fn steps(p: &[libc::sock_filter], arch: u32, nr: u32) -> (usize, u32) {
        let (mut pc, mut a, mut n) = (0usize, 0u32, 0usize);
        loop {
            let i = p[pc];
            pc += 1;
            n += 1;
            let class = i.code & 0x07;
            match (class, i.code) {
                (0x00, _) => {
                    a = if i.k == 0 {
                        nr
                    } else if i.k == 4 {
                        arch
                    } else {
                        0
                    }
                }
                (0x04, c) if c & 0xf0 == 0x50 => a &= i.k,
                (0x05, c) if c & 0xf0 == 0x00 => pc += i.k as usize,
                (0x05, c) => {
                    let hit = match c & 0xf0 {
                        0x10 => a == i.k,
                        0x20 => a > i.k,
                        0x30 => a >= i.k,
                        0x40 => a & i.k != 0,
                        op => panic!("jump {op:#x}"),
                    };
                    pc += if hit { i.jt } else { i.jf } as usize;
                }
                (0x06, _) => return (n, i.k),
                _ => panic!("opcode {:#x}", i.code),
            }
        }
    }

    /// The build profile as a binary search: each of its syscalls is decided in a few dozen
    /// instructions, where libseccomp's default list walks up to its whole length for the last
    /// name (and the kernel walks it for every syscall number when it attaches the filter).
    #[test]
    fn a_large_profile_compiles_to_a_search_not_a_list() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seccomp-profiles/build-sandbox.json");
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).expect("profile")).expect("json");
        // Those with argument conditions also run through their compares.
        let conditional: Vec<&str> = v["syscalls"]
            .as_array()
            .expect("syscalls")
            .iter()
            .filter(|r| r["args"].as_array().is_some_and(|a| !a.is_empty()))
            .flat_map(|r| r["names"].as_array().expect("names").iter().filter_map(|n| n.as_str()))
            .collect();
        let s = profile(v.clone());
        let p = bpf(&s).expect("compile");
        let (_, archs, named) = estimate(&s);
        assert!(archs.contains(&ScmpArch::X8664));
        let mut worst = (0, "");
        for name in named.iter().filter(|n| !conditional.contains(&n.as_str())) {
            let Ok(nr) = ScmpSyscall::from_name_by_arch(name, ScmpArch::X8664) else { continue };
            let (n, _) = steps(&p, 0xc000_003e, nr.as_raw_syscall() as u32);
            if n > worst.0 {
                worst = (n, name);
            }
        }
        assert!(worst.0 < 60, "{}: {} instructions of {}", worst.1, worst.0, p.len());
    }

    /// The rule pairs libseccomp would silently lose. Without the check, the first profile
    /// compiles to a filter that allows TIOCSTI (the conditional ERRNO is the default action, so
    /// it is never added, and the unconditional ALLOW would swallow it anyway).
    #[test]
    fn a_conditional_rule_an_unconditional_one_would_swallow_is_refused() {
        let tiocsti = serde_json::json!([{"index": 1, "value": 0x5412, "op": "SCMP_CMP_EQ"}]);
        let refused = [
            serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["ioctl"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "args": tiocsti}]}),
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["ioctl"], "action": "SCMP_ACT_KILL_PROCESS", "args": tiocsti},
                {"names": ["read", "ioctl"], "action": "SCMP_ACT_LOG"}]}),
        ];
        for v in refused {
            let e = match bpf(&profile(v.clone())) {
                Ok(_) => panic!("accepted: {v}"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains("(ioctl, with conditions") && e.contains("unconditionally"), "{e}");
        }
        // A conditional exception less strict than the unconditional rule only loses itself.
        let stricter_base = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["ioctl"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["ioctl"], "action": "SCMP_ACT_LOG", "args": tiocsti}]});
        assert!(bpf(&profile(stricter_base)).is_ok());
    }

    fn hostile(n: usize, rule: impl Fn(usize) -> serde_json::Value) -> LinuxSeccomp {
        let rules: Vec<serde_json::Value> = (0..n).map(rule).collect();
        profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": rules,
        }))
    }

    #[test]
    fn a_hundred_thousand_rules_fail_before_libseccomp_with_the_count() {
        let cmp = |i: usize, v: usize| serde_json::json!({"index": i, "value": v, "op": "SCMP_CMP_EQ"});
        let names = ["personality", "ioctl", "fcntl", "prctl"];
        // Distinct argument values, and the square attack: 300 x 300 pairs from 600 comparisons.
        let wide = hostile(100_000, |i| serde_json::json!({"names": [names[i % 4]], "action": "SCMP_ACT_ALLOW", "args": [cmp(0, i)]}));
        let square = hostile(90_000, |i| serde_json::json!({"names": ["ioctl"], "action": "SCMP_ACT_ALLOW", "args": [cmp(0, i / 300), cmp(1, i % 300)]}));
        for (what, s, rules) in [("wide", wide, 100_000), ("square", square, 90_000)] {
            let t = std::time::Instant::now();
            let e = match bpf(&s) {
                Ok(p) => panic!("{what}: compiled to {} instructions", p.len()),
                Err(e) => e.to_string(),
            };
            eprintln!("{what}: {e} ({:?})", t.elapsed());
            assert!(e.starts_with("seccomp: the profile needs at least "), "{e}");
            assert!(e.contains("BPF instructions (max 4096)") && e.contains(&format!("{rules} rules after expanding names")), "{e}");
        }
        // 100,000 repeats of one rule are one rule to libseccomp, and compile.
        let repeats = hostile(100_000, |_| serde_json::json!({"names": ["ioctl"], "action": "SCMP_ACT_ALLOW", "args": [cmp(1, 0x5412)]}));
        let t = std::time::Instant::now();
        let p = bpf(&repeats).expect("repeats compile");
        eprintln!("repeats: {} instructions ({:?})", p.len(), t.elapsed());
    }
}
