//! Mounting and serving: FUSE options, the foreground or background session, signals, and unmounting.
//!
//! Background mode mounts (mount(2) or fusermount3, and the FUSE_INIT handshake) and then forks, so
//! that every error up to the mount reaches the terminal and the command returns right after the
//! fork: the child serves the mount it inherits (its /dev/fuse descriptor), the parent exits without
//! unmounting. The child starts a new session, changes to `/`, and sends its
//! stdout/stderr to `--log FILE` or `/dev/null`. Nothing before the fork starts a thread; the decode
//! threads (the rayon pool) start on the first read of a file, not before the first request.
//!
//! SIGINT, SIGTERM and SIGHUP are blocked in every thread and taken by one thread with `sigwait`: the
//! first unmounts (lazily when the mount is busy, so no mount is left behind), which ends the session;
//! a second one exits at once. When the session ends the process exits from `Filesystem::destroy`
//! (see there why), in the foreground too.
//!
//! FFI (fork, signals, umount2) is confined to this file; each `unsafe` block is one libc call
//! on values it owns.

use super::ClcFs;
use crate::diag::{log, trace};
use crate::error::{Error, IoContext, Result};
use fuser::{MountOption, Session, SessionACL};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// FUSE options for the mount, from `-o a,b,c` lists.
#[derive(Clone, Debug)]
pub struct MountOptions {
    pub options: Vec<MountOption>,
    pub acl: SessionACL,
    /// `-o read_ahead_kb=N`: the kernel's read-ahead for this mount; `None`: [`READ_AHEAD_KB`] where
    /// allowed (root), silently kept otherwise.
    pub read_ahead_kb: Option<u32>,
}

/// The kernel's read-ahead set on the mount by default. FUSE starts at 128 KiB, so a streaming reader
/// sends 128 KiB requests; 1 MiB requests (the kernel's usual limit on FUSE request size, 256 pages)
/// need a larger window. Only root may set it (`/sys/class/bdi/MAJ:MIN/read_ahead_kb`).
pub const READ_AHEAD_KB: u32 = 2048;

impl MountOptions {
    /// Parses `-o` values (each comma-separated). Known names become fuser options, `allow_other` and
    /// `allow_root` the session ACL, anything else passes through to the kernel as written. `ro` is
    /// always set (`rw` is refused); `fsname` defaults to `fsname` and `subtype` to `clc`;
    /// `allow_other` brings `default_permissions`.
    pub fn parse(lists: &[String], fsname: &str) -> Result<MountOptions> {
        let mut options = Vec::new();
        let mut acl = SessionACL::Owner;
        let mut read_ahead_kb = None;
        let (mut named, mut typed) = (false, false);
        for o in lists
            .iter()
            .flat_map(|l| l.split(','))
            .filter(|o| !o.is_empty())
        {
            let opt = match o {
                "allow_other" => {
                    acl = SessionACL::All;
                    continue;
                }
                "allow_root" => {
                    acl = SessionACL::RootAndOwner;
                    continue;
                }
                x if x.starts_with("read_ahead_kb=") => {
                    let v = &x["read_ahead_kb=".len()..];
                    let kb = v.parse::<u32>().map_err(|_| {
                        Error::Usage(format!("-o {x}: read_ahead_kb takes a number of KiB"))
                    })?;
                    read_ahead_kb = Some(kb);
                    continue;
                }
                "rw" => return Err(Error::Usage("-o rw: the archive is read-only".into())),
                "ro" => MountOption::RO,
                "auto_unmount" => MountOption::AutoUnmount,
                "default_permissions" => MountOption::DefaultPermissions,
                "dev" => MountOption::Dev,
                "nodev" => MountOption::NoDev,
                "suid" => MountOption::Suid,
                "nosuid" => MountOption::NoSuid,
                "exec" => MountOption::Exec,
                "noexec" => MountOption::NoExec,
                "atime" => MountOption::Atime,
                "noatime" => MountOption::NoAtime,
                "sync" => MountOption::Sync,
                "async" => MountOption::Async,
                "dirsync" => MountOption::DirSync,
                x if x.starts_with("fsname=") => {
                    named = true;
                    MountOption::FSName(x["fsname=".len()..].into())
                }
                x => {
                    // fuser hands `Subtype` only to fusermount; as a kernel option it works both ways.
                    typed |= x.starts_with("subtype=");
                    MountOption::CUSTOM(x.into())
                }
            };
            if !options.contains(&opt) {
                options.push(opt);
            }
        }
        if !options.contains(&MountOption::RO) {
            options.push(MountOption::RO);
        }
        if !named {
            options.push(MountOption::FSName(fsname.into()));
        }
        if !typed {
            options.push(MountOption::CUSTOM("subtype=clc".into()));
        }
        // A mount other users can enter must enforce the archived mode, uid and gid (issue 14: with
        // allow_other, uid 65534 read a root-owned 0600 file in a 0700 directory): the kernel checks
        // them against the attributes clc reports.
        if acl == SessionACL::All && !options.contains(&MountOption::DefaultPermissions) {
            options.push(MountOption::DefaultPermissions);
        }
        if options.contains(&MountOption::AutoUnmount) && acl == SessionACL::Owner {
            acl = SessionACL::RootAndOwner; // fusermount needs allow_root or allow_other for it
        }
        Ok(MountOptions {
            options,
            acl,
            read_ahead_kb,
        })
    }

