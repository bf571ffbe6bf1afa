//! Real builds under `testudo sandbox --landlock` (issue 22, "done when"): the three kinds a
//! build farm runs, each a small project the test writes or vendors itself, built with no
//! network: C with `./configure && make && make check`, a Rust crate with vendored dependencies
//! (`cargo build --offline`, `cargo test --offline`), a Python package with a C extension
//! (`pip wheel --no-deps --no-build-isolation`). The job's root is the host's `/usr` and `/etc`
//! read-only (as `integration/bench/sandbox.py` makes it). Each test checks what the build says
//! from inside (its test suite's pass lines, the built program's output) and, on the host, that
//! every file in the workspace belongs to the workspace's owner (a uid that is neither the
//! caller's nor the job's) and that the artifacts are there. The same build then runs under
//! `bwrap --unshare-all --new-session --die-with-parent` with the same view, so a failure here is
//! the sandbox's and not the project's; both wall times are printed (no timing asserts).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use common::{require_root, BIN};

/// The workspace's owner on the host: the job's files must come out as this uid and gid.
const OWNER: u32 = 4321;
const PATH: &str = "/opt/rust/bin:/usr/local/bin:/usr/bin:/bin";

struct Build {
    dir: PathBuf,
    name: &'static str,
    /// Extra read-only views: (host source, destination inside).
    ro: Vec<(PathBuf, &'static str)>,
}

impl Build {
    fn new(name: &'static str) -> Build {
        let dir = common::scratch_dir(&format!("build-{name}"));
        // Only the merged-/usr links: /usr and /etc are bound in, every mount point is made on
        // the sandbox's own layer.
        let root = dir.join("rootfs");
        std::fs::create_dir(&root).expect("rootfs");
        for l in ["bin", "lib", "lib64", "sbin"] {
            std::os::unix::fs::symlink(format!("usr/{l}"), root.join(l)).expect("rootfs link");
        }
        for w in ["ws-testudo", "ws-bwrap"] {
            std::fs::create_dir(dir.join(w)).expect("workspace");
        }
        Build { dir, name, ro: Vec::new() }
    }

    /// The project's files, in both workspaces; "+x" after a name makes it executable.
    fn write(&self, files: &[(&str, &str)]) {
        for w in ["ws-testudo", "ws-bwrap"] {
            for (name, body) in files {
                let (name, exec) = name.strip_suffix("+x").map_or((*name, false), |n| (n, true));
                let p = self.dir.join(w).join(name);
                std::fs::create_dir_all(p.parent().expect("parent")).expect("project dir");
                std::fs::write(&p, body).expect("project file");
                if exec {
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
                }
            }
        }
    }

    fn ws(&self) -> PathBuf {
        self.dir.join("ws-testudo")
    }

