//! `linux.resources.devices` → a `BPF_PROG_TYPE_CGROUP_DEVICE` program. cgroup v2 has no devices
//! files: the kernel runs the program attached to the cgroup on every open and mknod of a device
//! node and allows the access only if it returns 1.
//!
//! Semantics (those of the v1 devices cgroup the OCI rules were written for, as runc applies
//! them): everything is denied unless a rule allows it; rules apply in order, a later rule wins
//! over an earlier one; the access letters are independent, so `allow c 1:3 r` then
//! `allow c 1:3 w` allows an O_RDWR open and `deny c 1:3 w` after `allow c *:* rwm` denies it.
//! After the spec's rules come runc's always-allowed devices and one rule per `linux.devices`
//! node, so a container can always use /dev/null and the nodes its spec creates.
//!
//! The program: for each access bit the kernel asks about (mknod, read, write), walk the rules
//! that mention that bit from the last to the first; the first whose type and numbers match
//! decides (deny → return 0, allow → on to the next bit); no match → return 0. All asked bits
//! allowed → return 1.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::{Error, Result};

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }: access_type is
// (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*.
const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;
const DEV_BLOCK: u32 = 1;
const DEV_CHAR: u32 = 2;

/// One rule: `kind` None = all types, None numbers = wildcards, `access` = ACC_* bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Option<u32>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u32,
}

fn number(what: &str, v: Option<i64>) -> Result<Option<u32>> {
    match v {
        None | Some(-1) => Ok(None),
        // Compared with 32-bit immediates, which the kernel sign-extends.
        Some(n) if (0..=i32::MAX as i64).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(Error::new(format!("{what} {n} is not a device number (-1 or 0 to {})", i32::MAX))),
    }
}

fn access_bits(s: &str) -> Result<u32> {
    s.chars().try_fold(0, |acc, c| match c {
        'r' => Ok(acc | ACC_READ),
        'w' => Ok(acc | ACC_WRITE),
        'm' => Ok(acc | ACC_MKNOD),
        _ => Err(Error::new(format!("access {s:?} is not made of the letters r, w, m"))),
    })
}

pub fn rule(d: &LinuxDeviceCgroup) -> Result<Rule> {
    let kind = match d.typ().unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => None,
        LinuxDeviceType::C => Some(DEV_CHAR),
        LinuxDeviceType::B => Some(DEV_BLOCK),
        t => return Err(Error::new(format!("type {:?} is not a, b or c", t.as_str()))),
    };
    // An absent access means all of them, as in runc.
    let access = match d.access().as_deref() {
        None | Some("") => ACC_MKNOD | ACC_READ | ACC_WRITE,
        Some(s) => access_bits(s)?,
    };
    Ok(Rule { allow: d.allow(), kind, major: number("major", d.major())?, minor: number("minor", d.minor())?, access })
}

/// runc's AllowedDevices: mknod of any node (the node is useless without read/write), the
/// default nodes, ptys and /dev/net/tun.
fn always_allowed() -> Vec<Rule> {
    let rwm = ACC_MKNOD | ACC_READ | ACC_WRITE;
    let c = |major, minor: Option<u32>, access| Rule { allow: true, kind: Some(DEV_CHAR), major, minor, access };
    vec![
        c(None, None, ACC_MKNOD),
        Rule { allow: true, kind: Some(DEV_BLOCK), major: None, minor: None, access: ACC_MKNOD },
        c(Some(1), Some(3), rwm),    // null
        c(Some(1), Some(8), rwm),    // random
        c(Some(1), Some(7), rwm),    // full
        c(Some(5), Some(0), rwm),    // tty
        c(Some(1), Some(5), rwm),    // zero
        c(Some(1), Some(9), rwm),    // urandom
        c(Some(136), None, rwm),     // /dev/pts/*
        c(Some(5), Some(2), rwm),    // ptmx
        c(Some(10), Some(200), rwm), // /dev/net/tun
    ]
}

