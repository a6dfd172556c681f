//! The sync protocol's data and its merge, with no I/O: a change log per device, the
//! known history of every blueprint as a state-based CRDT (merging is a union, so
//! order, repeats and snapshots never change the result), and the deterministic view
//! every device computes from it.
//!
//! A blueprint is tracked by its *sync id*: its YAML/companion `id` when it has one
//! (so renames keep it), `path:<path>` for blueprints without an id, `conflict:<ref>`
//! for the copy kept when two edits collided. A change names the changes it was
//! based on (`parents`); the *heads* of a blueprint are the changes nothing is based
//! on yet. One head: that is the blueprint. Several heads: they were made
//! concurrently and are merged field by field (the latest edit's content, the latest
//! move's path, a delete loses to an edit); two edits with different content are a
//! conflict, resolved by [`resolution_changes`] into "keep the winner at its path,
//! keep the other as `NAME (conflict DEVICE).blueprint.yaml`" — never a silent loss.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Format version of log batches and snapshots.
pub const FORMAT: u32 = 1;

pub const PATH_ID_PREFIX: &str = "path:";
pub const CONFLICT_ID_PREFIX: &str = "conflict:";

/// One change to one blueprint, as written to a device's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Unique: `<device>/<seq>/<n>` (device logs are never shared, so refs never clash).
    #[serde(rename = "ref")]
    pub reference: String,
    /// The sync id of the blueprint.
    pub id: String,
    /// The changes this one was based on (empty: a creation).
    pub parents: Vec<String>,
    /// Library-relative path; `None`: deleted (a tombstone).
    pub path: Option<String>,
    /// SHA-256 of the YAML bytes (the blob's name).
    pub yaml: Option<String>,
    /// SHA-256 of the companion `.meta.json`, if the blueprint has one.
    pub meta: Option<String>,
    /// The content (YAML or companion) differs from what it was based on.
    pub edited: bool,
    /// The path differs from what it was based on.
    pub moved: bool,
    /// Milliseconds since the epoch on the writing device (orders concurrent heads).
    pub time: i64,
    pub device: String,
    /// Human name of the device (used in conflict copies' names).
    #[serde(default)]
    pub device_name: String,
    /// The change that introduced this content (itself for an edit or creation; the
    /// base's origin for a move or a merge). Empty: itself.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub origin: String,
    /// Content origins this change overwrote, having seen them (an edit replaces what
    /// it was based on): such content is never a conflict candidate again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<String>,
}

impl Change {
    fn order(&self) -> (i64, &str, &str) {
        (self.time, &self.device, &self.reference)
    }

    pub fn origin(&self) -> &str {
        if self.origin.is_empty() { &self.reference } else { &self.origin }
    }

    pub fn content(&self) -> (Option<&str>, Option<&str>) {
        (self.yaml.as_deref(), self.meta.as_deref())
    }
}

/// One object of a device's log: `logs/<device>/<seq>.json`, written once.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogBatch {
    pub format: u32,
    pub device: String,
    pub seq: u64,
    pub time: i64,
    pub changes: Vec<Change>,
}

/// What is known of one blueprint's history: the head changes, and every change
/// known to be superseded (so a late or repeated change is placed correctly).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub heads: BTreeMap<String, Change>,
    pub superseded: BTreeSet<String>,
    /// Content origins some change overwrote after seeing them.
    #[serde(default)]
    pub replaced: BTreeSet<String>,
}

/// Everything a device knows: the history of every sync id.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Known {
    pub ids: BTreeMap<String, History>,
}

impl Known {
    /// Add one change; `false` when it was already known (or already superseded).
    pub fn add(&mut self, change: Change) -> bool {
        let history = self.ids.entry(change.id.clone()).or_default();
        if history.heads.contains_key(&change.reference) {
            return false;
        }
        // Parents are superseded even when this change already is (it arrived after a
        // change based on it): otherwise an older change could come back as a head.
        for parent in &change.parents {
            history.heads.remove(parent);
            history.superseded.insert(parent.clone());
        }
        history.replaced.extend(change.replaces.iter().cloned());
        if history.superseded.contains(&change.reference) {
            return false;
        }
        history.heads.insert(change.reference.clone(), change);
        true
    }

    /// Union with another device's knowledge (a snapshot).
    pub fn merge(&mut self, other: &Known) {
        for (id, theirs) in &other.ids {
            let ours = self.ids.entry(id.clone()).or_default();
            ours.superseded.extend(theirs.superseded.iter().cloned());
            ours.replaced.extend(theirs.replaced.iter().cloned());
            ours.heads.retain(|r, _| !theirs.superseded.contains(r));
            for change in theirs.heads.values() {
                self.add(change.clone());
            }
        }
    }