    /// `testudo sandbox --landlock` then bwrap, each running `sh -c script` in /workspace.
    /// Returns both outputs; prints both wall times.
    fn run(&self, script: &str) -> (Output, Output) {
        // The testudo workspace belongs to someone else than the caller (root) and the job
        // (uid 1000 inside, 101000 on the host): what the job writes must be OWNER's.
        chown_tree(&self.ws());
        let mut t = Command::new(BIN);
        t.arg("--root").arg(self.dir.join("state")).arg("sandbox").arg("--rootfs").arg(self.dir.join("rootfs"));
        t.arg("--workspace").arg(self.ws()).args(["--landlock", "--timeout", "900", "--report"]).arg(self.dir.join("report.json"));
        t.args(["--ro-bind", "/usr:/usr", "--ro-bind", "/etc:/etc"]);
        for (src, dst) in &self.ro {
            t.arg("--ro-bind").arg(format!("{}:{dst}", src.display()));
        }
        for kv in env() {
            t.arg("--setenv").arg(kv);
        }
        t.args(["--", "sh", "-c", script]);
        let mut b = Command::new("bwrap");
        b.args(["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]);
        for l in ["bin", "lib", "lib64", "sbin"] {
            b.args(["--symlink", &format!("usr/{l}"), &format!("/{l}")]);
        }
        for (src, dst) in &self.ro {
            b.arg("--ro-bind").arg(src).arg(dst);
        }
        b.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind"]).arg(self.dir.join("ws-bwrap")).arg("/workspace");
        b.args(["--chdir", "/workspace", "--unshare-all", "--new-session", "--die-with-parent", "--clearenv"]);
        for kv in env() {
            let (k, v) = kv.split_once('=').expect("env");
            b.args(["--setenv", k, v]);
        }
        b.args(["--", "sh", "-c", script]);
        let (testudo, t_secs) = timed(t);
        let (bwrap, b_secs) = timed(b);
        eprintln!("sandbox_builds: {}: testudo sandbox --landlock {t_secs:.2} s, bwrap {b_secs:.2} s", self.name);
        for (who, o) in [("testudo sandbox", &testudo), ("bwrap", &bwrap)] {
            assert_eq!(o.status.code(), Some(0), "{} build under {who} failed:\n{}\n{}", self.name, text(&o.stdout), text(&o.stderr));
        }
        let report: serde_json::Value = serde_json::from_slice(&std::fs::read(self.dir.join("report.json")).expect("report")).expect("report json");
        assert_eq!(report["reason"], "exited", "{report}");
        (testudo, bwrap)
    }

    /// Every file of the testudo workspace is OWNER's on the host, none set-id; `artifacts`
    /// (relative paths) exist. Returns how many files the tree holds.
    fn assert_outputs(&self, artifacts: &[&str]) -> usize {
        for a in artifacts {
            assert!(self.ws().join(a).exists(), "{}: {a} was not built", self.name);
        }
        let mut n = 0;
        let mut todo = vec![self.ws()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).expect("read workspace").flatten() {
                let m = e.path().symlink_metadata().expect("stat");
                assert_eq!((m.uid(), m.gid()), (OWNER, OWNER), "{}: {:?} is not the workspace owner's on the host", self.name, e.path());
                assert_eq!(m.mode() & 0o6000, 0, "{}: {:?} is set-id", self.name, e.path());
                if m.is_dir() {
                    todo.push(e.path());
                }
                n += 1;
            }
        }
        n
    }
}

/// A passing build leaves nothing (the Rust one is 80 MB); a failing one keeps its directories.
impl Drop for Build {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn env() -> Vec<String> {
    ["HOME=/tmp", &format!("PATH={PATH}"), "CARGO_HOME=/tmp/cargo-home", "LANG=C.UTF-8", "PIP_NO_CACHE_DIR=1", "PYTHONDONTWRITEBYTECODE=1"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn chown_tree(p: &Path) {
    std::os::unix::fs::lchown(p, Some(OWNER), Some(OWNER)).expect("chown");
    if p.symlink_metadata().expect("stat").is_dir() {
        for e in std::fs::read_dir(p).expect("read").flatten() {
            chown_tree(&e.path());
        }
    }
}

fn timed(mut c: Command) -> (Output, f64) {
    let t0 = Instant::now();
    let o = c.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{c:?}: {e}"));
    (o, t0.elapsed().as_secs_f64())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Both sandboxes print `lines`: each a whole line of stdout, or its start when it ends in a space.
fn assert_lines(what: &str, outs: (Output, Output), lines: &[&str]) {
    for (who, o) in [("testudo sandbox", &outs.0), ("bwrap", &outs.1)] {
        let out = text(&o.stdout);
        for l in lines {
            assert!(
                out.lines().any(|x| x == *l || (l.ends_with(' ') && x.starts_with(l))),
                "{what} under {who}: no line {l:?} in:\n{out}\n{}",
                text(&o.stderr)
            );
        }
    }
}

fn have_bwrap() -> bool {
    if Command::new("bwrap").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return true;
    }
    common::skip("bwrap is not installed (integration/setup.sh installs bubblewrap)");
    false
}

// ---- C: ./configure && make && make check ----

const CONFIGURE: &str = r##"#!/bin/sh
# configure for tally 1.0, in the autoconf style: probes the compiler and the C library, writes
# config.h and Makefile from Makefile.in.
prefix=/usr/local
for a in "$@"; do
  case $a in
    --prefix=*) prefix=${a#*=} ;;
    *) echo "configure: error: unrecognized option: $a" >&2; exit 1 ;;
  esac
done
CC=${CC:-cc}
CFLAGS=${CFLAGS:--O2 -Wall -Werror}
exec 5>config.log
printf 'checking whether the C compiler works... '
printf 'int main(void) { return 0; }\n' >conftest.c
if $CC $CFLAGS -o conftest conftest.c >&5 2>&1 && ./conftest; then echo yes; else echo no; echo "configure: error: C compiler cannot create executables" >&2; exit 77; fi
: >config.h
for h in stdint.h unistd.h; do
  printf 'checking for %s... ' "$h"
  printf '#include <%s>\nint main(void) { return 0; }\n' "$h" >conftest.c
  if $CC $CFLAGS -o conftest conftest.c >&5 2>&1; then
    echo yes; echo "#define HAVE_$(echo "$h" | tr 'a-z.' 'A-Z_') 1" >>config.h
  else echo no; fi
done
printf 'checking for mkstemp... '
printf '#include <stdlib.h>\nint main(void) { char t[] = "/tmp/xXXXXXX"; return mkstemp(t) < 0; }\n' >conftest.c
if $CC $CFLAGS -o conftest conftest.c >&5 2>&1; then echo yes; echo '#define HAVE_MKSTEMP 1' >>config.h; else echo no; fi
rm -f conftest conftest.c
sed -e "s|@CC@|$CC|g" -e "s|@CFLAGS@|$CFLAGS|g" -e "s|@prefix@|$prefix|g" Makefile.in >Makefile
echo "config.status: creating Makefile"
echo "config.status: creating config.h"
"##;

const MAKEFILE_IN: &str = "CC = @CC@\nCFLAGS = @CFLAGS@\nprefix = @prefix@\n\n\
all: tally\n\n\
libtally.a: tally.o\n\tar rcs $@ tally.o\n\n\
tally: main.o libtally.a\n\t$(CC) $(CFLAGS) -o $@ main.o libtally.a\n\n\
test_tally: test_tally.o libtally.a\n\t$(CC) $(CFLAGS) -o $@ test_tally.o libtally.a\n\n\
%.o: %.c tally.h config.h\n\t$(CC) $(CFLAGS) -c $<\n\n\
check test: test_tally\n\t./test_tally\n\n\
clean:\n\trm -f *.o *.a tally test_tally\n\n\
.PHONY: all check test clean\n";

const TALLY_H: &str = "#include \"config.h\"\nunsigned long long tally_sum(int n, char **words, int *bad);\nunsigned long long tally_gcd(unsigned long long a, unsigned long long b);\n";

const TALLY_C: &str = r#"#include <stdlib.h>
#include "tally.h"
unsigned long long tally_sum(int n, char **words, int *bad) {
    unsigned long long s = 0;
    *bad = 0;
    for (int i = 0; i < n; i++) {
        char *end;
        unsigned long long v = strtoull(words[i], &end, 10);
        if (*words[i] == '\0' || *end != '\0') { (*bad)++; continue; }
        s += v;
    }
    return s;
}
unsigned long long tally_gcd(unsigned long long a, unsigned long long b) {
    while (b) { unsigned long long t = a % b; a = b; b = t; }
    return a;
}
"#;

const MAIN_C: &str = r#"#include <stdio.h>
#include "tally.h"
int main(int argc, char **argv) {
    int bad;
    unsigned long long s = tally_sum(argc - 1, argv + 1, &bad);
    printf("sum %llu bad %d\n", s, bad);
    return bad != 0;
}
"#;

const TEST_TALLY_C: &str = r##"#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "tally.h"
static int pass, fail;
static void check(const char *name, int ok) { printf("%s: %s\n", ok ? "PASS" : "FAIL", name); if (ok) pass++; else fail++; }
int main(void) {
    char *w[] = {"6", "7", "29"}, *b[] = {"1", "x", ""};
    int bad;
    check("sum", tally_sum(3, w, &bad) == 42 && bad == 0);
    check("bad words", tally_sum(3, b, &bad) == 1 && bad == 2);
    check("gcd", tally_gcd(84, 36) == 12);
    /* A scratch file in /tmp, as test suites make them. */
    char path[] = "/tmp/tally-XXXXXX", got[8] = {0};
    int fd = mkstemp(path);
    int ok = fd >= 0 && write(fd, "42", 2) == 2 && lseek(fd, 0, SEEK_SET) == 0 && read(fd, got, 2) == 2 && strcmp(got, "42") == 0;
    if (fd >= 0) { close(fd); unlink(path); }
    check("tmpfile", ok);
    printf("# TOTAL: %d\n# PASS:  %d\n# FAIL:  %d\n", pass + fail, pass, fail);
    return fail != 0;
}
"##;

#[test]
fn a_c_project_configures_builds_and_passes_make_check() {
    if !require_root() || !have_bwrap() {
        return;
    }
    let b = Build::new("c");
    b.write(&[
        ("configure+x", CONFIGURE),
        ("Makefile.in", MAKEFILE_IN),
        ("tally.h", TALLY_H),
        ("tally.c", TALLY_C),
        ("main.c", MAIN_C),
        ("test_tally.c", TEST_TALLY_C),
    ]);
    let out = b.run("./configure --prefix=/usr && make -j2 && make check && ./tally 6 7 29");
    assert_lines(
        "make check",
        out,
        &["checking whether the C compiler works... yes", "checking for mkstemp... yes", "PASS: tmpfile", "# PASS:  4", "# FAIL:  0", "sum 42 bad 0"],
    );
    let n = b.assert_outputs(&["Makefile", "config.h", "config.log", "libtally.a", "tally", "test_tally"]);
    assert!(n >= 12, "c: {n} files in the workspace");
    let tally = b.ws().join("tally");
    assert_ne!(std::fs::metadata(&tally).expect("tally").mode() & 0o111, 0, "tally is not executable");
}

// ---- Rust: cargo build --offline, cargo test --offline, vendored dependencies ----

const CARGO_TOML: &str = r#"[package]
name = "linecount"
version = "0.1.0"
edition = "2021"

[dependencies]
itoa = "1"
memchr = "2"
libc = "0.2"
"#;

const LINECOUNT_RS: &str = r#"use std::io::Read;

/// Lines in `data`, counted with memchr.
pub fn lines(data: &[u8]) -> usize {
    memchr::memchr_iter(b'\n', data).count()
}

/// The count as itoa formats it.
pub fn render(n: usize) -> String {
    itoa::Buffer::new().format(n).to_string()
}

fn main() {
    let mut data = Vec::new();
    std::fs::File::open(std::env::args().nth(1).expect("a file")).expect("open").read_to_end(&mut data).expect("read");
    // libc, with its build script: the page size as the C library tells it.
    // SAFETY: sysconf takes no pointer and has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    println!("lines {} page {}", render(lines(&data)), page);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lines() {
        assert_eq!(lines(b"a\nb\nc\n"), 3);
        assert_eq!(lines(b""), 0);
    }

