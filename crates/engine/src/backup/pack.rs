//! Pack files: small objects are appended to packs (`packs/<name>.pack`, ~4 MB each)
//! instead of one file per object. Measured on a 10k-blueprint library: creating ~12k
//! loose object files spent about half of a full backup in ext4 inode allocation;
//! packs make the number of files created per backup a handful.
//!
//! A pack is a run of zstd frames followed by a trailer:
//! `JSON index [entry, …] | u64 LE index length | SHA-256 of the index (32 bytes) | "BPVPACK1"`,
//! where an entry is `[hash, offset, len]` (the frame is the object) or
//! `[hash, offset, len, start, size]` (the object is bytes `start..start+size` of the
//! decoded frame: a *block*). Small objects are gathered into blocks of ~256 KB and
//! compressed together: measured on the 10k corpus (3.5 KB per file on average), zstd
//! spent most of a full backup building entropy tables for thousands of tiny frames.
//! A pack is written under a temp name (frames buffered, ~1 MB per write), fsynced,
//! renamed when complete (then its folder is fsynced) and read back against a digest
//! of everything written (XXH3-128: it guards against a bad disk or driver, not an
//! adversary, at a tenth of SHA-256's cost), so a pack that has a name always has its
//! trailer; the frames are checked object by object (SHA-256 of the content), the
//! trailer by its own checksum.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Digest32, digest_of_hex};
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};
use crate::fsio;

pub(crate) const MAGIC: &[u8; 8] = b"BPVPACK1";
const TRAILER: u64 = 8 + 32 + 8;
/// A pack is closed once it reaches this size. 4 MB rather than 16: a pack is finished
/// (fsync, read back) by the worker that filled it while the others go on, and only the
/// last one is finished after all files are read; 16 MB packs left most of that work for
/// the end of a 10k backup.
pub(crate) const PACK_TARGET: u64 = 4 * 1024 * 1024;
/// Compressed objects at least this big are stored loose (one file each).
pub(crate) const LOOSE_MIN: usize = 1024 * 1024;

/// One object of a pack's index (see the module doc for the two forms).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum IndexEntry {
    InBlock(String, u64, u64, u64, u64),
    Frame(String, u64, u64),
}

impl IndexEntry {
    pub fn hash(&self) -> &str {
        match self {
            IndexEntry::InBlock(h, ..) | IndexEntry::Frame(h, ..) => h,
        }
    }

    /// Where the frame holding the object is: (offset, length).
    pub fn frame(&self) -> (u64, u64) {
        match self {
            IndexEntry::InBlock(_, o, l, ..) | IndexEntry::Frame(_, o, l) => (*o, *l),
        }
    }

    /// The object's bytes within the decoded frame, for an object in a block.
    pub fn slice(&self) -> Option<(u64, u64)> {
        match self {
            IndexEntry::InBlock(_, _, _, start, size) => Some((*start, *size)),
            IndexEntry::Frame(..) => None,
        }
    }

    /// The object's name as raw bytes and where it is; `None` if the index names it by
    /// something that is not a hash (`read_index` refuses such an index).
    pub fn to_loc(&self, pack: &Arc<str>) -> Option<(Digest32, Loc)> {
        Some((digest_of_hex(self.hash())?, self.loc(pack)))
    }

    pub fn loc(&self, pack: &Arc<str>) -> Loc {
        let (offset, len) = self.frame();
        Loc { pack: pack.clone(), offset, len, slice: self.slice() }
    }
}

pub(crate) type PackIndex = Vec<IndexEntry>;

#[derive(Clone, Debug)]
pub(crate) struct Loc {
    pub pack: Arc<str>,
    pub offset: u64,
    pub len: u64,
    /// (start, size) in the decoded frame when the object is in a block.
    pub slice: Option<(u64, u64)>,
}

