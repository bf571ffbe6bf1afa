//! The job's environment: the hardened spec's, then `--env-file` lines, then `--setenv` (the last
//! word on a key wins). An env file is the caller's: read by testudo before anything of the job
//! exists, without following a symlink (a job could have planted one in its workspace, pointing
//! at a host file whose lines would become its variables), and only a regular file (a FIFO would
//! block the sandbox, a device would be read for ever).

use std::io::Read;
use std::path::Path;

use nix::fcntl::OFlag;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::linux::nofollow;

/// Larger than what execve takes for the whole environment (ARG_MAX is a quarter of the stack
/// limit, 2 MiB by default): a file past it cannot be the job's environment.
const MOST: u64 = 4 << 20;

/// Apply `files` in order, then `setenv`, to `env` (the spec's `process.env`).
pub fn apply(env: &mut Vec<Value>, files: &[std::path::PathBuf], setenv: &[String]) -> Result<()> {
    for f in files {
        for (n, line) in read(f)?.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let kv = line.trim_end_matches('\r');
            set(env, kv).map_err(|why| Error::new(format!("--env-file {f:?}: line {}: {why}", n + 1)))?;
        }
    }
    for kv in setenv {
        set(env, kv).map_err(|why| Error::new(format!("--setenv {kv:?}: {why}")))?;
    }
    Ok(())
}

/// `KEY=VALUE` replaces KEY's earlier value. The value is taken as it is (no quotes removed, as
/// Docker's --env-file does); the key may not be empty nor hold '=', whitespace or NUL.
fn set(env: &mut Vec<Value>, kv: &str) -> std::result::Result<(), &'static str> {
    let key = match kv.split_once('=') {
        Some((k, _)) if !k.is_empty() && !k.bytes().any(|b| b.is_ascii_whitespace() || b == 0) => k,
        _ => return Err("expected KEY=VALUE"),
    };
    if kv.contains('\0') {
        return Err("a NUL byte cannot be in the environment");
    }
    env.retain(|e| e.as_str().and_then(|e| e.split_once('=')).is_none_or(|(k, _)| k != key));
    env.push(json!(kv));
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    let what = "--env-file";
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
    let fd = nofollow::open(what, path, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)?;
    let st = nix::sys::stat::fstat(&fd).map_err(|e| Error::sys(format!("{what} {path:?}"), e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::new(format!("{what} {path:?}: not a regular file (a FIFO, device or directory is refused)")));
    }
    let mut text = String::new();
    std::fs::File::from(fd).take(MOST + 1).read_to_string(&mut text).map_err(|e| Error::new(format!("{what} {path:?}: {e}")))?;
    if text.len() as u64 > MOST {
        return Err(Error::new(format!("{what} {path:?}: larger than {} MiB, more than a process's environment can hold", MOST >> 20)));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_words_win_and_bad_lines_name_their_number() {
        let dir = std::env::temp_dir().join(format!("testudo-envfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("env");
        std::fs::write(&f, "# comment\n\nA=1\n  B=two words\r\nPATH=/x\nC=\"q\"\nA=3\n").expect("write");
        let mut env = vec![json!("PATH=/usr/bin"), json!("TERM=xterm")];
        apply(&mut env, std::slice::from_ref(&f), &["A=4".to_string()]).expect("apply");
        assert_eq!(env, [json!("TERM=xterm"), json!("B=two words"), json!("PATH=/x"), json!("C=\"q\""), json!("A=4")]);
        std::fs::write(&f, "A=1\n# c\nNOEQUALS\n").expect("write");
        let e = apply(&mut env, std::slice::from_ref(&f), &[]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("line 3") && e.contains("env\""), "{e}");
        for bad in ["=v", "K K=v", "K"] {
            assert!(apply(&mut env, &[], &[bad.to_string()]).is_err(), "{bad}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