    #[test]
    fn renders_numbers() {
        assert_eq!(render(1234567), "1234567");
    }

    #[test]
    fn writes_a_temporary_file() {
        let p = std::env::temp_dir().join(format!("linecount-{}", std::process::id()));
        std::fs::write(&p, "x\ny\n").expect("write /tmp");
        assert_eq!(lines(&std::fs::read(&p).expect("read /tmp")), 2);
        std::fs::remove_file(&p).expect("remove");
    }
}
"#;

const CARGO_CONFIG: &str =
    "[source.crates-io]\nreplace-with = \"vendored-sources\"\n\n[source.vendored-sources]\ndirectory = \"vendor\"\n\n[net]\noffline = true\n";

/// The toolchain's sysroot on the host (`rustc --print sysroot`), bound read-only at /opt/rust.
fn sysroot() -> PathBuf {
    let o = Command::new("rustc").args(["--print", "sysroot"]).output().expect("rustc --print sysroot");
    assert!(o.status.success(), "rustc --print sysroot: {}", text(&o.stderr));
    PathBuf::from(text(&o.stdout).trim())
}

#[test]
fn a_rust_crate_with_vendored_dependencies_builds_and_tests_offline() {
    if !require_root() || !have_bwrap() {
        return;
    }
    let mut b = Build::new("rust");
    b.write(&[("Cargo.toml", CARGO_TOML), ("src/main.rs", LINECOUNT_RS), ("input.txt", "one\ntwo\nthree\n")]);
    // Vendored on the host from the local registry cache (the crates this project already
    // uses), once, then copied: the job itself never has a network.
    let vendor = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["vendor", "--offline", "--versioned-dirs", "vendor"])
        .current_dir(b.dir.join("ws-bwrap"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .stdout(Stdio::null())
        .output()
        .expect("cargo vendor");
    assert!(vendor.status.success(), "cargo vendor --offline: {}", text(&vendor.stderr));
    let cp = Command::new("cp").arg("-a").arg(b.dir.join("ws-bwrap/vendor")).arg(b.dir.join("ws-bwrap/Cargo.lock")).arg(b.ws()).status().expect("cp");
    assert!(cp.success(), "copying the vendored crates");
    // Only now: cargo vendor itself would look for the replacement source.
    b.write(&[(".cargo/config.toml", CARGO_CONFIG)]);
    b.ro.push((sysroot(), "/opt/rust"));
    let out = b.run("cargo build --offline && cargo test --offline 2>&1 && ./target/debug/linecount input.txt");
    assert_lines("cargo test", out, &["test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; ", "lines 3 page 4096"]);
    b.assert_outputs(&["target/debug/linecount", "Cargo.lock"]);
    // libc's build script ran in the sandbox.
    let built = std::fs::read_dir(b.ws().join("target/debug/build"))
        .expect("target/debug/build")
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("libc-"));
    assert!(built, "libc's build script did not run");
}

// ---- Python: a C extension built into a wheel, offline ----

const SETUP_PY: &str =
    "from setuptools import Extension, setup\n\nsetup(name=\"fastgcd\", version=\"1.0\", ext_modules=[Extension(\"fastgcd\", [\"fastgcd.c\"])])\n";
const PYPROJECT: &str = "[build-system]\nrequires = [\"setuptools\", \"wheel\"]\nbuild-backend = \"setuptools.build_meta\"\n";

const FASTGCD_C: &str = r#"#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *gcd(PyObject *self, PyObject *args) {
    unsigned long long a, b;
    if (!PyArg_ParseTuple(args, "KK", &a, &b))
        return NULL;
    while (b) { unsigned long long t = a % b; a = b; b = t; }
    return PyLong_FromUnsignedLongLong(a);
}

static PyMethodDef methods[] = {{"gcd", gcd, METH_VARARGS, "Greatest common divisor."}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "fastgcd", NULL, -1, methods};
PyMODINIT_FUNC PyInit_fastgcd(void) { return PyModule_Create(&module); }
"#;

const TEST_PY: &str = r#"import tempfile
import unittest

import fastgcd


class GcdTest(unittest.TestCase):
    def test_gcd(self):
        self.assertEqual(fastgcd.gcd(84, 36), 12)
        self.assertEqual(fastgcd.gcd(7, 0), 7)

