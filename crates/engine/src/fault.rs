//! Fault injection for the reliability suites (cargo feature `fault-injection`; absent
//! from normal builds, where the seam in `fsio` compiles to the plain `std::fs` calls).
//!
//! Every file operation the engine makes to a library or its data area goes through
//! `fsio`'s seam functions, which report here before (may fail) and after (recorded)
//! each operation. A test installs a [`Plan`] that can:
//!
//! - fail the Nth operation under its roots, or every operation of a kind whose path
//!   contains a string, with EIO or ENOSPC;
//! - cut the power at the Nth operation: that and every later operation fail, and
//!   [`Injector::power_loss`] then rewrites the roots to what a disk would hold after the
//!   power loss: only file contents that were fsynced and only folder entries whose
//!   folder was fsynced (as SQLite's crash-test VFS does). A file whose entry survived
//!   but whose data was never fsynced comes back empty, the harshest outcome.
//!
//! SQLite's files (`index.sqlite*`) and lock files are left alone: SQLite does its own
//! I/O, and the index is only a cache the library rebuilds or reconciles.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// A kind of file operation at the seam.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Creating a new file (temp files).
    Create,
    Write,
    /// fsync of a file.
    Fsync,
    Rename,
    /// An atomic swap of two paths (`renameat2(RENAME_EXCHANGE)`); the other path is `to`.
    Exchange,
    Remove,
    RemoveDirAll,
    CreateDir,
    /// fsync of a folder (makes its entries durable).
    DirFsync,
    /// syncfs of the filesystem holding a folder (makes everything durable).
    SyncFs,
}

/// What an injected failure looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// EIO for this one operation.
    Eio,
    /// ENOSPC for this one operation.
    DiskFull,
    /// The power goes: this and every later operation fail with EIO until
    /// [`Injector::power_loss`] rewrites the roots to their durable state.
    PowerLoss,
}

impl Fault {
    fn error(self) -> io::Error {
        match self {
            Fault::Eio | Fault::PowerLoss => io::Error::from_raw_os_error(libc::EIO),
            Fault::DiskFull => io::Error::from_raw_os_error(libc::ENOSPC),
        }
    }
}

/// What to inject, and where. Only operations on paths under `roots` count.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub roots: Vec<PathBuf>,
    /// Fail the Nth (1-based) counted operation.
    pub fail_at: Option<(u64, Fault)>,
    /// Fail every operation of this kind whose path contains this string.
    pub fail_matching: Option<(Op, String, Fault)>,
    /// With `fail_matching`: only the first matching operation fails (the later ones,
    /// a retry or the rest of the run, go through).
    pub matching_once: bool,
    /// Keep the durable-state model needed by [`Injector::power_loss`].
    pub record: bool,
    /// Damage every frame a backup compresses, right after compressing it (a compressor
    /// defect, or memory going bad, between reading a file and storing it).
    pub damage_compressed: bool,
    /// A disk with this many bytes free under the roots: the write that would go past it
    /// fails with ENOSPC, and so does every later write or file creation, as on a full
    /// disk. Removing files frees nothing here (the harsher case).
    pub disk_free: Option<u64>,
}

struct State {
    plan: Plan,
    count: u64,
    /// Bytes written under the roots so far (for `Plan::disk_free`), and the count after
    /// each write.
    written: u64,
    write_ends: Vec<u64>,
    fired: Option<(u64, Op, PathBuf)>,
    powered_off: bool,
    model: Option<Model>,
    log: Vec<(Op, PathBuf)>,
}

static ACTIVE: Mutex<Option<State>> = Mutex::new(None);
/// One injector at a time per process: tests that install one are serialised here.
static EXCLUSIVE: Mutex<()> = Mutex::new(());

fn active() -> MutexGuard<'static, Option<State>> {
    ACTIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// An installed plan; uninstalled when dropped.
pub struct Injector {
    _exclusive: MutexGuard<'static, ()>,
}

