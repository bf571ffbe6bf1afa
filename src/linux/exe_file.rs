//! `mm->exe_file`: the file `/proc/self/exe` names, moved to a read-only mount of the same binary
//! without an exec (CVE-2019-5736, see `linux::exe`).
//!
//! The kernel lets a process name another executable as its exe file with
//! `prctl(PR_SET_MM, PR_SET_MM_MAP)` (CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE in its user
//! namespace: what CRIU uses), but refuses (EBUSY) while any mapping still comes from the old exe
//! file's path. So first every mapping of the binary is replaced by the same bytes from the
//! read-only mount: the segments the loader never wrote (headers, rodata, text) are mapped again
//! from the read-only file at the same address and offset — the same inode, so the same page-cache
//! pages, and the instructions executing this code stay identical under it — and the ones that
//! were writable at load (relocated RELRO, .data, .bss) are copied into anonymous memory moved
//! over the original with `mremap`. Nothing in between writes to those segments: no allocation,
//! no logging, a single thread.
//!
//! Measured on the 2-core dev host (release, 4 MiB static binary): 0.2–0.8 ms of a `run`'s wall
//! time against the same binary on a read-only mount (no swap needed; the host is noisy at this
//! scale), about 0.16 ms of it CPU in mmap/mremap; the re-exec it replaces cost ~1.5 ms. It needs
//! CONFIG_CHECKPOINT_RESTORE; on any failure the caller falls back to the re-exec.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;

use crate::error::{Context, Error, Result};

/// `struct prctl_mm_map` from <linux/prctl.h> (not in the libc crate).
#[repr(C)]
#[derive(Default)]
struct PrctlMmMap {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    auxv: u64,
    auxv_size: u32,
    exe_fd: u32,
}

/// One mapping of the binary, from /proc/self/maps.
struct Vma {
    start: usize,
    end: usize,
    prot: libc::c_int,
    offset: libc::off_t,
}