    fn fuser_config(&self, threads: usize) -> fuser::Config {
        let mut c = fuser::Config::default();
        c.mount_options = self.options.clone();
        c.acl = self.acl;
        c.n_threads = Some(threads);
        c.clone_fd = threads > 1;
        c
    }
}

/// FUSE request threads for `decode` decode threads: half as many, 1 to 16, unless
/// `CLC_MOUNT_FUSE_THREADS` (1-64) says otherwise. Lent 16-core machine, docs/GPU.md runs 84-85 (threads:
/// read-all of the Rust docs s, 8 / 16 parallel readers of one file GB/s): 16 (twice the decode threads, as
/// before): 0.50, 12.5 / 15.3; 8: 0.46, 14.0 / 15.3; 4: 0.43, 11.8 / 9.7; 1: 0.41, 3.4 / 2.6. Eight keep
/// the parallel readers and save a tenth of the read-all. On two cores one thread made every walk but one
/// faster than squashfuse's (the 1M `find` 0.41 s against 4 threads' 0.62, BENCHMARKS.md 5.9) and the read-all
/// moved within its spread (run 83); more threads than two cores can run only wake each other.
fn fuse_threads(decode: usize) -> usize {
    let default = (decode / 2).clamp(1, 16) as u32;
    crate::diag::knob("CLC_MOUNT_FUSE_THREADS", 1..=64, default) as usize
}

/// How to serve.
#[derive(Clone, Debug)]
pub struct Serve {
    /// Stay attached (`-f`) instead of serving from a background process.
    pub foreground: bool,
    /// Decode threads (the rayon pool); FUSE request threads are half as many, 1 to 16.
    pub threads: usize,
    /// Where the background process writes its log lines.
    pub log: Option<PathBuf>,
}