/// Install `plan` (waiting for any other injector in this process to be dropped).
pub fn install(plan: Plan) -> Injector {
    let exclusive = EXCLUSIVE.lock().unwrap_or_else(|p| p.into_inner());
    let model = plan.record.then(|| Model::baseline(&plan.roots));
    *active() = Some(State {
        plan,
        count: 0,
        written: 0,
        write_ends: Vec::new(),
        fired: None,
        powered_off: false,
        model,
        log: Vec::new(),
    });
    Injector { _exclusive: exclusive }
}

impl Drop for Injector {
    fn drop(&mut self) {
        *active() = None;
    }
}

impl Injector {
    /// How many operations under the roots were attempted so far.
    pub fn ops(&self) -> u64 {
        active().as_ref().map_or(0, |s| s.count)
    }

    /// The injected failure, if one fired: (operation number, kind, path).
    pub fn fired(&self) -> Option<(u64, Op, PathBuf)> {
        active().as_ref().and_then(|s| s.fired.clone())
    }

    /// Every counted operation so far, in order (for failure messages).
    pub fn log(&self) -> Vec<(Op, PathBuf)> {
        active().as_ref().map(|s| s.log.clone()).unwrap_or_default()
    }

    /// Stop injecting (the plan's roots stay recorded).
    pub fn disarm(&self) {
        if let Some(s) = active().as_mut() {
            s.plan.fail_at = None;
            s.plan.fail_matching = None;
            s.plan.disk_free = None;
        }
    }

    /// The byte count under the roots after each write so far, in order: where a disk of
    /// a given size fills up (for choosing `Plan::disk_free`).
    pub fn write_ends(&self) -> Vec<u64> {
        active().as_ref().map(|s| s.write_ends.clone()).unwrap_or_default()
    }

    /// Rewrite the roots to what survives a power loss now, then let operations
    /// through again (recording restarts from the new state).
    pub fn power_loss(&self) -> io::Result<()> {
        let mut guard = active();
        let Some(state) = guard.as_mut() else { return Ok(()) };
        let Some(model) = state.model.take() else {
            return Err(io::Error::other("the plan did not record (Plan::record)"));
        };
        model.materialise(&state.plan.roots)?;
        state.model = Some(Model::baseline(&state.plan.roots));
        state.powered_off = false;
        state.plan.fail_at = None;
        state.plan.fail_matching = None;
        Ok(())
    }
}

fn counted(state: &State, path: &Path) -> bool {
    state.plan.roots.iter().any(|r| path.starts_with(r))
}

/// Called after a backup compresses a frame for the repository at `repo`: flips one of
/// its bytes if the plan says so (and the repository is under its roots).
pub(crate) fn compressed(repo: &Path, frame: &mut [u8]) {
    if active().as_ref().is_some_and(|s| s.plan.damage_compressed && counted(s, repo))
        && let Some(last) = frame.last_mut()
    {
        // The last byte is in the last block's compressed data (a frame without a
        // checksum ends there): the frame still parses, but decodes to something else
        // or not at all.
        *last ^= 0x5a;
    }
}

/// Called by the seam before an operation (`len`: a write's byte count): the injected
/// error, if any.
pub(crate) fn before(op: Op, path: &Path, len: Option<usize>) -> io::Result<()> {
    let mut guard = active();
    let Some(state) = guard.as_mut() else { return Ok(()) };
    if !counted(state, path) {
        return Ok(());
    }
    state.count += 1;
    state.log.push((op, path.to_path_buf()));
    if state.powered_off {
        return Err(Fault::PowerLoss.error());
    }
    if let Some((n, fault)) = state.plan.fail_at
        && n == state.count
    {
        state.fired = Some((n, op, path.to_path_buf()));
        state.powered_off = fault == Fault::PowerLoss;
        return Err(fault.error());
    }
    let free = state.plan.disk_free.unwrap_or(u64::MAX);
    if op == Op::Create && state.written >= free {
        state.fired.get_or_insert_with(|| (state.count, op, path.to_path_buf()));
        return Err(Fault::DiskFull.error());
    }
    if op == Op::Write {
        let want = state.written.saturating_add(len.unwrap_or(0) as u64);
        if want > free {
            state.fired.get_or_insert_with(|| (state.count, op, path.to_path_buf()));
            return Err(Fault::DiskFull.error());
        }
    }
    if let Some((kind, needle, fault)) = &state.plan.fail_matching
        && *kind == op
        && path.to_string_lossy().contains(needle.as_str())
    {
        let fault = *fault;
        state.fired.get_or_insert_with(|| (state.count, op, path.to_path_buf()));
        state.powered_off = fault == Fault::PowerLoss;
        if state.plan.matching_once {
            state.plan.fail_matching = None;
        }
        return Err(fault.error());
    }
    Ok(())
}