/// Make `ro` (a read-only fd of this very binary, opened for reading) this process's exe file.
pub fn replace(ro: &OwnedFd) -> Result<()> {
    let st = nix::sys::stat::fstat(ro).context("stat the read-only runtime binary")?;
    let maps = std::fs::read_to_string("/proc/self/maps").context("read /proc/self/maps")?;
    let vmas = vmas_of(&maps, st.st_dev, st.st_ino);
    if vmas.is_empty() {
        return Err(Error::new("runtime binary: no mapping of it in /proc/self/maps"));
    }
    let written = written_at_load()?;
    let page = page_size();
    // Everything that allocates is done: from here to the prctl, only syscalls.
    for v in &vmas {
        let copy = written.iter().any(|&(s, e)| v.start < (e + page - 1) & !(page - 1) && s & !(page - 1) < v.end);
        if copy {
            copy_over(v)?;
        } else {
            remap_from(ro, v)?;
        }
    }
    let mut map = current_layout()?;
    map.exe_fd = ro.as_raw_fd() as u32;
    // SAFETY: `map` is a valid prctl_mm_map that outlives the call; its size is passed with it.
    let r = unsafe {
        libc::prctl(libc::PR_SET_MM, libc::PR_SET_MM_MAP, &map as *const PrctlMmMap as libc::c_ulong, std::mem::size_of::<PrctlMmMap>() as libc::c_ulong, 0)
    };
    Errno::result(r).map(drop).map_err(|e| Error::sys("runtime binary: prctl(PR_SET_MM_MAP) to its read-only mount", e))
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// The mappings of the file (`dev`, `ino`) in /proc/self/maps, in address order.
fn vmas_of(maps: &str, dev: libc::dev_t, ino: libc::ino_t) -> Vec<Vma> {
    let want_dev = format!("{:02x}:{:02x}", libc::major(dev), libc::minor(dev));
    maps.lines()
        .filter_map(|l| {
            let mut f = l.split_ascii_whitespace();
            let (range, perms, offset, dev, inode) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
            if dev != want_dev || inode.parse::<u64>().ok()? != ino {
                return None;
            }
            let (s, e) = range.split_once('-')?;
            let p = perms.as_bytes();
            let prot = if p.first() == Some(&b'r') { libc::PROT_READ } else { 0 }
                | if p.get(1) == Some(&b'w') { libc::PROT_WRITE } else { 0 }
                | if p.get(2) == Some(&b'x') { libc::PROT_EXEC } else { 0 };
            Some(Vma {
                start: usize::from_str_radix(s, 16).ok()?,
                end: usize::from_str_radix(e, 16).ok()?,
                prot,
                offset: libc::off_t::from_str_radix(offset, 16).ok()?,
            })
        })
        .collect()
}

/// The address ranges of the writable PT_LOAD segments (RELRO lies inside one): what the loader
/// and the program may have written, read from our own program headers (AT_PHDR).
fn written_at_load() -> Result<Vec<(usize, usize)>> {
    // SAFETY: getauxval has no preconditions.
    let (phdr, phnum) = unsafe { (libc::getauxval(libc::AT_PHDR) as usize, libc::getauxval(libc::AT_PHNUM) as usize) };
    if phdr == 0 || phnum == 0 {
        return Err(Error::new("runtime binary: no program headers in the auxiliary vector"));
    }
    // SAFETY: the kernel's AT_PHDR/AT_PHNUM describe our own program headers, mapped read-only
    // for the life of the process.
    let headers = unsafe { std::slice::from_raw_parts(phdr as *const libc::Elf64_Phdr, phnum) };
    let bias = headers
        .iter()
        .find(|h| h.p_type == libc::PT_PHDR)
        .map(|h| phdr - h.p_vaddr as usize)
        .ok_or_else(|| Error::new("runtime binary: no PT_PHDR program header"))?;
    Ok(headers
        .iter()
        .filter(|h| h.p_type == libc::PT_LOAD && h.p_flags & libc::PF_W != 0)
        .map(|h| (bias + h.p_vaddr as usize, bias + (h.p_vaddr + h.p_memsz) as usize))
        .collect())
}

/// Map the same bytes again from the read-only file, over the old mapping.
fn remap_from(ro: &OwnedFd, v: &Vma) -> Result<()> {
    // SAFETY: the range is one mapping of this binary that the loader never wrote; the new
    // mapping has the same file, offset and protection, so every byte at these addresses
    // (including the instructions running now) stays the same.
    let p = unsafe { libc::mmap(v.start as *mut libc::c_void, v.end - v.start, v.prot, libc::MAP_PRIVATE | libc::MAP_FIXED, ro.as_raw_fd(), v.offset) };
    if p == libc::MAP_FAILED {
        return Err(Error::sys("runtime binary: map its text again from the read-only mount", Errno::last()));
    }
    Ok(())
}

/// Replace a mapping that may hold written bytes by an anonymous copy of it.
fn copy_over(v: &Vma) -> Result<()> {
    let len = v.end - v.start;
    // SAFETY: a fresh anonymous mapping at an address the kernel picks.
    let tmp = unsafe {
        libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE, -1, 0)
    };
    if tmp == libc::MAP_FAILED {
        return Err(Error::sys("runtime binary: map memory for its data", Errno::last()));
    }
    // SAFETY: `v` is readable (every mapping of the binary is) and `tmp` is a new writable
    // mapping of the same length; they do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(v.start as *const u8, tmp as *mut u8, len) };
    // SAFETY: `tmp` is our own mapping of `len` bytes. mremap moves it over the original range
    // (unmapping that) with the copied contents; nothing wrote to the original since the copy.
    let moved = unsafe {
        if v.prot & libc::PROT_WRITE == 0 && libc::mprotect(tmp, len, v.prot) != 0 {
            libc::MAP_FAILED
        } else {
            libc::mremap(tmp, len, len, libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED, v.start as *mut libc::c_void)
        }
    };
    if moved == libc::MAP_FAILED {
        let e = Errno::last();
        // SAFETY: `tmp` is still ours when the move failed.
        unsafe { libc::munmap(tmp, len) };
        return Err(Error::sys("runtime binary: move the copy of its data in place", e));
    }
    Ok(())
}

/// The fields PR_SET_MM_MAP sets, as they are now (so nothing but the exe file changes), from
/// /proc/self/stat (start_code … env_end, man 5 proc) and brk(0).
fn current_layout() -> Result<PrctlMmMap> {
    let mut buf = [0u8; 1024];
    let n = nix::fcntl::open("/proc/self/stat", nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .and_then(|fd| nix::unistd::read(&fd, &mut buf))
        .context("read /proc/self/stat")?;
    let text = std::str::from_utf8(&buf[..n]).map_err(|_| Error::new("/proc/self/stat: not text"))?;
    let fields = crate::linux::procfs::stat_fields(text).ok_or_else(|| Error::new("/proc/self/stat: no command name"))?;
    let field =
        |n: usize| -> Result<u64> { fields.get(n - 3).and_then(|f| f.parse().ok()).ok_or_else(|| Error::new(format!("/proc/self/stat: no field {n}"))) };
    // SAFETY: brk(0) changes nothing and returns the current break.
    let brk = unsafe { libc::syscall(libc::SYS_brk, 0) } as u64;
    Ok(PrctlMmMap {
        start_code: field(26)?,
        end_code: field(27)?,
        start_stack: field(28)?,
        start_data: field(45)?,
        end_data: field(46)?,
        start_brk: field(47)?,
        brk,
        arg_start: field(48)?,
        arg_end: field(49)?,
        env_start: field(50)?,
        env_end: field(51)?,
        ..Default::default()
    })
}
