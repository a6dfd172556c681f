//! A snapshot's file list in chunks (manifest format 2). The manifest itself holds only
//! a list of chunk references; each chunk is a run of entries (sorted by source and
//! path) stored as an ordinary object, so a chunk that did not change between two
//! snapshots is the same object and costs nothing to keep.
//!
//! Boundaries are content-defined: a chunk ends after an entry whose path hash has its
//! low `BOUNDARY_BITS` bits zero (about 64 entries per chunk), and where the source
//! changes. Adding or removing a file therefore only changes the chunk it falls in.
//!
//! Each reference carries a fingerprint of its entries' metadata (path, size, mtime,
//! mode, inode, ctime) and the newest mtime in it: a backup that finds the same
//! fingerprint among the files it scanned reuses the chunk without reading it, nor any
//! of its files (the unchanged-file test, applied to some sixty files at once).

use std::ops::Range;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Entry, Repo, Source};
use crate::error::{Error, Result};

/// ~1 in 64 entries ends a chunk: a changed chunk costs ~3 KB compressed, about one
/// blueprint, so one changed file costs about two; the root manifest of 100k files
/// lists ~1,600 chunks (~300 KB, rewritten by every snapshot).
const BOUNDARY_BITS: u32 = 6;

/// One chunk of a snapshot's file list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// The object holding the entries (JSON), by its SHA-256.
    pub hash: String,
    pub files: u64,
    pub bytes: u64,
    /// The first entry's source and path: where this chunk's range begins.
    #[serde(default, skip_serializing_if = "Source::is_library")]
    pub source: Source,
    pub first: String,
    /// Fingerprint of the entries' metadata (see the module doc).
    pub fp: String,
    /// The newest mtime among the entries (ns).
    pub max_mtime: i64,
}

impl ChunkRef {
    pub(crate) fn key(&self) -> (Source, &str) {
        (self.source, self.first.as_str())
    }
}

/// Whether a chunk ends after this entry.
fn is_boundary(source: Source, path: &str) -> bool {
    // FNV-1a: stable across versions and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in [source as u8].iter().chain(path.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // FNV's low bits mix poorly (they depend only on the inputs' low bits): finish with
    // splitmix64's mixer and test the top bits. Measured before this: a run of 356
    // entries without a boundary among 2,000 similar names.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    h >> (64 - BOUNDARY_BITS) == 0
}