/// Frames are buffered up to this size per `write`.
const WRITE_BUFFER: usize = 1024 * 1024;
/// A write buffer's capacity: a buffer just short of `WRITE_BUFFER` takes one more
/// frame (at most `LOOSE_MIN`) without growing.
pub(crate) const WRITE_BUFFER_CAPACITY: usize = WRITE_BUFFER + LOOSE_MIN;

pub(crate) struct PackWriter {
    file: File,
    temp: PathBuf,
    dir: PathBuf,
    offset: u64,
    entries: PackIndex,
    buffer: Vec<u8>,
    /// Digest of every byte written, to check the pack as it reads back.
    written: Xxh3,
}

impl PackWriter {
    /// A pack writing through `buffer` (cleared; a finished pack's, to spare a fresh
    /// allocation and its page faults per pack).
    pub fn create(dir: &Path, mut buffer: Vec<u8>) -> Result<PackWriter> {
        fsio::ensure_dir(dir)?;
        let temp = dir.join(format!(".new.pack.bpv-tmp-{}-{:016x}", std::process::id(), rand::random::<u64>()));
        let file = fsio::create_new(&temp).map_err(|e| Error::io("cannot create a file in", dir, e))?;
        Ok(PackWriter {
            file,
            temp,
            dir: dir.to_path_buf(),
            offset: 0,
            entries: Vec::new(),
            buffer: {
                buffer.clear();
                buffer.reserve_exact(WRITE_BUFFER_CAPACITY);
                buffer
            },
            written: Xxh3::new(),
        })
    }

    /// Append a frame that is one object.
    pub fn add(&mut self, hash: &str, frame: &[u8]) -> Result<()> {
        let (offset, len) = self.append(frame)?;
        self.entries.push(IndexEntry::Frame(hash.to_owned(), offset, len));
        Ok(())
    }

    /// Append a block: one frame holding `objects` as (hash, start, size) of its content.
    pub fn add_block(&mut self, frame: &[u8], objects: &[(String, u64, u64)]) -> Result<()> {
        let (offset, len) = self.append(frame)?;
        for (hash, start, size) in objects {
            self.entries.push(IndexEntry::InBlock(hash.clone(), offset, len, *start, *size));
        }
        Ok(())
    }

    /// Append index entries as they are (prune copying a frame): their frame's new offset.
    pub fn add_copied(&mut self, frame: &[u8], entries: &[&IndexEntry]) -> Result<()> {
        let (offset, len) = self.append(frame)?;
        for e in entries {
            self.entries.push(match e {
                IndexEntry::InBlock(h, _, _, start, size) => IndexEntry::InBlock(h.clone(), offset, len, *start, *size),
                IndexEntry::Frame(h, ..) => IndexEntry::Frame(h.clone(), offset, len),
            });
        }
        Ok(())
    }

    fn append(&mut self, frame: &[u8]) -> Result<(u64, u64)> {
        self.buffer.extend_from_slice(frame);
        if self.buffer.len() >= WRITE_BUFFER {
            self.write_buffer()?;
        }
        let at = (self.offset, frame.len() as u64);
        self.offset += frame.len() as u64;
        Ok(at)
    }

    fn write_buffer(&mut self) -> Result<()> {
        fsio::write_all(&mut self.file, &self.temp, &self.buffer)
            .map_err(|e| Error::io("cannot write", &self.temp, e))?;
        self.written.update(&self.buffer);
        self.buffer.clear();
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.offset
    }