/// Mounts `fs` on `mountpoint` and serves it: until unmounted with `-f`; otherwise returns once the
/// background process has mounted it (and only the background process goes on, then exits).
pub fn mount(mut fs: ClcFs, mountpoint: &Path, opts: &MountOptions, how: &Serve) -> Result<()> {
    fs.exit_when_done = true;
    // The decode pool starts on the first read (`ClcFs::reader`), not before the first request.
    fs.pool_threads = Some(how.threads);
    let mp = mountpoint.canonicalize().ctx(mountpoint)?;
    if !mp.is_dir() {
        return Err(Error::Usage(format!("{}: not a directory", mp.display())));
    }
    let conf = opts.fuser_config(fuse_threads(how.threads));
    if how.foreground {
        block_signals();
        limit_arenas();
        let notifier = fs.push.notifier.clone();
        let session = Session::new(fs, &mp, &conf).map_err(|e| mount_error(&mp, e))?;
        let _ = notifier.set(session.notifier());
        trace::note("mounted");
        set_read_ahead(&mp, opts.read_ahead_kb);
        return serve(session, &mp);
    }
    let log_file = match &how.log {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ctx(p)?,
        ),
        None => None,
    };
    // Mounted (and FUSE_INIT answered) here, before the fork: a mount error reaches the terminal, and
    // the command returns right after the fork instead of waiting for the child to mount and report.
    let notifier = fs.push.notifier.clone();
    let warm = fs.paged_tree();
    let session = Session::new(fs, &mp, &conf).map_err(|e| mount_error(&mp, e))?;
    let _ = notifier.set(session.notifier());
    trace::note("mounted");
    set_read_ahead(&mp, opts.read_ahead_kb);
    crate::diag::flush();
    // An archive in object storage was opened through a client with its own threads: end them (the
    // serving process makes its client afresh on its first read).
    crate::volumes::remote::forget_stores();
    // SAFETY: no other thread exists yet in this process (see the module docs).
    match unsafe { libc::fork() } {
        // The session is dropped: that unmounts.
        -1 => Err(Error::io("fork", std::io::Error::last_os_error())),
        0 => {
            let code = background(session, &mp, log_file, warm);
            std::process::exit(code);
        }
        _ => {
            // The child serves the mount: dropping the session here would unmount it, and dropping
            // the tree would only cost time before the parent exits.
            std::mem::forget(session);
            Ok(())
        }
    }
}

/// The background process: detach, read the root's page of a paged tree (`warm`: the command has
/// returned, and this overlaps the start of whatever lists the mount first), serve. Returns the exit
/// status.
fn background(
    session: Session<ClcFs>,
    mp: &Path,
    log_file: Option<File>,
    warm: Option<Arc<super::paged::PagedTree>>,
) -> i32 {
    // SAFETY: plain syscalls on this process.
    unsafe {
        libc::setsid();
    }
    let _ = std::env::set_current_dir("/");
    block_signals();
    limit_arenas();
    redirect_stdio(log_file.as_ref());
    if let Some(t) = warm {
        t.warm();
    }
    match serve(session, mp) {
        Ok(()) => 0,
        Err(e) => {
            log(&e.to_string());
            2
        }
    }
}

/// Sets the kernel's read-ahead of the mount at `mp` (see [`READ_AHEAD_KB`]). The mount's device number
/// comes from a statx that asks the server nothing ([`crate::sys::mount_stat`]; a plain stat would wait
/// on this very process), or from /proc/self/mountinfo where the kernel cannot say that `mp` is the
/// mount's root. Best effort: a value asked for with `-o read_ahead_kb` that cannot be set is logged.
fn set_read_ahead(mp: &Path, asked: Option<u32>) {
    let kb = asked.unwrap_or(READ_AHEAD_KB);
    let dev = match crate::sys::mount_stat(mp) {
        Ok(s) if s.mount_root == Some(true) => Some(s.maj_min()),
        _ => mount_device(mp),
    };
    let Some(dev) = dev else {
        if asked.is_some() {
            log(&format!(
                "read_ahead_kb: {} not in /proc/self/mountinfo",
                mp.display()
            ));
        }
        return;
    };
    let knob = format!("/sys/class/bdi/{dev}/read_ahead_kb");
    if let Err(e) = std::fs::write(&knob, format!("{kb}\n")) {
        if asked.is_some() {
            log(&format!("read_ahead_kb: {knob}: {e}"));
        }
    }
}

