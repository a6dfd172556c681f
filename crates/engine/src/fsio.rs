//! Durable, atomic file operations. Every write the engine makes to a library or
//! data dir goes through here, so the crash-safety rules live in one place:
//!
//! 1. write a temp file in the target's own directory (same filesystem, so the
//!    rename is atomic), named `.NAME.bpv-tmp-PID-RANDOM` — hidden, and never
//!    ending in `.blueprint.yaml`, so no scan mistakes it for a blueprint;
//! 2. fsync the temp file;
//! 3. rename it over the target (readers see the whole old or the whole new file);
//! 4. fsync the directory, so the rename itself survives a power loss.
//!
//! A failed fsync is reported as a failure of the whole operation; it is never retried.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

const TEMP_MARKER: &str = ".bpv-tmp-";
/// Temp files older than this are debris from a crash even if their PID was reused.
const STALE_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Write `data` to `target` durably and atomically. Parent folders are created
/// (and fsynced) as needed.
pub fn write_atomic(target: &Path, data: &[u8]) -> Result<()> {
    write_atomic_mode(target, data, false)
}

/// [`write_atomic`] for a file that holds a secret (even a sealed one): created owner-only
/// (0600 on Unix) from the first byte, so no other user can read it at any moment.
pub fn write_atomic_private(target: &Path, data: &[u8]) -> Result<()> {
    write_atomic_mode(target, data, true)
}

fn write_atomic_mode(target: &Path, data: &[u8], private: bool) -> Result<()> {
    let dir = parent_of(target)?;
    ensure_dir(dir)?;
    let temp = temp_path_for(target);
    let result = (|| {
        let created = if private { create_new_private(&temp) } else { create_new(&temp) };
        let mut f = created.map_err(|e| Error::io("cannot create a temporary file in", dir, e))?;
        write_all(&mut f, &temp, data).map_err(|e| Error::io("cannot write", &temp, e))?;
        sync_file(&f, &temp).map_err(|e| Error::io("cannot flush to disk", &temp, e))?;
        drop(f);
        rename(&temp, target).map_err(|e| Error::io("cannot replace", target, e))?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = remove_file(&temp);
    }
    result
}

/// Copy `from` to `to` durably (temp + fsync + rename + dir fsync).
pub fn copy_durable(from: &Path, to: &Path) -> Result<()> {
    let data = fs::read(from).map_err(|e| Error::io("cannot read", from, e))?;
    write_atomic(to, &data)
}

/// Move a file, durably: a rename when both sides share a filesystem, otherwise a
/// durable copy followed by removing the source.
pub fn move_durable(from: &Path, to: &Path) -> Result<()> {
    let to_dir = parent_of(to)?;
    ensure_dir(to_dir)?;
    match rename(from, to) {
        Ok(()) => {
            fsync_dir(to_dir)?;
            if let Some(from_dir) = from.parent().filter(|d| *d != to_dir) {
                fsync_dir(from_dir)?;
            }
            Ok(())
        }
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            copy_durable(from, to)?;
            remove_file(from).map_err(|e| Error::io("cannot remove", from, e))?;
            if let Some(from_dir) = from.parent() {
                fsync_dir(from_dir)?;
            }
            Ok(())
        }
        Err(e) => Err(Error::io("cannot move", from, e)),
    }
}

/// Append `data` to `path` (created if missing) and fsync it: for logs that only grow.
/// A crash or a full disk can leave the last record torn; readers of such a log must
/// tolerate a torn tail (see `secrets::registry::parse_audit`).
pub fn append_durable(path: &Path, data: &[u8]) -> Result<()> {
    let dir = parent_of(path)?;
    ensure_dir(dir)?;
    let (mut f, created) = match create_new(path) {
        Ok(f) => (f, true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            (OpenOptions::new().append(true).open(path).map_err(|e| Error::io("cannot open", path, e))?, false)
        }
        Err(e) => return Err(Error::io("cannot create", path, e)),
    };
    write_all(&mut f, path, data).map_err(|e| Error::io("cannot write", path, e))?;
    sync_file(&f, path).map_err(|e| Error::io("cannot flush to disk", path, e))?;
    if created {
        fsync_dir(dir)?;
    }
    Ok(())
}

/// Remove a file and make the removal durable. Absent files are `NotFound`.
pub fn remove_durable(path: &Path) -> Result<()> {
    match remove_file(path) {
        Ok(()) => fsync_dir(parent_of(path)?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(path.display().to_string())),
        Err(e) => Err(Error::io("cannot remove", path, e)),
    }
}