    /// Write the trailer and give the pack its name. Returns (name, entries, the write
    /// buffer for the next pack).
    pub fn finish(mut self) -> Result<(String, PackIndex, Vec<u8>)> {
        let index = serde_json::to_vec(&self.entries).map_err(|e| Error::Corrupt(e.to_string()))?;
        let sum = Sha256::digest(&index);
        let mut tail = index;
        tail.extend_from_slice(&(tail.len() as u64).to_le_bytes());
        tail.extend_from_slice(&sum);
        tail.extend_from_slice(MAGIC);
        let result = (|| {
            self.buffer.extend_from_slice(&tail);
            self.write_buffer()?;
            let name = format!("{}.pack", hex::encode(&sum[..12]));
            let target = self.dir.join(&name);
            // The pack is whole on disk before it gets its name.
            fsio::sync_file(&self.file, &self.temp).map_err(|e| Error::io("cannot flush to disk", &self.temp, e))?;
            fsio::rename(&self.temp, &target).map_err(|e| Error::io("cannot write", &target, e))?;
            fsio::fsync_dir(&self.dir)?;
            let expected = self.written.digest128();
            if read_back_digest(&target, &mut self.buffer).map_err(|e| Error::io("cannot read back", &target, e))?
                != expected
            {
                // Named but wrong: remove it so no manifest can name its objects.
                let _ = fsio::remove_file(&target);
                return Err(Error::Corrupt(format!(
                    "{}: the pack reads back differently from what was written; check the backup disk",
                    target.display()
                )));
            }
            Ok(name)
        })();
        match result {
            Ok(name) => Ok((name, std::mem::take(&mut self.entries), std::mem::take(&mut self.buffer))),
            Err(e) => {
                let _ = fsio::remove_file(&self.temp);
                Err(e)
            }
        }
    }

    /// Give up on this pack (an error or a cancel): remove its temp file.
    pub fn abandon(self) {
        let _ = fsio::remove_file(&self.temp);
    }
}

