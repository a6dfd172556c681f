//! Which credentials each blueprint references (`${secret:NAME}`), kept in the index so
//! `bpv creds list` and the app's missing-reference flags need not read every blueprint.
//!
//! Filled from the same documents as the rest of the index (`IndexDoc::secret_refs`), at
//! save, reconcile and reindex time: a rebuildable cache like everything here. Encrypted
//! blueprints have no rows: the names they reference are part of their content, which
//! never reaches the index (`secrets` reads those in memory, with the key).

use rusqlite::params;

use super::{Index, db_err};
use crate::error::Result;

impl Index {
    /// Every reference of a plain blueprint: (path, name), by path, then in the order the
    /// blueprint mentions them.
    pub fn secret_references(&self) -> Result<Vec<(String, String)>> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT i.path, r.name FROM item_secret_refs r JOIN items i ON i.rowid = r.item_rowid \
                 ORDER BY i.path, r.position",
            )
            .map_err(db_err)?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db_err)
    }

    /// The credentials one blueprint references, in order (none for an encrypted one).
    pub fn secret_references_of(&self, path: &str) -> Result<Vec<String>> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT r.name FROM item_secret_refs r JOIN items i ON i.rowid = r.item_rowid \
                 WHERE i.path = ?1 ORDER BY r.position",
            )
            .map_err(db_err)?;
        let rows = stmt.query_map(params![path], |r| r.get(0)).map_err(db_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db_err)
    }

    /// The paths of the encrypted blueprints (their references are read with the key).
    pub fn encrypted_paths(&self) -> Result<Vec<String>> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached("SELECT path FROM items WHERE encrypted <> 0 ORDER BY path").map_err(db_err)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(db_err)?;
        rows.collect::<rusqlite::Result<_>>().map_err(db_err)
    }
}