    def test_is_the_extension(self):
        self.assertTrue(fastgcd.__file__.endswith(".so"), fastgcd.__file__)

    def test_tmp_is_writable(self):
        with tempfile.TemporaryFile() as f:
            f.write(b"12")
            f.seek(0)
            self.assertEqual(f.read(), b"12")


if __name__ == "__main__":
    unittest.main()
"#;

#[test]
fn a_python_c_extension_builds_into_a_wheel_offline() {
    if !require_root() || !have_bwrap() {
        return;
    }
    let b = Build::new("python");
    b.write(&[("setup.py", SETUP_PY), ("pyproject.toml", PYPROJECT), ("fastgcd.c", FASTGCD_C), ("test_fastgcd.py", TEST_PY)]);
    // The wheel is unpacked into /tmp (what installing it would do) and its tests run there.
    let out = b.run(
        "python3 -m pip wheel --no-deps --no-build-isolation --no-index -w dist . && \
         python3 -m zipfile -e dist/fastgcd-1.0-*.whl /tmp/site && \
         PYTHONPATH=/tmp/site python3 test_fastgcd.py -v 2>&1 && \
         PYTHONPATH=/tmp/site python3 -c 'import fastgcd; print(\"gcd\", fastgcd.gcd(2**40, 6**20))'",
    );
    assert_lines("pip wheel", out, &["Ran 3 tests in ", "OK", &format!("gcd {}", 1u64 << 20)]);
    let wheels: Vec<_> = std::fs::read_dir(b.ws().join("dist")).expect("dist").flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(wheels.len() == 1 && wheels[0].starts_with("fastgcd-1.0-cp3") && wheels[0].ends_with("linux_x86_64.whl"), "dist: {wheels:?}");
    b.assert_outputs(&["build", &format!("dist/{}", wheels[0])]);
}