pub fn fsync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(|e| Error::io("cannot open folder", dir, e))?;
    seam(Op::DirFsync, dir, None, None, || f.sync_all()).map_err(|e| Error::io("cannot flush folder to disk", dir, e))
}

/// Create `dir` and any missing ancestors, fsyncing each parent that gained an entry.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        ensure_dir(parent)?;
    }
    match create_dir(dir) {
        Ok(()) => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fsync_dir(parent)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(Error::io("cannot create folder", dir, e)),
    }
}

// Writing beneath a root without following links. A path from outside the process (a
// team library's change) names a file under the library; a folder along it that is a
// symlink could send the write anywhere. These open every folder one component at a
// time with `O_NOFOLLOW|O_DIRECTORY` from the root's descriptor and create, rename and
// remove relative to the last one, so a link swapped in meanwhile is refused too.

/// Write `data` to `root/rel` (`rel`: `/`-separated, relative) durably and atomically, as
/// [`write_atomic`] does, refusing any folder along `rel` or the file itself that is a
/// symlink (or not a folder). Missing folders are created without following links.
pub fn write_atomic_beneath(root: &Path, rel: &str, data: &[u8]) -> Result<()> {
    let (dirs, name) = split_rel(rel)?;
    let (dir, dir_abs) = open_dirs_beneath(root, rel, &dirs, true)?.ok_or_else(|| Error::NotFound(rel.to_owned()))?;
    let target = dir_abs.join(name);
    refuse_link_at(&dir, name, rel, &target)?;
    let temp = temp_path_for(&target);
    let temp_name = temp.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let c_temp = c_name(&temp_name, rel)?;
    let c_target = c_name(name, rel)?;
    let result = (|| {
        let fd = seam(Op::Create, &temp, None, None, || {
            // SAFETY: `dir` is an open folder descriptor and `c_temp` a NUL-terminated name.
            let fd = unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    c_temp.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    0o666 as libc::c_uint,
                )
            };
            // SAFETY: a non-negative result is a descriptor we now own.
            if fd < 0 { Err(io::Error::last_os_error()) } else { Ok(unsafe { OwnedFd::from_raw_fd(fd) }) }
        })
        .map_err(|e| Error::io("cannot create a temporary file in", &dir_abs, e))?;
        let mut f = File::from(fd);
        write_all(&mut f, &temp, data).map_err(|e| Error::io("cannot write", &temp, e))?;
        sync_file(&f, &temp).map_err(|e| Error::io("cannot flush to disk", &temp, e))?;
        drop(f);
        seam(Op::Rename, &temp, Some(&target), None, || {
            // SAFETY: both names are NUL-terminated and relative to the same open folder.
            let rc = unsafe { libc::renameat(dir.as_raw_fd(), c_temp.as_ptr(), dir.as_raw_fd(), c_target.as_ptr()) };
            if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
        })
        .map_err(|e| Error::io("cannot replace", &target, e))?;
        fsync_fd(&dir, &dir_abs)
    })();
    if result.is_err() {
        let _ = unlink_at(&dir, &c_temp, &temp);
    }
    result
}

/// Remove `root/rel` durably, refusing a folder along `rel` that is a symlink (the file
/// itself may be one: the link is removed, never what it points to). Absent: `NotFound`.
pub fn remove_beneath(root: &Path, rel: &str) -> Result<()> {
    let (dirs, name) = split_rel(rel)?;
    let Some((dir, dir_abs)) = open_dirs_beneath(root, rel, &dirs, false)? else {
        return Err(Error::NotFound(root.join(rel).display().to_string()));
    };
    let target = dir_abs.join(name);
    match unlink_at(&dir, &c_name(name, rel)?, &target) {
        Ok(()) => fsync_fd(&dir, &dir_abs),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(target.display().to_string())),
        Err(e) => Err(Error::io("cannot remove", &target, e)),
    }
}

/// Check that no folder along `rel` under `root`, nor the file itself, is a symlink (or
/// a file where a folder should be). Missing parts are fine (nothing to follow).
pub fn check_beneath(root: &Path, rel: &str) -> Result<()> {
    let (dirs, name) = split_rel(rel)?;
    if let Some((dir, dir_abs)) = open_dirs_beneath(root, rel, &dirs, false)? {
        refuse_link_at(&dir, name, rel, &dir_abs.join(name))?;
    }
    Ok(())
}

fn split_rel(rel: &str) -> Result<(Vec<&str>, &str)> {
    let mut parts: Vec<&str> = rel.split('/').collect();
    if rel.starts_with('/') || parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
        return Err(Error::invalid_key(rel, "not a plain relative path"));
    }
    let name = parts.pop().unwrap_or_default();
    Ok((parts, name))
}