/// Called by the seam after an operation succeeded. `to` is a rename's target,
/// `data` a write's bytes.
pub(crate) fn after(op: Op, path: &Path, to: Option<&Path>, data: Option<&[u8]>) {
    let mut guard = active();
    let Some(state) = guard.as_mut() else { return };
    if !counted(state, path) {
        return;
    }
    if op == Op::Write {
        state.written = state.written.saturating_add(data.map_or(0, <[u8]>::len) as u64);
        state.write_ends.push(state.written);
    }
    if let Some(model) = state.model.as_mut() {
        model.apply(op, path, to, data);
    }
}

/// A folder's or a file's identity (inode): a renamed folder takes its entries along.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    Dir(usize),
    File(usize),
}

struct Inode {
    current: Vec<u8>,
    /// What an fsync made durable; `None`: never synced (empty after a power loss).
    durable: Option<Vec<u8>>,
}

/// The namespace as the process sees it (by path) and as the disk holds it (each
/// folder's entries, by folder identity: what its last fsync recorded).
struct Model {
    inodes: Vec<Inode>,
    folders: usize,
    roots: Vec<(PathBuf, usize)>,
    current: BTreeMap<PathBuf, Node>,
    durable: BTreeMap<(usize, OsString), Node>,
}

/// Files the model leaves alone: SQLite's own I/O and lock files.
fn unmanaged(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    name.starts_with("index.sqlite") || name.ends_with(".lock")
}

impl Model {
    /// Everything on disk now is taken as durable.
    fn baseline(roots: &[PathBuf]) -> Model {
        let mut m = Model {
            inodes: Vec::new(),
            folders: 0,
            roots: Vec::new(),
            current: BTreeMap::new(),
            durable: BTreeMap::new(),
        };
        for root in roots {
            let id = m.new_folder();
            m.roots.push((root.clone(), id));
            for entry in walkdir::WalkDir::new(root).min_depth(1).into_iter().flatten() {
                let path = entry.path().to_path_buf();
                if unmanaged(&path) {
                    continue;
                }
                let node = if entry.file_type().is_dir() {
                    Node::Dir(m.new_folder())
                } else {
                    let bytes = fs::read(&path).unwrap_or_default();
                    m.inodes.push(Inode { current: bytes.clone(), durable: Some(bytes) });
                    Node::File(m.inodes.len() - 1)
                };
                m.current.insert(path, node);
            }
        }
        m.sync_all_entries();
        m
    }

    fn new_folder(&mut self) -> usize {
        self.folders += 1;
        self.folders
    }

    /// The identity of the folder at `path` (a root or a folder in the namespace).
    fn folder_id(&self, path: &Path) -> Option<usize> {
        if let Some((_, id)) = self.roots.iter().find(|(r, _)| r == path) {
            return Some(*id);
        }
        match self.current.get(path) {
            Some(Node::Dir(id)) => Some(*id),
            _ => None,
        }
    }

    /// Every folder's current entries become its durable ones.
    fn sync_all_entries(&mut self) {
        let mut durable = BTreeMap::new();
        for (path, node) in &self.current {
            let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else { continue };
            if let Some(id) = self.folder_id(parent) {
                durable.insert((id, name.to_os_string()), *node);
            }
        }
        self.durable = durable;
    }

    fn inode_at(&mut self, path: &Path) -> Option<&mut Inode> {
        match self.current.get(path) {
            Some(Node::File(id)) => self.inodes.get_mut(*id),
            _ => None,
        }
    }