/// The rules the program enforces: the spec's, then the always-allowed ones, then the nodes.
impl Rule {
    /// The rule as lines of v1's devices.allow or devices.deny ("c 1:5 rwm", "a"). v1's "a" is
    /// every device with every access: a wildcard type with less is one line per type.
    pub fn v1_lines(&self) -> Vec<String> {
        let num = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        let access: String = [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')].iter().filter(|(b, _)| self.access & b != 0).map(|(_, c)| c).collect();
        let line = |kind: char| format!("{kind} {}:{} {access}", num(self.major), num(self.minor));
        match self.kind {
            None if self.major.is_none() && self.minor.is_none() && access == "rwm" => vec!["a".into()],
            None => vec![line('c'), line('b')],
            Some(DEV_BLOCK) => vec![line('b')],
            Some(_) => vec![line('c')],
        }
    }
}

pub fn rules(spec: &[LinuxDeviceCgroup], nodes: &[LinuxDevice]) -> Result<Vec<Rule>> {
    let mut out = spec.iter().enumerate().map(|(i, d)| rule(d).map_err(|e| e.context(format!("linux.resources.devices[{i}]")))).collect::<Result<Vec<_>>>()?;
    out.extend(always_allowed());
    for n in nodes {
        let kind = match n.typ() {
            LinuxDeviceType::B => DEV_BLOCK,
            LinuxDeviceType::C | LinuxDeviceType::U => DEV_CHAR,
            _ => continue, // fifos are not device nodes
        };
        let what = || format!("linux.devices {:?}", n.path());
        let num = |v: i64| {
            number("number", Some(v)).map_err(|e| e.context(what()))?.ok_or_else(|| Error::new(format!("{}: number {v} is not a device number", what())))
        };
        out.push(Rule { allow: true, kind: Some(kind), major: Some(num(n.major())?), minor: Some(num(n.minor())?), access: ACC_MKNOD | ACC_READ | ACC_WRITE });
    }
    Ok(out)
}

/// struct bpf_insn.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8, // dst_reg:4 (low), src_reg:4 (high)
    pub off: i16,
    pub imm: i32,
}

pub const LD_W_MEM: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub const AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub const RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
pub const MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
pub const JA: u8 = 0x05; // BPF_JMP | BPF_JA
pub const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
pub const JSET_K: u8 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
pub const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// Registers: R1 = ctx, R2 = device type, R3 = access bits, R4 = major, R5 = minor, R0 = result.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

fn ins(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: dst | (src << 4), off, imm }
}

fn offset(from: usize, to: usize) -> Result<i16> {
    // A jump is relative to the instruction after it.
    i16::try_from(to as i64 - from as i64 - 1).map_err(|_| Error::new("device rules: program too large"))
}

/// Compile the rules (see the module doc for the semantics).
pub fn program(rules: &[Rule]) -> Result<Vec<Insn>> {
    let mut p = vec![
        ins(LD_W_MEM, R2, R1, 0, 0),
        ins(AND_K, R2, 0, 0, 0xffff),
        ins(LD_W_MEM, R3, R1, 0, 0),
        ins(RSH_K, R3, 0, 0, 16),
        ins(LD_W_MEM, R4, R1, 4, 0),
        ins(LD_W_MEM, R5, R1, 8, 0),
    ];
    for bit in [ACC_MKNOD, ACC_READ, ACC_WRITE] {
        // Jumps to the end of this bit's block, patched once its length is known.
        let mut to_next_bit = Vec::new();
        // Not asked for this bit: skip the block.
        p.push(ins(JSET_K, R3, 0, 1, bit as i32));
        to_next_bit.push(p.len());
        p.push(ins(JA, 0, 0, 0, 0));
        let mut decided = false;
        for r in rules.iter().rev().filter(|r| r.access & bit != 0) {
            let checks: Vec<(u8, u32)> = [(R2, r.kind), (R4, r.major), (R5, r.minor)].into_iter().filter_map(|(reg, v)| v.map(|v| (reg, v))).collect();
            let verdict = if r.allow { 1 } else { 2 };
            for (i, (reg, v)) in checks.iter().enumerate() {
                // On mismatch skip the remaining checks and the verdict.
                let skip = (checks.len() - i - 1) + verdict;
                p.push(ins(JNE_K, *reg, 0, skip as i16, *v as i32));
            }
            if r.allow {
                to_next_bit.push(p.len());
                p.push(ins(JA, 0, 0, 0, 0));
            } else {
                p.push(ins(MOV_K, R0, 0, 0, 0));
                p.push(ins(EXIT, 0, 0, 0, 0));
            }
            if checks.is_empty() {
                // Matches everything: what follows could not be reached, and the verifier
                // rejects unreachable instructions.
                decided = true;
                break;
            }
        }
        if !decided {
            // No rule matched: denied.
            p.push(ins(MOV_K, R0, 0, 0, 0));
            p.push(ins(EXIT, 0, 0, 0, 0));
        }
        let end = p.len();
        for at in to_next_bit {
            p[at].off = offset(at, end)?;
        }
    }
    p.push(ins(MOV_K, R0, 0, 0, 1));
    p.push(ins(EXIT, 0, 0, 0, 0));
    Ok(p)
}

