//! The instruction budget: a profile's program size is estimated, in one pass over its rules and
//! before libseccomp sees any of them, and a profile over the kernel's limit (BPF_MAXINSNS, 4,096)
//! fails at once with the count. libseccomp's work grows faster than the rules (measured before
//! this check: 6,000 argument rules burned 5.9 s of CPU and then failed at the limit; 100,000 rules
//! ran 790 s in `run` before being killed), and the kernel refuses a longer program anyway.
//!
//! The estimate, per architecture on which the syscall exists (a name absent from one, e.g.
//! `socket` on x86 before 4.3, costs nothing there):
//! - one instruction per syscall whose rules differ from the default action (its number compared);
//! - for a syscall with no unconditional rule (an unconditional rule makes libseccomp drop the
//!   conditional ones): the larger of its distinct argument comparisons and its distinct
//!   argument sets, one instruction each (libseccomp shares a comparison that starts several
//!   rules, but every argument set ends in a comparison of its own).
//!
//! libseccomp emits two to four instructions per comparison on 64-bit architectures (high and low
//! word), so the estimate stays under the real size: on the shipped profiles it counts 1,023 of
//! 1,058 (default.json) and 1,005 of 1,088 (build-sandbox.json), see the tests. Only a profile
//! whose rules make each other redundant (`{a0 == 1}` beside `{a0 == 1, a1 == 2}`, same action)
//! can be counted over what libseccomp would merge it into; it fails with the count and compiles
//! once the redundant rules are removed.

use std::collections::{HashMap, HashSet};

use libseccomp::{ScmpAction, ScmpArch, ScmpCompareOp, ScmpSyscall};

use crate::error::{Error, Result};

/// One argument comparison: index, operator (with its mask), datum.
pub(super) type Cmp = (u32, ScmpCompareOp, u64);

/// What one syscall's rules cost.
struct Syscall<'a> {
    name: &'a str,
    /// A rule of it has no argument comparison: libseccomp drops the conditional ones.
    unconditional: bool,
    sets: HashSet<Vec<Cmp>>,
    cmps: HashSet<Cmp>,
}

/// The rules libseccomp will be asked to add, without exact repeats, and what they cost.
#[derive(Default)]
pub(super) struct Plan<'a> {
    /// (rule index in the profile, name, action, syscall, comparisons sorted by argument).
    pub rules: Vec<(usize, &'a str, ScmpAction, ScmpSyscall, Vec<Cmp>)>,
    seen: HashSet<(ScmpSyscall, ScmpAction, Vec<Cmp>)>,
    per_syscall: HashMap<ScmpSyscall, Syscall<'a>>,
    /// Names looked up, once each: a profile may repeat a name in thousands of rules.
    pub known: HashMap<&'a str, Option<ScmpSyscall>>,
    /// Rules in the profile after expanding names, repeats included (for the error).
    expanded: usize,
}

impl<'a> Plan<'a> {
    pub fn add(&mut self, index: usize, name: &'a str, act: ScmpAction, sc: ScmpSyscall, mut cmps: Vec<Cmp>) {
        self.expanded += 1;
        cmps.sort_unstable_by_key(|c| c.0);
        let e = self.per_syscall.entry(sc).or_insert_with(|| Syscall { name, unconditional: false, sets: HashSet::new(), cmps: HashSet::new() });
        if cmps.is_empty() {
            e.unconditional = true;
        } else if !e.unconditional {
            e.cmps.extend(cmps.iter().copied());
            e.sets.insert(cmps.clone());
        }
        if self.seen.insert((sc, act, cmps.clone())) {
            self.rules.push((index, name, act, sc, cmps));
        }
    }

    /// Every known name the profile uses, whatever its action (for the ENOSYS stub).
    pub fn named(&self) -> Vec<&'a str> {
        self.known.iter().filter_map(|(n, s)| s.map(|_| *n)).collect()
    }

    /// The estimated instruction count for these architectures.
    pub fn estimate(&self, archs: &[ScmpArch]) -> usize {
        let mut n = 0;
        for Syscall { name, unconditional, sets, cmps } in self.per_syscall.values() {
            let cost = 1 + if *unconditional { 0 } else { sets.len().max(cmps.len()) };
            // libseccomp's resolver answers a negative pseudo-number for a name absent on an arch.
            let on = archs.iter().filter(|a| ScmpSyscall::from_name_by_arch(name, **a).is_ok_and(|s| s.as_raw_syscall() >= 0)).count();
            n += cost * on;
        }
        n
    }

    /// Fail, before any libseccomp work, when the program cannot fit in `max` instructions.
    pub fn check(&self, archs: &[ScmpArch], max: usize) -> Result<()> {
        let n = self.estimate(archs);
        if n > max {
            return Err(Error::new(format!(
                "seccomp: the profile needs at least {n} BPF instructions (max {max}): {} rules after expanding names, {} distinct, on {} syscalls and {} architectures",
                self.expanded,
                self.rules.len(),
                self.per_syscall.len(),
                archs.len()
            )));
        }
        Ok(())
    }
}