fn c_name(name: &str, rel: &str) -> Result<CString> {
    CString::new(name).map_err(|_| Error::invalid_key(rel, "a NUL byte in a name"))
}

fn link_refused(rel: &str, at: &Path) -> Error {
    Error::invalid_key(
        rel,
        format!("{} is a link (or not a folder); nothing is written through links out of the folder", at.display()),
    )
}

/// Open `root`, then each of `dirs` below it without following links. `create`: make the
/// missing ones (through the seam); else a missing one gives `Ok(None)`.
fn open_dirs_beneath(root: &Path, rel: &str, dirs: &[&str], create: bool) -> Result<Option<(OwnedFd, PathBuf)>> {
    let mut fd: OwnedFd = File::open(root).map_err(|e| Error::io("cannot open folder", root, e))?.into();
    let mut abs = root.to_path_buf();
    for comp in dirs {
        let parent_abs = abs.clone();
        abs.push(comp);
        let c = c_name(comp, rel)?;
        let mut opened = open_dir_at(&fd, &c);
        if create && matches!(&opened, Err(e) if e.kind() == io::ErrorKind::NotFound) {
            let made = seam(Op::CreateDir, &abs, None, None, || {
                // SAFETY: `fd` is an open folder descriptor and `c` a NUL-terminated name.
                let rc = unsafe { libc::mkdirat(fd.as_raw_fd(), c.as_ptr(), 0o777) };
                if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
            });
            match made {
                Ok(()) => fsync_fd(&fd, &parent_abs)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("cannot create folder", &abs, e)),
            }
            opened = open_dir_at(&fd, &c);
        }
        fd = match opened {
            Ok(next) => next,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !create => return Ok(None),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => {
                return Err(link_refused(rel, &abs));
            }
            Err(e) => return Err(Error::io("cannot open folder", &abs, e)),
        };
    }
    Ok(Some((fd, abs)))
}

fn open_dir_at(dir: &OwnedFd, name: &CString) -> io::Result<OwnedFd> {
    // SAFETY: `dir` is an open folder descriptor and `name` a NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    // SAFETY: a non-negative result is a descriptor we now own.
    if fd < 0 { Err(io::Error::last_os_error()) } else { Ok(unsafe { OwnedFd::from_raw_fd(fd) }) }
}

/// Refuse when `name` in `dir` exists and is a symlink.
fn refuse_link_at(dir: &OwnedFd, name: &str, rel: &str, abs: &Path) -> Result<()> {
    let c = c_name(name, rel)?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is written by fstatat on success and read only then.
    let rc = unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), st.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if rc != 0 {
        return Ok(());
    }
    // SAFETY: fstatat succeeded, so `st` is initialised.
    let mode = unsafe { st.assume_init() }.st_mode;
    if mode & libc::S_IFMT == libc::S_IFLNK { Err(link_refused(rel, abs)) } else { Ok(()) }
}

fn unlink_at(dir: &OwnedFd, name: &CString, abs: &Path) -> io::Result<()> {
    seam(Op::Remove, abs, None, None, || {
        // SAFETY: `dir` is an open folder descriptor and `name` a NUL-terminated name.
        let rc = unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) };
        if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
    })
}

fn fsync_fd(fd: &OwnedFd, abs: &Path) -> Result<()> {
    let f = File::from(fd.try_clone().map_err(|e| Error::io("cannot open folder", abs, e))?);
    seam(Op::DirFsync, abs, None, None, || f.sync_all()).map_err(|e| Error::io("cannot flush folder to disk", abs, e))
}

// The seam: the only places the engine creates, writes, syncs, renames or removes
// files in a library or data area. With the `fault-injection` feature each call
// reports to `crate::fault` (which may fail it and records what became durable);
// without it `seam` is the bare operation.

#[cfg(feature = "fault-injection")]
use crate::fault::Op;

#[cfg(not(feature = "fault-injection"))]
#[derive(Clone, Copy)]
enum Op {
    Create,
    Write,
    Fsync,
    Rename,
    Exchange,
    Remove,
    RemoveDirAll,
    CreateDir,
    DirFsync,
    SyncFs,
}