/// The `MAJ:MIN` of the last mount at `mp` (mountinfo escapes space, tab, newline and backslash in octal).
fn mount_device(mp: &Path) -> Option<String> {
    let want = mp.to_str()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let at = f.get(4)?.replace("\\040", " ").replace("\\011", "\t");
            let at = at.replace("\\012", "\n").replace("\\134", "\\");
            (at == want).then(|| f.get(2).map(|d| d.to_string()))?
        })
        .next_back()
}

fn mount_error(mp: &Path, e: std::io::Error) -> Error {
    Error::Mount {
        path: mp.to_path_buf(),
        msg: format!("cannot mount: {e}"),
    }
}

/// Serves until the filesystem is unmounted (by `clc umount`, `umount`, or a signal).
fn serve(mut session: Session<ClcFs>, mp: &Path) -> Result<()> {
    let mut um = session.unmount_callable();
    let mp2 = mp.to_path_buf();
    std::thread::Builder::new()
        .name("clc-signals".into())
        .spawn(move || {
            wait_signal();
            if um.unmount().is_err() {
                lazy_unmount(&mp2);
            }
            wait_signal();
            std::process::exit(130);
        })
        .ctx("thread")?;
    session.run().ctx(mp)
}

/// Before any thread starts: frames are large (up to 16 MiB) and freed on other threads than the ones
/// that allocated them; glibc's default of up to 8 arenas per core then keeps freed frames around and
/// the resident size grows to several times the cache budget. Two arenas keep it near budget at no
/// measurable cost.
fn limit_arenas() {
    // SAFETY: mallopt only sets an allocator parameter, before the threads that allocate start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Builds the decode threads' pool (rayon's global one).
pub(super) fn start_pool(threads: usize) {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("clc-decode-{i}"))
        .build_global()
        .ok();
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset fill the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks the shutdown signals in this thread and every thread it starts later.
fn block_signals() {
    let set = signal_set();
    // SAFETY: changes this thread's mask only.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

fn wait_signal() {
    let set = signal_set();
    let mut sig = 0;
    // SAFETY: waits for one of the blocked signals.
    unsafe {
        libc::sigwait(&set, &mut sig);
    }
}

/// Points stdin at /dev/null and stdout/stderr at `log` (or /dev/null).
fn redirect_stdio(log: Option<&File>) {
    let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    else {
        return;
    };
    let out = log.map_or(null.as_raw_fd(), |f| f.as_raw_fd());
    // SAFETY: dup2 onto the standard descriptors, which stay open for the life of the process.
    unsafe {
        libc::dup2(null.as_raw_fd(), 0);
        libc::dup2(out, 1);
        libc::dup2(out, 2);
    }
}

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::Usage(format!("{}: path contains NUL", p.display())))
}

fn lazy_unmount(mp: &Path) {
    if let Ok(c) = cpath(mp) {
        // SAFETY: c is a valid C string.
        unsafe {
            libc::umount2(c.as_ptr(), libc::MNT_DETACH);
        }
    }
}

