//! Thin, commented FFI for what std lacks: extended attributes, device nodes and FIFOs, timestamps of
//! symlinks, writeback hints, and the process settings of `main` (SIGPIPE, the malloc threshold). Each
//! function is a safe wrapper; each `unsafe` block says why it is sound.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Extended attributes of `p` (not following a symlink), sorted by name.
pub fn xattrs(p: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let c = cpath(p)?;
    let mut names = vec![0u8; 1024];
    let n = loop {
        // SAFETY: the buffer pointer and length describe `names`, which outlives the call.
        let r = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
        if r >= 0 {
            break r as usize;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) if names.len() < 1 << 20 => names.resize(names.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(e),
        }
    };
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let cn = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        let mut val = vec![0u8; 256];
        let len = loop {
            // SAFETY: as above; `val` outlives the call.
            let r = unsafe {
                libc::lgetxattr(c.as_ptr(), cn.as_ptr(), val.as_mut_ptr().cast(), val.len())
            };
            if r >= 0 {
                break r as usize;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ERANGE) if val.len() < 1 << 24 => val.resize(val.len() * 4, 0),
                Some(libc::ENODATA) => break usize::MAX,
                _ => return Err(e),
            }
        };
        if len != usize::MAX {
            val.truncate(len);
            out.push((name.to_vec(), val));
        }
    }
    out.sort();
    Ok(out)
}

/// Sets one extended attribute on `p` (not following a symlink).
pub fn set_xattr(p: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    let c = cpath(p)?;
    let cn = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: pointers and lengths describe live buffers.
    let r = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            cn.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates a FIFO, socket or device node. `kind_bits` is one of `libc::S_IFIFO` etc.
pub fn mknod(p: &Path, kind_bits: u32, perm: u32, rdev: u64) -> io::Result<()> {
    let c = cpath(p)?;
    // SAFETY: `c` is a valid NUL-terminated path.
    let r = unsafe {
        libc::mknod(
            c.as_ptr(),
            (kind_bits | perm) as libc::mode_t,
            rdev as libc::dev_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets atime and mtime of `p` to `sec`/`nsec` without following a symlink.
pub fn set_mtime(p: &Path, sec: i64, nsec: u32) -> io::Result<()> {
    let c = cpath(p)?;
    let ts = libc::timespec {
        tv_sec: sec as libc::time_t,
        tv_nsec: nsec as libc::c_long,
    };
    let times = [ts, ts];
    // SAFETY: `times` is an array of two timespecs as utimensat requires.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// True when running as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// True when stderr is a terminal.
pub fn stderr_is_tty() -> bool {
    // SAFETY: isatty has no preconditions.
    unsafe { libc::isatty(2) == 1 }
}

/// Asks the kernel to start writing `len` bytes of `f` from `offset` back to disk, without waiting
/// (sync_file_range with SYNC_FILE_RANGE_WRITE). Only a hint: the later fsync is what makes the data
/// durable, so a failure here is ignored.
pub fn start_writeback(f: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on an open descriptor; no memory is passed.
    unsafe {
        libc::sync_file_range(
            f.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// Restores the default SIGPIPE disposition, so that a closed pipe (`clc list … | head`) ends the
/// process quietly, as other command-line tools do.
pub fn default_sigpipe() {
    // SAFETY: setting a signal disposition to its default has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Fixes glibc's mmap threshold at `bytes`, so that buffers at least that large are mapped and given
/// back when freed (see `main.rs` for why readers of archives want this). Call before any thread starts.
pub fn fix_mmap_threshold(bytes: i32) {
    // SAFETY: mallopt only sets an allocator parameter.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, bytes);
    }
}

/// Takes an exclusive `flock` on `f` without waiting: `Ok(false)` when another process holds it.
pub fn try_lock_exclusive(f: &std::fs::File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: a plain syscall on an open descriptor.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(false),
        _ => Err(e),
    }
}

/// The signal (SIGINT or SIGTERM) that asked the process to stop, once [`catch_interrupts`] is on.
static INTERRUPT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_interrupt(sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPT.store(sig, std::sync::atomic::Ordering::SeqCst);
}

/// From now on SIGINT and SIGTERM do not end the process but are recorded for [`interrupted`], so that
/// a long operation (pack) can stop at the next safe point and remove what it wrote.
pub fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installs a handler that only stores to an atomic; `sa` is fully initialised (zeroed,
        // then the handler and an empty mask set).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_interrupt as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The signal that interrupted the process (SIGINT = 2, SIGTERM = 15), if one has arrived since
/// [`catch_interrupts`].
pub fn interrupted() -> Option<i32> {
    match INTERRUPT.load(std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}