/// XXH3-128 of a file, read through `buffer` (the writer's, now empty): no allocation
/// the size of the pack per pack finished.
fn read_back_digest(path: &Path, buffer: &mut Vec<u8>) -> std::io::Result<u128> {
    use std::io::Read;
    let mut f = File::open(path)?;
    buffer.clear();
    buffer.resize(WRITE_BUFFER, 0);
    let mut sum = Xxh3::new();
    loop {
        match f.read(buffer) {
            Ok(0) => break,
            Ok(n) => sum.update(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buffer.clear();
    Ok(sum.digest128())
}

/// Read a pack's trailer: its objects, or why the pack cannot be used.
pub(crate) fn read_index(path: &Path) -> std::result::Result<PackIndex, String> {
    let f = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = f.metadata().map_err(|e| format!("cannot read: {e}"))?.len();
    if len < TRAILER {
        return Err("too short to be a pack".into());
    }
    let mut tail = [0u8; TRAILER as usize];
    f.read_exact_at(&mut tail, len - TRAILER).map_err(|e| format!("cannot read: {e}"))?;
    if &tail[40..48] != MAGIC {
        return Err("its trailer is damaged (no pack marker)".into());
    }
    let index_len = u64::from_le_bytes(tail[..8].try_into().unwrap_or_default());
    if index_len > len - TRAILER {
        return Err("its trailer is damaged (bad index length)".into());
    }
    let mut index = vec![0u8; index_len as usize];
    f.read_exact_at(&mut index, len - TRAILER - index_len).map_err(|e| format!("cannot read: {e}"))?;
    if Sha256::digest(&index)[..] != tail[8..40] {
        return Err("its index is damaged (checksum mismatch)".into());
    }
    let entries: PackIndex = serde_json::from_slice(&index).map_err(|e| format!("its index is damaged ({e})"))?;
    let data_end = len - TRAILER - index_len;
    if entries.iter().map(IndexEntry::frame).any(|(o, l)| o.saturating_add(l) > data_end) {
        return Err("its index points outside the pack".into());
    }
    if entries.iter().any(|e| digest_of_hex(e.hash()).is_none()) {
        return Err("its index names an object by something that is not a hash".into());
    }
    Ok(entries)
}

/// The object map of every readable pack in `dir`, the other places of objects stored in
/// more than one pack, and the packs that could not be read.
pub(crate) fn load_all(dir: &Path) -> (ObjectMap, OtherCopies, Vec<(String, String)>) {
    let mut map = ObjectMap::default();
    let mut others = OtherCopies::default();
    let mut damaged = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else { return (map, others, damaged) };
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".pack") && !fsio::is_temp_name(n))
        .collect();
    names.sort();
    for name in names {
        match read_index(&dir.join(&name)) {
            Ok(entries) => {
                let pack: Arc<str> = Arc::from(name.as_str());
                // Which copy of an object in two packs the map names does not matter:
                // reads try the others when it is damaged.
                for (digest, loc) in entries.iter().filter_map(|e| e.to_loc(&pack)) {
                    if let Some(other) = map.insert(digest, loc) {
                        others.entry(digest).or_default().push(other);
                    }
                }
            }
            Err(why) => damaged.push((name, why)),
        }
    }
    (map, others, damaged)
}

/// Where each packed object is, by its raw digest.
pub(crate) type ObjectMap = super::FastMap<Digest32, Loc>;
/// The other places of objects stored in more than one pack.
pub(crate) type OtherCopies = super::FastMap<Digest32, Vec<Loc>>;

pub(crate) fn read_frame(dir: &Path, loc: &Loc) -> std::result::Result<Vec<u8>, String> {
    let path = dir.join(&*loc.pack);
    let f = File::open(&path).map_err(|e| format!("cannot open pack {}: {e}", loc.pack))?;
    let mut buf = vec![0u8; loc.len as usize];
    f.read_exact_at(&mut buf, loc.offset).map_err(|e| format!("cannot read pack {}: {e}", loc.pack))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_entries_of_both_forms_read_back_as_written() {
        let entries = vec![
            IndexEntry::Frame("aa".into(), 0, 10),
            IndexEntry::InBlock("bb".into(), 10, 40, 0, 100),
            IndexEntry::InBlock("cc".into(), 10, 40, 100, 7),
        ];
        let json = serde_json::to_string(&entries).unwrap();
        assert_eq!(json, r#"[["aa",0,10],["bb",10,40,0,100],["cc",10,40,100,7]]"#);
        let back: PackIndex = serde_json::from_str(&json).unwrap();
        assert_eq!(back, entries);
        assert_eq!(back[2].slice(), Some((100, 7)));
        assert_eq!(back[0].slice(), None);
        // Neither form with another length is accepted.
        assert!(serde_json::from_str::<PackIndex>(r#"[["aa",0,10,5]]"#).is_err());
    }

    #[test]
    fn a_pack_of_frames_and_blocks_reads_back_its_index() {
        let (aa, bb, cc) = ("aa".repeat(32), "bb".repeat(32), "cc".repeat(32));
        let dir = tempfile::tempdir().unwrap();
        let mut w = PackWriter::create(dir.path(), Vec::new()).unwrap();
        w.add(&aa, b"frame-one").unwrap();
        w.add_block(b"block-bytes", &[(bb.clone(), 0, 3), (cc.clone(), 3, 8)]).unwrap();
        let (name, written, _) = w.finish().unwrap();
        let read = read_index(&dir.path().join(&name)).unwrap();
        assert_eq!(read, written);
        assert_eq!(read[1].frame(), (9, 11));
        let (map, others, damaged) = load_all(dir.path());
        assert!(damaged.is_empty() && others.is_empty());
        assert_eq!(map.len(), 3);
        let loc = &map[&[0xcc; 32]];
        assert_eq!(read_frame(dir.path(), loc).unwrap(), b"block-bytes");
        assert_eq!(loc.slice, Some((3, 8)));
    }

    #[test]
    fn an_index_naming_an_object_by_something_else_than_a_hash_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PackWriter::create(dir.path(), Vec::new()).unwrap();
        w.add(&"aa".repeat(32), b"frame-one").unwrap();
        w.add("not-a-hash", b"frame-two").unwrap();
        let (name, _, _) = w.finish().unwrap();
        let why = read_index(&dir.path().join(&name)).unwrap_err();
        assert!(why.contains("not a hash"), "{why}");
        let (map, _, damaged) = load_all(dir.path());
        assert!(map.is_empty(), "nothing of that pack is used");
        assert_eq!(damaged.len(), 1);
        assert_eq!(damaged[0].0, name);
    }
}