/// v1's devices list from the same rules as the v2 program: a default ("a" allowed or denied)
/// and exceptions to it, found by playing the rules in order (a later rule wins, as in the
/// program; a partial undo of a wildcard exception cannot be expressed in v1 and leaves it, the
/// v2 program still enforcing it).
pub fn v1_writes(rules: &[Rule], d: &Path, live: bool, out: &mut Vec<(PathBuf, String)>) {
    let mut allow_all = false;
    let mut exceptions: Vec<String> = Vec::new();
    for r in rules {
        for line in r.v1_lines() {
            if line == "a" {
                allow_all = r.allow;
                exceptions.clear();
            } else if r.allow != allow_all {
                if !exceptions.contains(&line) {
                    exceptions.push(line);
                }
            } else {
                exceptions.retain(|e| *e != line);
            }
        }
    }
    let (default, exception) = if allow_all { ("devices.allow", "devices.deny") } else { ("devices.deny", "devices.allow") };
    // A live deny-by-default list is changed in place, allows first, so that no device a running
    // container keeps is denied for a moment (as "a" in devices.deny would do, runc's old update
    // bug); the entries it no longer has are then removed one by one.
    let current = std::fs::read_to_string(d.join("devices.list")).unwrap_or_default();
    let current: Vec<&str> = current.lines().collect();
    if live && !allow_all && !current.is_empty() && current != ["a *:* rwm"] {
        for e in &exceptions {
            out.push((d.join("devices.allow"), e.clone()));
        }
        for old in current.iter().filter(|c| !exceptions.iter().any(|e| e == *c)) {
            out.push((d.join("devices.deny"), old.to_string()));
        }
        return;
    }
    out.push((d.join(default), "a".into()));
    for e in exceptions {
        out.push((d.join(exception), e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An interpreter for the instructions `program` emits, so the rules can be checked here.
    fn run(p: &[Insn], kind: u32, major: u32, minor: u32, access: u32) -> u32 {
        let ctx = [(access << 16) | kind, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LD_W_MEM => {
                    assert_eq!(src, 1);
                    r[dst] = ctx[(i.off / 4) as usize] as u64;
                }
                AND_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                MOV_K => r[dst] = i.imm as u32 as u64,
                JA => pc = (pc as i64 + i.off as i64) as usize,
                JNE_K if r[dst] != i.imm as u32 as u64 => pc = (pc as i64 + i.off as i64) as usize,
                JSET_K if r[dst] & i.imm as u32 as u64 != 0 => pc = (pc as i64 + i.off as i64) as usize,
                JNE_K | JSET_K => {}
                EXIT => return r[0] as u32,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn parse(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).expect("rules json")
    }

    const RW: u32 = ACC_READ | ACC_WRITE;

    #[test]
    fn deny_all_keeps_the_default_nodes() {
        let p = program(&rules(&parse(r#"[{"allow": false, "access": "rwm"}]"#), &[]).expect("rules")).expect("program");
        assert_eq!(run(&p, DEV_CHAR, 1, 3, RW), 1, "/dev/null");
        assert_eq!(run(&p, DEV_CHAR, 136, 7, RW), 1, "/dev/pts/7");
        assert_eq!(run(&p, DEV_CHAR, 1, 1, ACC_READ), 0, "/dev/mem");
        assert_eq!(run(&p, DEV_BLOCK, 8, 0, ACC_READ), 0, "/dev/sda");
        assert_eq!(run(&p, DEV_BLOCK, 8, 0, ACC_MKNOD), 1, "mknod is always allowed");
        assert_eq!(run(&p, DEV_BLOCK, 8, 0, ACC_MKNOD | ACC_READ), 0);
        // No spec rules at all: still denied by default.
        let p = program(&rules(&[], &[]).expect("rules")).expect("program");
        assert_eq!(run(&p, DEV_CHAR, 1, 1, ACC_READ), 0);
        assert_eq!(run(&p, DEV_CHAR, 1, 5, ACC_READ), 1);
    }

    #[test]
    fn later_rules_win_per_access_letter() {
        let spec = parse(
            r#"[{"allow": true, "access": "rwm"}, {"allow": false, "type": "c", "major": 1, "minor": 7, "access": "w"},
            {"allow": false, "type": "b", "access": "rwm"}]"#,
        );
        let p = program(&rules(&spec, &[]).expect("rules")).expect("program");
        assert_eq!(run(&p, DEV_CHAR, 1, 1, RW), 1, "allowed by the first rule");
        // /dev/full is in the always-allowed list that follows the spec's rules.
        assert_eq!(run(&p, DEV_CHAR, 1, 7, RW), 1);
        assert_eq!(run(&p, DEV_CHAR, 4, 7, ACC_WRITE), 1);
        assert_eq!(run(&p, DEV_BLOCK, 8, 0, ACC_READ), 0);
        let spec =
            parse(r#"[{"allow": true, "type": "c", "major": 4, "access": "rwm"}, {"allow": false, "type": "c", "major": 4, "minor": 7, "access": "w"}]"#);
        let p = program(&rules(&spec, &[]).expect("rules")).expect("program");
        assert_eq!(run(&p, DEV_CHAR, 4, 7, ACC_READ), 1);
        assert_eq!(run(&p, DEV_CHAR, 4, 7, RW), 0, "O_RDWR asks for the denied write");
        assert_eq!(run(&p, DEV_CHAR, 4, 8, RW), 1);
        assert_eq!(run(&p, DEV_BLOCK, 4, 8, ACC_READ), 0, "type matters");
        let spec = parse(
            r#"[{"allow": true, "type": "c", "major": 4, "minor": 1, "access": "r"}, {"allow": true, "type": "c", "major": 4, "minor": 1, "access": "w"}]"#,
        );
        let p = program(&rules(&spec, &[]).expect("rules")).expect("program");
        assert_eq!(run(&p, DEV_CHAR, 4, 1, RW), 1, "letters from two rules combine");
        assert_eq!(run(&p, DEV_CHAR, 4, 1, RW | ACC_MKNOD), 1, "mknod always allowed");
    }

    #[test]
    fn spec_nodes_are_allowed() {
        let nodes: Vec<LinuxDevice> = serde_json::from_str(r#"[{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]"#).expect("json");
        let p = program(&rules(&parse(r#"[{"allow": false, "access": "rwm"}]"#), &nodes).expect("rules")).expect("program");
        assert_eq!(run(&p, DEV_CHAR, 10, 229, RW), 1);
        assert_eq!(run(&p, DEV_CHAR, 10, 228, RW), 0);
    }

    #[test]
    fn bad_rules_are_errors() {
        assert!(rules(&parse(r#"[{"allow": true, "access": "rwx"}]"#), &[]).is_err());
        assert!(rules(&parse(r#"[{"allow": true, "type": "p", "access": "r"}]"#), &[]).is_err());
        let err = rules(&parse(r#"[{"allow": true, "access": "r"}, {"allow": true, "type": "c", "major": 4294967296, "access": "r"}]"#), &[]).err();
        assert_eq!(err.map(|e| e.to_string()).as_deref(), Some("linux.resources.devices[1]: major 4294967296 is not a device number (-1 or 0 to 2147483647)"));
        assert!(rules(&parse(r#"[{"allow": true, "type": "c", "major": -5, "access": "r"}]"#), &[]).is_err());
        // -1 is a wildcard, as in runc.
        assert_eq!(rule(&parse(r#"[{"allow": true, "type": "c", "major": -1, "access": "r"}]"#)[0]).expect("rule").major, None);
    }
}
