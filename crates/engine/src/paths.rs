//! Where things live: the default library folder, the data dir, and each library's
//! private area inside the data dir (index, trash, version history, batch journal).
//! Keeping these out of the library folder means a synced or shared folder can
//! never corrupt them, and the library holds only the user's files.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The folders every library has.
pub const LIBRARY_FOLDERS: &[&str] = &["Blueprints/personal", "Blueprints/shared", "Templates", "Exports"];

/// `<Documents>/Blueprint Vault`, or `~/Blueprint Vault` where there is no Documents folder.
pub fn default_library_dir() -> Option<PathBuf> {
    let user = directories::UserDirs::new()?;
    let base = user.document_dir().map(Path::to_path_buf).unwrap_or_else(|| user.home_dir().to_path_buf());
    Some(base.join("Blueprint Vault"))
}

/// `$BPV_DATA_DIR`, else the OS data dir for the app.
pub fn default_data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BPV_DATA_DIR").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("dev", "Blueprint Vault", "Blueprint Vault").map(|p| p.data_dir().to_path_buf())
}

/// One private area per library, named after the library's folder name plus a hash
/// of its absolute path, so two libraries never share an index.
pub fn library_area(data_dir: &Path, library_root: &Path) -> PathBuf {
    let digest = Sha256::digest(library_root.as_os_str().as_encoded_bytes());
    let name: String = library_root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    data_dir.join("libraries").join(format!("{name}-{}", &hex::encode(digest)[..12]))
}