    fn apply(&mut self, op: Op, path: &Path, to: Option<&Path>, data: Option<&[u8]>) {
        match op {
            Op::Create => {
                self.inodes.push(Inode { current: Vec::new(), durable: None });
                self.current.insert(path.to_path_buf(), Node::File(self.inodes.len() - 1));
            }
            Op::Write => {
                if let (Some(inode), Some(data)) = (self.inode_at(path), data) {
                    inode.current.extend_from_slice(data);
                }
            }
            Op::Fsync => {
                if let Some(inode) = self.inode_at(path) {
                    inode.durable = Some(inode.current.clone());
                }
            }
            Op::Rename => {
                let Some(to) = to else { return };
                let moved = take_subtree(&mut self.current, path);
                take_subtree(&mut self.current, to);
                put_subtree(&mut self.current, moved, path, to);
            }
            Op::Exchange => {
                let Some(to) = to else { return };
                let a = take_subtree(&mut self.current, path);
                let b = take_subtree(&mut self.current, to);
                put_subtree(&mut self.current, a, path, to);
                put_subtree(&mut self.current, b, to, path);
            }
            Op::Remove | Op::RemoveDirAll => {
                take_subtree(&mut self.current, path);
            }
            Op::CreateDir => {
                let id = self.new_folder();
                self.current.insert(path.to_path_buf(), Node::Dir(id));
            }
            Op::DirFsync => {
                let Some(id) = self.folder_id(path) else { return };
                self.durable.retain(|(d, _), _| *d != id);
                for (p, node) in self.current.iter().filter(|(p, _)| p.parent() == Some(path)) {
                    if let Some(name) = p.file_name() {
                        self.durable.insert((id, name.to_os_string()), *node);
                    }
                }
            }
            Op::SyncFs => {
                self.sync_all_entries();
                for inode in &mut self.inodes {
                    inode.durable = Some(inode.current.clone());
                }
            }
        }
    }

    /// Make the roots hold exactly the durable state.
    fn materialise(&self, roots: &[PathBuf]) -> io::Result<()> {
        for root in roots {
            let entries: Vec<walkdir::DirEntry> =
                walkdir::WalkDir::new(root).min_depth(1).contents_first(true).into_iter().flatten().collect();
            for entry in entries {
                if entry.file_type().is_dir() {
                    // Folders still holding unmanaged files stay.
                    let _ = fs::remove_dir(entry.path());
                } else if !unmanaged(entry.path()) {
                    fs::remove_file(entry.path())?;
                }
            }
        }
        for (root, id) in &self.roots {
            self.build(*id, root, 0)?;
        }
        Ok(())
    }

    /// Write out folder `id`'s durable entries at `dir` (only what is reachable from a
    /// root through durable entries survives).
    fn build(&self, id: usize, dir: &Path, depth: usize) -> io::Result<()> {
        if depth > 64 {
            return Ok(());
        }
        let children: Vec<(OsString, Node)> = self
            .durable
            .range((id, OsString::new())..)
            .take_while(|((d, _), _)| *d == id)
            .map(|((_, name), node)| (name.clone(), *node))
            .collect();
        for (name, node) in children {
            let path = dir.join(name);
            match node {
                Node::Dir(sub) => {
                    fs::create_dir_all(&path)?;
                    self.build(sub, &path, depth + 1)?;
                }
                Node::File(f) => {
                    let bytes = self.inodes.get(f).and_then(|i| i.durable.clone()).unwrap_or_default();
                    fs::write(&path, bytes)?;
                }
            }
        }
        Ok(())
    }
}

fn put_subtree(map: &mut BTreeMap<PathBuf, Node>, moved: Vec<(PathBuf, Node)>, from: &Path, to: &Path) {
    for (p, node) in moved {
        let rest = p.strip_prefix(from).map(Path::to_path_buf).unwrap_or_default();
        let dest = if rest.as_os_str().is_empty() { to.to_path_buf() } else { to.join(rest) };
        map.insert(dest, node);
    }
}

fn take_subtree(map: &mut BTreeMap<PathBuf, Node>, top: &Path) -> Vec<(PathBuf, Node)> {
    let keys: Vec<PathBuf> =
        map.range(top.to_path_buf()..).map(|(k, _)| k.clone()).take_while(|k| k.starts_with(top)).collect();
    keys.into_iter().filter_map(|k| map.remove(&k).map(|n| (k, n))).collect()
}
