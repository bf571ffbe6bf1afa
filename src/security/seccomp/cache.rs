//! Compiled filters, kept under `<root>/..seccomp/` (".." makes it a name no container id can
//! take) so that libseccomp runs once per profile, not once per spawn. The file name is a 64-bit
//! SipHash of the input; the file holds the whole input too, and a hit needs an exact match, so a
//! hash collision can only cost a compile, never load the wrong filter.
//!
//! Bounded: a put keeps the KEEP most recently used entries (a hit touches its file), so a
//! caller that sends a new profile for every container does not fill the disk.
//!
//! Layout: MAGIC, u32 input length, input, then the instructions (8 bytes each, native order).
//! Input = the seccomp JSON as serialised from the parsed spec + libseccomp's version + FORMAT.

use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const MAGIC: &[u8; 8] = b"tsdbpf01";
/// Bump when the program we generate from the same input changes (the ENOSYS stub, say).
const FORMAT: &str = "testudo-seccomp-2";
/// Entries kept per state root: more distinct profiles than one host runs at once.
const KEEP: usize = 64;

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

/// The cached program for `input`, if there is one that matches it exactly. A hit marks the
/// entry as just used.
pub fn get(dir: &Path, input: &[u8]) -> Option<Vec<libc::sock_filter>> {
    let mut f = std::fs::File::open(file(dir, input)).ok()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let len = u32::from_ne_bytes(*len) as usize;
    if rest.len() < len || &rest[..len] != input {
        return None;
    }
    let prog = &rest[len..];
    if prog.len() % 8 != 0 || prog.is_empty() {
        return None;
    }
    // Failing to touch only makes the entry look older to `prune`.
    let _ = f.set_modified(SystemTime::now());
    Some(super::decode(prog))
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
    })?;
    prune(dir, KEEP);
    Ok(())
}

/// Remove all but the `keep` entries used last (by mtime, which a hit renews). Best effort: an
/// entry a concurrent create removes or reads meanwhile costs at most a compile.
fn prune(dir: &Path, keep: usize) {
    let Ok(list) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<(SystemTime, PathBuf)> = list
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "bpf"))
        .filter_map(|p| Some((std::fs::symlink_metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    if entries.len() <= keep {
        return;
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (_, p) in &entries[keep..] {
        let _ = std::fs::remove_file(p);
    }
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

    #[test]
    fn the_cache_keeps_the_entries_used_last() {
        let d = std::env::temp_dir().join(format!("testudo-cache-lru-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let prog = vec![libc::sock_filter { code: 6, jt: 0, jf: 0, k: 0 }];
        let inputs: Vec<Vec<u8>> = (0..4).map(|i| input(format!("{{\"profile\":{i}}}").as_bytes())).collect();
        // Put 0..4 an hour apart (oldest first), then use entry 0: it becomes the newest.
        let hour_ago = |i: u64| SystemTime::now() - std::time::Duration::from_secs(3600 * (10 - i));
        for (i, inp) in inputs.iter().enumerate() {
            put(&d, inp, &prog).expect("put");
            std::fs::File::open(file(&d, inp)).expect("open").set_modified(hour_ago(i as u64)).expect("mtime");
        }
        assert!(get(&d, &inputs[0]).is_some());
        prune(&d, 2);
        let left: Vec<bool> = inputs.iter().map(|i| file(&d, i).exists()).collect();
        assert_eq!(left, [true, false, false, true], "kept: the one just used and the newest put");
        // put prunes to KEEP on its own.
        for i in 0..KEEP + 5 {
            put(&d, &input(format!("{{\"n\":{i}}}").as_bytes()), &prog).expect("put");
        }
        assert_eq!(std::fs::read_dir(&d).expect("dir").count(), KEEP);
        let _ = std::fs::remove_dir_all(&d);
    }
}
