//! Compiled filters, kept under `<root>/..seccomp/` (".." makes it a name no container id can
//! take) so that libseccomp runs once per profile, not once per spawn. The file name is a 64-bit
//! SipHash of the input; the file holds the whole input too, and a hit needs an exact match, so a
//! hash collision can only cost a compile, never load the wrong filter.
//!
//! Layout: MAGIC, u32 input length, input, then the instructions (8 bytes each, native order).
//! Input = the seccomp JSON as serialised from the parsed spec + libseccomp's version + FORMAT.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"tsdbpf01";
/// Bump when the program we generate from the same input changes (the ENOSYS stub, say).
const FORMAT: &str = "testudo-seccomp-1";

pub fn dir(root: &Path) -> PathBuf {
    root.join("..seccomp")
}

/// What a cache entry is keyed on.
pub fn input(json: &[u8]) -> Vec<u8> {
    let v = libseccomp::ScmpVersion::current().map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro)).unwrap_or_default();
    let mut out = Vec::with_capacity(json.len() + 64);
    out.extend_from_slice(json);
    out.extend_from_slice(format!("\n{v}\n{FORMAT}").as_bytes());
    out
}

fn file(dir: &Path, input: &[u8]) -> PathBuf {
    // SipHash-2-4 with fixed zero keys: the same name in every run and every build.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    input.hash(&mut h);
    dir.join(format!("{:016x}.bpf", h.finish()))
}

/// The cached program for `input`, if there is one that matches it exactly.
pub fn get(dir: &Path, input: &[u8]) -> Option<Vec<libc::sock_filter>> {
    let bytes = std::fs::read(file(dir, input)).ok()?;
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let len = u32::from_ne_bytes(*len) as usize;
    if rest.len() < len || &rest[..len] != input {
        return None;
    }
    let prog = &rest[len..];
    (prog.len() % 8 == 0 && !prog.is_empty()).then(|| super::decode(prog))
}

/// Store a program; written to a temp file and renamed, so readers see all of it or nothing.
pub fn put(dir: &Path, input: &[u8], prog: &[libc::sock_filter]) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let path = file(dir, input);
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    let mut buf = Vec::with_capacity(MAGIC.len() + 4 + input.len() + prog.len() * 8);
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&(input.len() as u32).to_ne_bytes());
    buf.extend_from_slice(input);
    for i in prog {
        buf.extend_from_slice(&i.code.to_ne_bytes());
        buf.extend_from_slice(&[i.jt, i.jf]);
        buf.extend_from_slice(&i.k.to_ne_bytes());
    }
    f.write_all(&buf)?;
    std::fs::rename(&tmp, &path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_needs_the_exact_input() {
        let d = std::env::temp_dir().join(format!("testudo-cache-test-{}", std::process::id()));
        let prog = vec![libc::sock_filter { code: 6, jt: 1, jf: 2, k: 0x7fff_0000 }];
        let a = input(b"{\"defaultAction\":\"SCMP_ACT_ALLOW\"}");
        assert!(get(&d, &a).is_none());
        put(&d, &a, &prog).expect("put");
        let got = get(&d, &a).expect("hit");
        assert_eq!((got[0].code, got[0].jt, got[0].jf, got[0].k), (6, 1, 2, 0x7fff_0000));
        // Same file name, different input (a forged collision): a miss.
        let b = input(b"{\"defaultAction\":\"SCMP_ACT_KILL\"}");
        std::fs::copy(file(&d, &a), file(&d, &b)).expect("copy");
        assert!(get(&d, &b).is_none());
        let _ = std::fs::remove_dir_all(&d);
    }
}
