//! Thin, commented FFI for what std lacks: extended attributes, device nodes and FIFOs, timestamps of
//! symlinks, writeback hints, a stat that asks no filesystem (mount points), and the process settings of
//! `main` (SIGPIPE, the malloc threshold). Each function is a safe wrapper; each `unsafe` block says why
//! it is sound.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// The process's umask, from `/proc/self/status` (Linux 4.7+); elsewhere set and put back at once,
/// which is only safe before other threads start (extract reads it before its writers start).
pub fn umask() -> u32 {
    let from_proc = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let v = s.lines().find_map(|l| l.strip_prefix("Umask:"))?;
            u32::from_str_radix(v.trim(), 8).ok()
        });
    from_proc.unwrap_or_else(|| {
        // SAFETY: umask only swaps the process's mask; the old one is put back at once.
        let old = unsafe { libc::umask(0o022) };
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        old
    })
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

/// What `statx` says of `p` (following symlinks) without asking its filesystem: no attributes are
/// requested and `AT_STATX_DONT_SYNC` is passed, so a FUSE mount point answers from what the kernel
/// holds, with no request to its server (one not serving yet, a hung one, or this very process).
pub struct MountStat {
    /// The filesystem's device number (major, minor), as /proc/self/mountinfo's `MAJ:MIN`.
    pub dev: (u32, u32),
    /// Whether `p` is the root of a mount; `None` where the kernel does not say (before Linux 5.8).
    pub mount_root: Option<bool>,
}

impl MountStat {
    /// The device number as mountinfo and `/sys/class/bdi` name it: `MAJ:MIN`.
    pub fn maj_min(&self) -> String {
        format!("{}:{}", self.dev.0, self.dev.1)
    }
}

/// See [`MountStat`].
pub fn mount_stat(p: &Path) -> io::Result<MountStat> {
    let c = cpath(p)?;
    // SAFETY: statx is plain old data; the all-zero value is valid.
    let mut sx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `sx` a statx buffer that outlives the call.
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_STATX_DONT_SYNC,
            0,
            &mut sx,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    let flag = libc::STATX_ATTR_MOUNT_ROOT as u64;
    Ok(MountStat {
        dev: (sx.stx_dev_major, sx.stx_dev_minor),
        mount_root: (sx.stx_attributes_mask & flag != 0).then_some(sx.stx_attributes & flag != 0),
    })
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

/// Blocks SIGPIPE in the calling thread, so that a write to a socket whose peer is gone fails with
/// `EPIPE` there instead of ending the process (which [`default_sigpipe`] makes SIGPIPE do): for the
/// threads that do network I/O, e.g. the S3 client's (a server dying under an upload is an error to
/// report, not a reason to die silently).
pub fn block_sigpipe_in_thread() {
    // SAFETY: the set is initialised by sigemptyset before use; pthread_sigmask only changes this
    // thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
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

/// Temporary files to remove when SIGINT, SIGTERM or SIGHUP ends the process while they exist (the
/// CL_Compressor SQLite image was left behind by a SIGTERM during open). While a [`RemoveOnSignal`]
/// lives, its path is in one of a few slots that a signal handler reads: it unlinks every path there,
/// then puts the default action back and raises the signal again, so the process still ends as it
/// would have. Only signals whose action is the default are caught (an ignored SIGHUP under `nohup`
/// stays ignored), and a thread that blocks them (the mount's) is not disturbed.
pub struct RemoveOnSignal {
    slot: Option<usize>,
}

static TEMP_SLOTS: [std::sync::atomic::AtomicPtr<libc::c_char>; 8] =
    [const { std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()) }; 8];

extern "C" fn remove_temps_and_reraise(sig: libc::c_int) {
    use std::sync::atomic::Ordering;
    for s in &TEMP_SLOTS {
        let p = s.swap(std::ptr::null_mut(), Ordering::SeqCst);
        if !p.is_null() {
            // SAFETY: `p` is a NUL-terminated path leaked by `RemoveOnSignal::new` and taken out of its
            // slot by this swap, so nothing frees it meanwhile; unlink is async-signal-safe.
            unsafe { libc::unlink(p) };
        }
    }
    // SAFETY: signal and raise are async-signal-safe; the default action then ends the process.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

fn install_temp_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: sigaction is plain data, for which all zeros is a valid value.
            let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: with a null new action, sigaction only reads the current one into `old`.
            if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0
                || old.sa_sigaction != libc::SIG_DFL
            {
                continue;
            }
            // SAFETY: installs a handler that only calls async-signal-safe functions.
            unsafe {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = remove_temps_and_reraise as *const () as usize;
                libc::sigemptyset(&mut act.sa_mask);
                libc::sigaction(sig, &act, std::ptr::null_mut());
            }
        }
    });
}

impl RemoveOnSignal {
    /// Removes `path` if a signal ends the process before this guard is dropped (when a slot is free).
    pub fn new(path: &std::path::Path) -> RemoveOnSignal {
        use std::sync::atomic::Ordering;
        install_temp_handler();
        let Ok(c) = cpath(path) else {
            return RemoveOnSignal { slot: None };
        };
        let raw = c.into_raw();
        for (i, s) in TEMP_SLOTS.iter().enumerate() {
            if s.compare_exchange(
                std::ptr::null_mut(),
                raw,
                Ordering::SeqCst,
                Ordering::SeqCst,
            )
            .is_ok()
            {
                return RemoveOnSignal { slot: Some(i) };
            }
        }
        // SAFETY: `raw` came from `into_raw` above and was stored nowhere.
        drop(unsafe { CString::from_raw(raw) });
        RemoveOnSignal { slot: None }
    }
}

impl Drop for RemoveOnSignal {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        let Some(i) = self.slot else { return };
        let p = TEMP_SLOTS[i].swap(std::ptr::null_mut(), Ordering::SeqCst);
        if !p.is_null() {
            // SAFETY: the pointer was made by `CString::into_raw` in `new` and, taken out of its slot by
            // this swap, is owned here alone.
            drop(unsafe { CString::from_raw(p) });
        }
    }
}

/// Ends the process with `code` once stdout and stderr are flushed, without the C libraries' exit
/// handlers: OpenCL drivers tear their contexts down there (PoCL's was seen to abort, NVIDIA's takes
/// time), and nothing of clc's needs them (every file is written and closed by then).
pub fn exit_now(code: i32) -> ! {
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: `_exit` takes no pointers and never returns; the kernel closes the files and maps.
    unsafe { libc::_exit(code) }
}

/// Minor page faults of the calling thread so far (`getrusage(RUSAGE_THREAD)`, Linux; 0 where it fails),
/// and of the whole process (`RUSAGE_SELF`) with `process`.
pub fn minor_faults(process: bool) -> u64 {
    // SAFETY: `getrusage` writes one `rusage`, which is plain data and zeroed first.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let who = if process {
        libc::RUSAGE_SELF
    } else {
        libc::RUSAGE_THREAD
    };
    // SAFETY: `ru` is a valid, writable `rusage`.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return 0;
    }
    ru.ru_minflt.max(0) as u64
}