/// Split sorted entries into chunks at the content-defined boundaries: the index range
/// of each chunk.
pub(crate) fn split_ranges(entries: &[Entry]) -> Vec<Range<usize>> {
    use rayon::prelude::*;
    // Hashing every path is most of the work: on all cores (a first backup of 100k
    // files spent ~20 ms here with one core busy and the other idle).
    let boundary: Vec<bool> = entries.par_iter().map(|e| is_boundary(e.source, &e.path)).collect();
    let mut out = Vec::new();
    let mut start = 0;
    for (i, e) in entries.iter().enumerate() {
        if i > start && entries[i - 1].source != e.source {
            out.push(start..i);
            start = i;
        }
        if boundary[i] {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < entries.len() {
        out.push(start..entries.len());
    }
    out
}

/// Incremental fingerprint of entries' metadata, in order.
#[derive(Default)]
pub(crate) struct Fingerprint(Sha256);

impl Fingerprint {
    #[allow(clippy::too_many_arguments)]
    pub fn add(&mut self, source: Source, path: &str, size: u64, mtime: i64, mode: u32, ino: u64, ctime: i64) {
        let h = &mut self.0;
        h.update([source as u8]);
        h.update((path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update(size.to_le_bytes());
        h.update(mtime.to_le_bytes());
        h.update(mode.to_le_bytes());
        h.update(ino.to_le_bytes());
        h.update(ctime.to_le_bytes());
    }

    pub fn add_entry(&mut self, e: &Entry) {
        self.add(e.source, &e.path, e.size, e.mtime, e.mode, e.ino, e.ctime);
    }

    pub fn finish(self) -> String {
        hex::encode(&self.0.finalize()[..16])
    }
}

impl Repo {
    /// Store one chunk (if the repository does not hold it yet). Returns its reference
    /// and the compressed bytes added.
    pub(crate) fn store_chunk(&self, entries: &[Entry]) -> Result<(ChunkRef, u64)> {
        let first = entries.first().ok_or_else(|| Error::Corrupt("an empty chunk".into()))?;
        let body = serde_json::to_vec(entries).map_err(|e| Error::Corrupt(e.to_string()))?;
        let hash = super::hex_of(&Sha256::digest(&body));
        // A frame of its own, not in a block: damage to one chunk stays in that chunk.
        // An existing copy is reused only if it reads back intact (as file contents are).
        let intact = self.has_object(&hash) && self.read_object(&hash).is_ok();
        let added = if intact { 0 } else { self.write_frame(&hash, &body)? };
        let mut fp = Fingerprint::default();
        entries.iter().for_each(|e| fp.add_entry(e));
        let chunk = ChunkRef {
            hash,
            files: entries.len() as u64,
            bytes: entries.iter().map(|e| e.size).sum(),
            source: first.source,
            first: first.path.clone(),
            fp: fp.finish(),
            max_mtime: entries.iter().map(|e| e.mtime).max().unwrap_or(0),
        };
        Ok((chunk, added))
    }

    /// A chunk's entries, checked against its hash and its reference.
    pub(crate) fn load_chunk(&self, chunk: &ChunkRef) -> std::result::Result<Vec<Entry>, String> {
        let body = self.read_object(&chunk.hash)?;
        let entries: Vec<Entry> =
            serde_json::from_slice(&body).map_err(|e| format!("the file list chunk cannot be parsed ({e})"))?;
        let first_ok = entries.first().is_some_and(|e| e.source == chunk.source && e.path == chunk.first);
        if entries.len() as u64 != chunk.files || !first_ok {
            return Err("the file list chunk does not match the manifest".into());
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(entries: Vec<Entry>) -> Vec<Vec<Entry>> {
        split_ranges(&entries).into_iter().map(|r| entries[r].to_vec()).collect()
    }

    fn entry(path: &str) -> Entry {
        Entry {
            path: path.into(),
            source: Source::Library,
            size: 1,
            mtime: 1,
            mode: 0o644,
            hash: "00".into(),
            ino: 1,
            ctime: 1,
        }
    }

    #[test]
    fn boundaries_depend_on_the_entries_not_their_position() {
        let mut names: Vec<String> = (0..20_000).map(|i| format!("f/{i:05}.blueprint.yaml")).collect();
        names.sort();
        let all: Vec<Entry> = names.iter().map(|n| entry(n)).collect();
        let chunks = split(all.clone());
        assert!(chunks.len() > 200 && chunks.len() < 450, "about one chunk per 64 entries: {}", chunks.len());
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), all.len());
        // Insert one entry in the middle: every chunk but the one it lands in is unchanged.
        let mut more = all.clone();
        more.insert(10_000, entry("f/10000.5.blueprint.yaml"));
        let after = split(more);
        let firsts = |c: &[Vec<Entry>]| c.iter().map(|c| c[0].path.clone()).collect::<Vec<_>>();
        let changed = after.iter().filter(|c| !chunks.contains(c)).count();
        assert_eq!(changed, 1, "one chunk changed; {:?} vs {:?}", firsts(&chunks).len(), firsts(&after).len());
    }

    #[test]
    fn similar_names_still_make_chunks_of_about_the_same_size() {
        // Names that differ only in a few digits (the usual library) must not make long
        // runs without a boundary: one changed file would rewrite a huge chunk.
        let mut names: Vec<String> =
            (0..20_000).map(|i| format!("Blueprints/personal/g{}/flow{i:05}.blueprint.yaml", i % 9)).collect();
        names.sort();
        let chunks = split(names.iter().map(|n| entry(n)).collect());
        let longest = chunks.iter().map(Vec::len).max().unwrap();
        assert!(longest < 64 * 8, "a run of {longest} entries without a boundary");
    }

    #[test]
    fn a_source_change_ends_a_chunk() {
        let mut d = entry("trash/x");
        d.source = Source::Data;
        let chunks = split(vec![entry("a"), d]);
        assert_eq!(chunks.len(), 2);
    }
}