/// The effective user and group of this process (the owner of the implicit root directory).
pub fn ids() -> (u32, u32) {
    // SAFETY: these calls cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

/// `clc umount`: `umount2(path, 0)` as root; otherwise (or when that is refused) `fusermount3 -u`,
/// then `fusermount -u`.
pub fn unmount(mountpoint: &Path) -> Result<()> {
    if ids().0 == 0 {
        let c = cpath(mountpoint)?;
        // SAFETY: c is a valid C string.
        if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EPERM) {
            return Err(Error::io(mountpoint, e));
        }
    }
    for bin in ["fusermount3", "fusermount"] {
        match std::process::Command::new(bin)
            .arg("-u")
            .arg(mountpoint)
            .status()
        {
            Ok(s) if s.success() => return Ok(()),
            Ok(_) => {
                return Err(Error::Mount {
                    path: mountpoint.to_path_buf(),
                    msg: format!("{bin} -u failed"),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(bin, e)),
        }
    }
    Err(Error::Mount {
        path: mountpoint.to_path_buf(),
        msg: "cannot unmount: not root and no fusermount3 or fusermount found".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The read-ahead knob's device from statx is mountinfo's for the same mount point, and statx tells
    /// a mount's root from a plain directory (where the kernel says: Linux 5.8+).
    #[test]
    fn statx_finds_mountinfos_device() {
        let root = crate::sys::mount_stat(Path::new("/")).unwrap();
        let Some(is_root) = root.mount_root else {
            return; // an older kernel: set_read_ahead and require_free read mountinfo
        };
        assert!(is_root);
        assert_eq!(mount_device(Path::new("/")), Some(root.maj_min()));
        let t = tempfile::tempdir().unwrap();
        assert_eq!(
            crate::sys::mount_stat(t.path()).unwrap().mount_root,
            Some(false)
        );
        assert!(crate::sys::mount_stat(&t.path().join("missing")).is_err());
    }

    /// Half the decode threads, 1 to 16 (it was twice them, 4 to 16): one request thread on two cores,
    /// eight on sixteen.
    #[test]
    fn fuse_threads_are_half_the_decode_threads() {
        if std::env::var_os("CLC_MOUNT_FUSE_THREADS").is_some() {
            return; // the knob decides; nothing of the default to check
        }
        let got: Vec<usize> = [1, 2, 3, 4, 16, 31, 32, 64].map(fuse_threads).to_vec();
        assert_eq!(got, [1, 1, 1, 2, 8, 15, 16, 16]);
    }

    #[test]
    fn options_parse_with_defaults() {
        let o = MountOptions::parse(&["allow_other,default_permissions".into()], "clc:/a").unwrap();
        assert_eq!(o.acl, SessionACL::All);
        assert!(o.options.contains(&MountOption::DefaultPermissions));
        assert!(o.options.contains(&MountOption::RO));
        assert!(o.options.contains(&MountOption::FSName("clc:/a".into())));
        assert!(o
            .options
            .contains(&MountOption::CUSTOM("subtype=clc".into())));
        let o = MountOptions::parse(&["fsname=x,ro,max_read=65536".into()], "clc:/a").unwrap();
        assert!(o.options.contains(&MountOption::FSName("x".into())));
        assert!(!o.options.contains(&MountOption::FSName("clc:/a".into())));
        assert!(o
            .options
            .contains(&MountOption::CUSTOM("max_read=65536".into())));
        assert_eq!(
            o.options.iter().filter(|x| **x == MountOption::RO).count(),
            1
        );
        assert!(MountOptions::parse(&["rw".into()], "x").is_err());
        let o = MountOptions::parse(&["ro,read_ahead_kb=4096".into()], "x").unwrap();
        assert_eq!(o.read_ahead_kb, Some(4096));
        assert!(!o
            .options
            .iter()
            .any(|x| matches!(x, MountOption::CUSTOM(c) if c.contains("read_ahead"))));
        assert_eq!(MountOptions::parse(&[], "x").unwrap().read_ahead_kb, None);
        let e = MountOptions::parse(&["read_ahead_kb=lots".into()], "x").unwrap_err();
        assert!(e.to_string().contains("read_ahead_kb=lots"), "{e}");
    }

    /// Issue 14 item 1: `-o allow_other` alone let any user read what the archive keeps from them.
    #[test]
    fn regression_allow_other_brings_default_permissions() {
        let o = MountOptions::parse(&["allow_other".into()], "clc:/a").unwrap();
        assert_eq!(o.acl, SessionACL::All);
        let n = o
            .options
            .iter()
            .filter(|x| **x == MountOption::DefaultPermissions);
        assert_eq!(n.count(), 1);
        let o = MountOptions::parse(&[], "clc:/a").unwrap();
        assert!(!o.options.contains(&MountOption::DefaultPermissions));
    }
}