#[cfg(feature = "fault-injection")]
fn seam<T>(
    op: Op,
    path: &Path,
    to: Option<&Path>,
    data: Option<&[u8]>,
    run: impl FnOnce() -> io::Result<T>,
) -> io::Result<T> {
    crate::fault::before(op, path, data.map(<[u8]>::len))?;
    let out = run()?;
    crate::fault::after(op, path, to, data);
    Ok(out)
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
fn seam<T>(
    _op: Op,
    _path: &Path,
    _to: Option<&Path>,
    _data: Option<&[u8]>,
    run: impl FnOnce() -> io::Result<T>,
) -> io::Result<T> {
    run()
}

/// Create a new file (never over an existing one), for writing.
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    seam(Op::Create, path, None, None, || OpenOptions::new().write(true).create_new(true).open(path))
}

/// [`create_new`], owner-only (0600) on Unix.
pub(crate) fn create_new_private(path: &Path) -> io::Result<File> {
    seam(Op::Create, path, None, None, || {
        let mut o = OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        o.open(path)
    })
}

/// Append `data` to a file opened by [`create_new`].
pub(crate) fn write_all(f: &mut File, path: &Path, data: &[u8]) -> io::Result<()> {
    seam(Op::Write, path, None, Some(data), || f.write_all(data))
}

/// fsync a file's data and metadata. A failure is final: never retry it.
pub(crate) fn sync_file(f: &File, path: &Path) -> io::Result<()> {
    seam(Op::Fsync, path, None, None, || f.sync_all())
}

pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    seam(Op::Rename, from, Some(to), None, || fs::rename(from, to))
}

/// Swap `a` and `b` atomically (both must exist; Linux `renameat2(RENAME_EXCHANGE)`):
/// at every instant each path names one whole tree. Not fsynced here.
#[cfg(target_os = "linux")]
pub(crate) fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    seam(Op::Exchange, a, Some(b), None, || {
        // SAFETY: both strings are NUL-terminated and live for the call.
        let rc =
            unsafe { libc::renameat2(libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE) };
        if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
    })
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn exchange(_a: &Path, _b: &Path) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "an atomic swap of two folders needs Linux"))
}

pub(crate) fn remove_file(path: &Path) -> io::Result<()> {
    seam(Op::Remove, path, None, None, || fs::remove_file(path))
}

pub(crate) fn remove_dir_all(path: &Path) -> io::Result<()> {
    seam(Op::RemoveDirAll, path, None, None, || fs::remove_dir_all(path))
}

pub(crate) fn create_dir(path: &Path) -> io::Result<()> {
    seam(Op::CreateDir, path, None, None, || fs::create_dir(path))
}

/// `create_dir_all` through the seam (one operation per folder created); the new
/// entries are not fsynced here.
pub(crate) fn create_dir_all(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all(parent)?;
    }
    match create_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        other => other,
    }
}

/// Flush the whole filesystem holding `dir` (Linux `syncfs`).
#[cfg(target_os = "linux")]
pub fn syncfs(dir: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = File::open(dir)?;
    seam(Op::SyncFs, dir, None, None, || {
        // SAFETY: `syncfs` only reads the descriptor, which `f` keeps open for the call.
        let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
        if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
    })
}

fn parent_of(path: &Path) -> Result<&Path> {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| Error::InvalidArgument(format!("{} has no parent folder", path.display())))
}

fn temp_path_for(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    // Keep the temp name short enough for NAME_MAX even when the target's is long.
    let short: String = name.chars().take(80).collect();
    let rand: u64 = rand::random();
    target.with_file_name(format!(".{short}{TEMP_MARKER}{}-{rand:016x}", std::process::id()))
}

/// Whether a file name is one of our temp files.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(TEMP_MARKER)
}

/// Remove `path` if it is a temp file left behind by a process that is gone (or that
/// is older than an hour). Returns whether it was removed.
pub fn remove_if_stale_temp(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    if !is_temp_name(name) {
        return false;
    }
    let pid =
        name.rsplit(TEMP_MARKER).next().and_then(|rest| rest.split('-').next()).and_then(|p| p.parse::<i32>().ok());
    let old = fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > STALE_TEMP_AGE);
    let owner_gone = pid.is_some_and(|pid| !process_alive(pid));
    (old || owner_gone) && remove_file(path).is_ok()
}

/// Open (creating if needed) and exclusively lock `path`; the lock holds until the
/// returned file is dropped. Used to serialise writers across processes.
pub fn lock_exclusive(path: &Path) -> Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("cannot open lock file", path, e))?;
    f.lock().map_err(|e| Error::io("cannot lock", path, e))?;
    Ok(f)
}

/// Whether a process with this PID exists (EPERM: it exists, owned by someone else).
pub(crate) fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    if pid as u32 == std::process::id() {
        return true;
    }
    // SAFETY: kill with signal 0 only checks for existence/permission; it sends nothing.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Nanoseconds since the Unix epoch of a file's mtime (0 if unknown).