    /// Every live blueprint's view and the unresolved conflicts, deterministically.
    pub fn views(&self) -> BTreeMap<String, Merged> {
        self.ids.iter().map(|(id, h)| (id.clone(), merge_heads(h))).collect()
    }

    pub fn heads_of(&self, id: &str) -> Vec<String> {
        self.ids.get(id).map(|h| h.heads.keys().cloned().collect()).unwrap_or_default()
    }
}

/// A live blueprint as every device should have it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub path: String,
    pub yaml: String,
    pub meta: Option<String>,
    /// The change that introduced this content.
    pub origin: String,
}

/// The merge of one blueprint's heads.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// `None`: deleted (every head is a tombstone) or never seen.
    pub view: Option<View>,
    /// Concurrent edits whose content lost to the winner's: each needs a conflict copy.
    pub losers: Vec<Change>,
    /// The device name of the winning edit (for path-collision copies).
    pub device_name: String,
}

fn merge_heads(history: &History) -> Merged {
    let mut heads: Vec<&Change> = history.heads.values().collect();
    heads.sort_by(|a, b| a.order().cmp(&b.order()));
    let live: Vec<&Change> = heads.iter().copied().filter(|c| c.path.is_some() && c.yaml.is_some()).collect();
    let Some(latest) = live.last() else {
        return Merged { view: None, losers: Vec::new(), device_name: String::new() };
    };
    // Content some head overwrote after seeing it is out of the running; of the rest,
    // the latest wins and every other distinct content is a conflict.
    let candidates: Vec<&Change> = live.iter().copied().filter(|c| !history.replaced.contains(c.origin())).collect();
    let content = candidates.last().unwrap_or(latest);
    let placed = live.iter().rev().find(|c| c.moved).unwrap_or(latest);
    let mut losers: Vec<Change> = Vec::new();
    for c in candidates.iter().filter(|c| c.origin() != content.origin() && c.content() != content.content()) {
        if !losers.iter().any(|l| l.origin() == c.origin() || l.content() == c.content()) {
            losers.push((*c).clone());
        }
    }
    Merged {
        view: Some(View {
            path: placed.path.clone().unwrap_or_default(),
            yaml: content.yaml.clone().unwrap_or_default(),
            meta: content.meta.clone(),
            origin: content.origin().to_owned(),
        }),
        losers,
        device_name: content.device_name.clone(),
    }
}

/// `Blueprints/x/NAME.blueprint.yaml` → `Blueprints/x/NAME (conflict DEVICE).blueprint.yaml`
/// (`NAME (conflict DEVICE 2)…` and so on while `taken` says the name is in use).
pub fn conflict_path(path: &str, device_name: &str, taken: &dyn Fn(&str) -> bool) -> String {
    const SUFFIX: &str = ".blueprint.yaml";
    // Whatever the name holds (it came from another device), the copy's name stays one
    // name: no separator, no `..`, nothing Windows refuses, no control character.
    let device: String = device_name
        .chars()
        .map(|c| if c.is_alphanumeric() || " .-_'+,;=@#&()[]{}!~$%^".contains(c) { c } else { '-' })
        .take(40)
        .collect();
    let device = device.trim().to_owned();
    let device = if device.is_empty() { "other device".to_owned() } else { device };
    let stem = path.strip_suffix(SUFFIX).unwrap_or(path);
    let (folder, name) = match stem.rsplit_once('/') {
        Some((f, n)) => (format!("{f}/"), n),
        None => (String::new(), stem),
    };
    let with = |extra: &str| {
        // A file name stays within 255 bytes (the companion's is 5 longer): cut the stem.
        let tail = format!(" (conflict {device}{extra}){SUFFIX}");
        let mut name = name.to_owned();
        while name.len() + tail.len() + 5 > 255 && name.pop().is_some() {}
        format!("{folder}{}{tail}", name.trim_end())
    };
    let mut candidate = with("");
    let mut n = 2;
    while taken(&candidate) {
        candidate = with(&format!(" {n}"));
        n += 1;
    }
    candidate
}

/// Case- and normalisation-insensitive path identity: two such paths are one file
/// on macOS and Windows, so they must not hold two blueprints.
pub fn fold_path(path: &str) -> String {
    path.to_lowercase()
}

