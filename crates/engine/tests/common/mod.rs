//! Helpers shared by the engine's integration tests.
#![allow(dead_code)] // each test crate uses its own subset

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Every file and every folder under `dir` (symlinks not followed), in no particular order.
fn walk(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut files, mut folders) = (Vec::new(), Vec::new());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                folders.push(p.clone());
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    (files, folders)
}

/// Every file under `dir` (symlinks not followed), in no particular order.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    walk(dir).0
}

/// Every folder under `dir` (symlinks not followed), relative to it.
pub fn folders_under(dir: &Path) -> BTreeSet<String> {
    walk(dir).1.iter().map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned()).collect()
}

/// Relative path → bytes of every file under `dir`.
pub fn bytes_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(dir)
        .into_iter()
        .map(|p| (p.strip_prefix(dir).unwrap().to_string_lossy().into_owned(), fs::read(&p).unwrap()))
        .collect()
}

/// Incompressible bytes (xorshift).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