pub fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.modified().ok().map(system_time_ns).unwrap_or(0)
}

pub fn system_time_ns(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("deep/er/x.blueprint.yaml");
        write_atomic(&target, b"first").unwrap();
        write_atomic(&target, b"second version").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"second version");
        let leftovers: Vec<_> = fs::read_dir(target.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(leftovers, vec!["x.blueprint.yaml".to_string()]);
    }

    #[test]
    fn temp_names_never_look_like_blueprints() {
        let t = temp_path_for(Path::new("/lib/a.blueprint.yaml"));
        let name = t.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with('.'));
        assert!(!name.ends_with(".blueprint.yaml"));
        assert!(is_temp_name(name));
        let long = "x".repeat(250) + ".blueprint.yaml";
        let t = temp_path_for(&Path::new("/lib").join(&long));
        assert!(t.file_name().unwrap().len() < 255);
    }

    #[test]
    fn stale_temps_of_dead_processes_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // PID 0x7fff_fff0 is above pid_max on Linux, so it is never alive.
        let dead = dir.path().join(format!(".a.blueprint.yaml{TEMP_MARKER}2147483632-00"));
        let mine = dir.path().join(format!(".b.blueprint.yaml{TEMP_MARKER}{}-00", std::process::id()));
        fs::write(&dead, b"partial").unwrap();
        fs::write(&mine, b"in flight").unwrap();
        assert!(remove_if_stale_temp(&dead));
        assert!(!remove_if_stale_temp(&mine));
        assert!(!dead.exists());
        assert!(mine.exists());
    }

    #[test]
    fn move_and_remove_are_durable_and_report_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        fs::write(&a, b"x").unwrap();
        let b = dir.path().join("sub/b.txt");
        move_durable(&a, &b).unwrap();
        assert!(!a.exists());
        assert_eq!(fs::read(&b).unwrap(), b"x");
        remove_durable(&b).unwrap();
        assert_eq!(remove_durable(&b).unwrap_err().code(), "not_found");
    }

    #[test]
    fn writes_beneath_a_root_never_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("lib");
        let outside = dir.path().join("outside");
        fs::create_dir_all(root.join("Blueprints")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        write_atomic_beneath(&root, "Blueprints/new/deep/x.blueprint.yaml", b"one").unwrap();
        assert_eq!(fs::read(root.join("Blueprints/new/deep/x.blueprint.yaml")).unwrap(), b"one");
        write_atomic_beneath(&root, "Blueprints/new/deep/x.blueprint.yaml", b"two").unwrap();
        assert_eq!(fs::read(root.join("Blueprints/new/deep/x.blueprint.yaml")).unwrap(), b"two");
        // A folder along the path that is a link, at any depth: refused, nothing written.
        std::os::unix::fs::symlink(&outside, root.join("Blueprints/linked")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("Blueprints/new/deep/linked")).unwrap();
        for rel in ["Blueprints/linked/x.blueprint.yaml", "Blueprints/new/deep/linked/sub/x.blueprint.yaml"] {
            let err = write_atomic_beneath(&root, rel, b"evil").unwrap_err();
            assert_eq!(err.code(), "invalid_key", "{rel}: {err}");
            assert!(check_beneath(&root, rel).is_err(), "{rel}");
        }
        // The file itself a link: refused too; removing removes the link, not its target.
        fs::write(outside.join("target.txt"), b"keep").unwrap();
        std::os::unix::fs::symlink(outside.join("target.txt"), root.join("Blueprints/l.blueprint.yaml")).unwrap();
        assert!(write_atomic_beneath(&root, "Blueprints/l.blueprint.yaml", b"evil").is_err());
        assert!(remove_beneath(&root, "Blueprints/linked/target.txt").is_err());
        remove_beneath(&root, "Blueprints/l.blueprint.yaml").unwrap();
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
        assert_eq!(fs::read(outside.join("target.txt")).unwrap(), b"keep");
        for rel in ["../x", "/etc/x", "a//b", "a/./b", ""] {
            assert!(write_atomic_beneath(&root, rel, b"evil").is_err(), "{rel}");
        }
        remove_beneath(&root, "Blueprints/new/deep/x.blueprint.yaml").unwrap();
        assert_eq!(remove_beneath(&root, "Blueprints/new/deep/x.blueprint.yaml").unwrap_err().code(), "not_found");
        assert_eq!(remove_beneath(&root, "Blueprints/none/x.blueprint.yaml").unwrap_err().code(), "not_found");
    }
}