/// Changes that settle what [`Known::views`] shows: for every content conflict, a
/// copy (a new blueprint `conflict:<loser ref>` with the loser's content) and a
/// merge change on the blueprint superseding all its heads; for two live blueprints
/// on one path, a move of all but one to a conflict name. Deterministic, so two
/// devices resolving the same conflict write equal changes, which merge cleanly.
pub fn resolution_changes(
    known: &Known,
    make_ref: &mut dyn FnMut() -> String,
    device: &str,
    device_name: &str,
    time: i64,
) -> Vec<Change> {
    let views = known.views();
    let mut taken: BTreeSet<String> =
        views.values().filter_map(|m| m.view.as_ref()).map(|v| fold_path(&v.path)).collect();
    let mut out = Vec::new();
    for (id, merged) in &views {
        let Some(view) = &merged.view else { continue };
        if merged.losers.is_empty() {
            continue;
        }
        for loser in &merged.losers {
            let copy_id = format!("{CONFLICT_ID_PREFIX}{}", loser.origin());
            if known.ids.get(&copy_id).is_some_and(|h| !h.heads.is_empty() || !h.superseded.is_empty()) {
                continue;
            }
            let base = loser.path.as_deref().unwrap_or(&view.path);
            let path = conflict_path(base, &loser.device_name, &|p| taken.contains(&fold_path(p)));
            taken.insert(fold_path(&path));
            out.push(Change {
                reference: make_ref(),
                id: copy_id,
                parents: Vec::new(),
                path: Some(path),
                yaml: loser.yaml.clone(),
                meta: loser.meta.clone(),
                edited: true,
                moved: false,
                time,
                device: device.to_owned(),
                device_name: device_name.to_owned(),
                origin: String::new(),
                replaces: Vec::new(),
            });
        }
        out.push(Change {
            reference: make_ref(),
            id: id.clone(),
            parents: known.heads_of(id),
            path: Some(view.path.clone()),
            yaml: Some(view.yaml.clone()),
            meta: view.meta.clone(),
            edited: false,
            moved: false,
            time,
            device: device.to_owned(),
            device_name: device_name.to_owned(),
            origin: view.origin.clone(),
            // The losers live on in their copies.
            replaces: merged.losers.iter().map(|l| l.origin().to_owned()).collect(),
        });
    }
    // Two live blueprints on one path: the smallest sync id keeps it.
    let mut by_path: BTreeMap<String, Vec<(&String, &View, &str)>> = BTreeMap::new();
    for (id, merged) in &views {
        if let Some(view) = &merged.view {
            by_path.entry(fold_path(&view.path)).or_default().push((id, view, &merged.device_name));
        }
    }
    for group in by_path.values().filter(|g| g.len() > 1) {
        for (id, view, by) in group.iter().skip(1) {
            if out.iter().any(|c| &c.id == *id) {
                continue;
            }
            let path = conflict_path(&view.path, by, &|p| taken.contains(&fold_path(p)));
            taken.insert(fold_path(&path));
            out.push(Change {
                reference: make_ref(),
                id: (*id).clone(),
                parents: known.heads_of(id),
                path: Some(path),
                yaml: Some(view.yaml.clone()),
                meta: view.meta.clone(),
                edited: false,
                moved: true,
                time,
                device: device.to_owned(),
                device_name: device_name.to_owned(),
                origin: view.origin.clone(),
                replaces: Vec::new(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(r: &str, id: &str, parents: &[&str], path: Option<&str>, yaml: &str, time: i64) -> Change {
        Change {
            reference: r.into(),
            id: id.into(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
            path: path.map(Into::into),
            yaml: path.map(|_| yaml.to_owned()),
            meta: None,
            edited: true,
            moved: false,
            time,
            device: r.split('/').next().unwrap_or_default().into(),
            device_name: format!("dev {}", r.split('/').next().unwrap_or_default()),
            origin: String::new(),
            replaces: parents.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn union_is_order_independent_and_idempotent() {
        let c1 = change("a/1/0", "x", &[], Some("p.blueprint.yaml"), "h1", 1);
        let c2 = change("a/2/0", "x", &["a/1/0"], Some("p.blueprint.yaml"), "h2", 2);
        let c3 = change("b/1/0", "x", &["a/2/0"], Some("p.blueprint.yaml"), "h3", 3);
        let mut k1 = Known::default();
        for c in [&c1, &c2, &c3] {
            k1.add(c.clone());
        }
        let mut k2 = Known::default();
        for c in [&c3, &c1, &c2, &c1] {
            k2.add(c.clone());
        }
        assert_eq!(k1, k2);
        assert_eq!(k1.heads_of("x"), vec!["b/1/0".to_string()]);
        // A snapshot holding only the head still supersedes an older head we hold.
        let mut behind = Known::default();
        behind.add(c1.clone());
        behind.merge(&k1);
        assert_eq!(behind.heads_of("x"), vec!["b/1/0".to_string()]);
    }

    #[test]
    fn concurrent_edits_are_a_conflict_with_both_kept() {
        let mut k = Known::default();
        k.add(change("a/1/0", "x", &[], Some("f/N.blueprint.yaml"), "base", 1));
        k.add(change("a/2/0", "x", &["a/1/0"], Some("f/N.blueprint.yaml"), "mine", 5));
        k.add(change("b/1/0", "x", &["a/1/0"], Some("f/N.blueprint.yaml"), "theirs", 7));
        let merged = &k.views()["x"];
        assert_eq!(merged.view.as_ref().unwrap().yaml, "theirs");
        assert_eq!(merged.losers.len(), 1);
        let mut n = 0;
        let fixes = resolution_changes(
            &k,
            &mut || {
                n += 1;
                format!("c/1/{n}")
            },
            "c",
            "dev c",
            9,
        );
        assert_eq!(fixes.len(), 2);
        assert_eq!(fixes[0].id, "conflict:a/2/0");
        assert_eq!(fixes[0].path.as_deref(), Some("f/N (conflict dev a).blueprint.yaml"));
        assert_eq!(fixes[0].yaml.as_deref(), Some("mine"));
        // Two devices resolving the same conflict agree.
        let mut other = k.clone();
        let mut m = 0;
        let fixes2 = resolution_changes(
            &k,
            &mut || {
                m += 1;
                format!("d/1/{m}")
            },
            "d",
            "dev d",
            10,
        );
        for c in fixes.into_iter().chain(fixes2) {
            other.add(c);
        }
        let views = other.views();
        assert!(views.values().all(|m| m.losers.is_empty()));
        assert_eq!(views["x"].view.as_ref().unwrap().yaml, "theirs");
        assert_eq!(views["conflict:a/2/0"].view.as_ref().unwrap().yaml, "mine");
        assert!(resolution_changes(&other, &mut || "e/1/0".into(), "e", "e", 11).is_empty());
    }

    #[test]
    fn move_on_one_side_and_edit_on_the_other_both_survive() {
        let mut k = Known::default();
        k.add(change("a/1/0", "x", &[], Some("old.blueprint.yaml"), "v1", 1));
        let mut moved = change("a/2/0", "x", &["a/1/0"], Some("new.blueprint.yaml"), "v1", 5);
        moved.edited = false;
        moved.moved = true;
        moved.origin = "a/1/0".into();
        moved.replaces.clear();
        k.add(moved);
        k.add(change("b/1/0", "x", &["a/1/0"], Some("old.blueprint.yaml"), "v2", 3));
        let merged = &k.views()["x"];
        let view = merged.view.clone().unwrap();
        assert_eq!((view.path.as_str(), view.yaml.as_str()), ("new.blueprint.yaml", "v2"));
        assert!(merged.losers.is_empty());
    }

    #[test]
    fn delete_loses_to_a_concurrent_edit_and_wins_alone() {
        let mut k = Known::default();
        k.add(change("a/1/0", "x", &[], Some("p.blueprint.yaml"), "v1", 1));
        k.add(change("a/2/0", "x", &["a/1/0"], None, "", 9));
        assert_eq!(k.views()["x"].view, None);
        k.add(change("b/1/0", "x", &["a/1/0"], Some("p.blueprint.yaml"), "v2", 3));
        assert_eq!(k.views()["x"].view.as_ref().unwrap().yaml, "v2");
    }

    #[test]
    fn two_blueprints_on_one_path_are_separated() {
        let mut k = Known::default();
        k.add(change("a/1/0", "path:p.blueprint.yaml", &[], Some("p.blueprint.yaml"), "v1", 1));
        k.add(change("b/1/0", "idb", &[], Some("P.blueprint.yaml"), "v2", 2));
        let fixes = resolution_changes(&k, &mut || "c/1/0".into(), "c", "c", 3);
        assert_eq!(fixes.len(), 1);
        assert_eq!(fixes[0].id, "path:p.blueprint.yaml");
        assert_eq!(fixes[0].path.as_deref(), Some("p (conflict dev a).blueprint.yaml"));
    }

    #[test]
    fn a_merged_conflict_still_conflicts_with_a_third_concurrent_edit() {
        let mut k = Known::default();
        k.add(change("a/1/0", "x", &[], Some("p.blueprint.yaml"), "from a", 1));
        k.add(change("b/1/0", "x", &[], Some("p.blueprint.yaml"), "from b", 2));
        for c in resolution_changes(&k, &mut || "b/2/0".into(), "b", "b", 3) {
            k.add(c);
        }
        k.add(change("c/1/0", "x", &[], Some("p.blueprint.yaml"), "from c", 4));
        let mut n = 0;
        for c in resolution_changes(
            &k,
            &mut || {
                n += 1;
                format!("c/2/{n}")
            },
            "c",
            "c",
            5,
        ) {
            k.add(c);
        }
        let contents: BTreeSet<String> =
            k.views().values().filter_map(|m| m.view.as_ref()).map(|v| v.yaml.clone()).collect();
        assert_eq!(contents, ["from a", "from b", "from c"].iter().map(|s| s.to_string()).collect());
    }
}
