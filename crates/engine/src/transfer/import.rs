//! Import: the dry-run plan (every item classified, nothing written) and applying it
//! (one all-or-nothing batch). See the module docs of `transfer`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use rayon::prelude::*;

use serde::{Deserialize, Serialize};

use super::source::{self, Candidate};
use super::{CancelToken, Expect, Limits, Progress, RawPut, check_cancel, report};
use crate::blueprint::{self, Companion};
use crate::error::{Error, Result};
use crate::index::{ListQuery, Sort};
use crate::item::{BLUEPRINT_SUFFIX, companion_path};
use crate::key::Key;
use crate::library::{Library, blueprint_key};
use crate::store::content_hash;

/// Where imports go when no `into` folder is given (and the source is not one of our
/// bundles, whose entries carry their library paths).
pub const DEFAULT_INTO: &str = "Blueprints/personal";

/// What to do with an item that conflicts with the library.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnConflict {
    /// Leave the library's blueprint alone (the default).
    #[default]
    Skip,
    /// Import under a free name: `name (2).blueprint.yaml`, `name (3)…`.
    Rename,
    /// Replace the library's blueprint (its previous content is kept in its history).
    Overwrite,
}

/// A per-item choice the app's report view can make (overrides `on_conflict`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Skip,
    Rename,
    Overwrite,
}

#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Library folder to import into (default `Blueprints/personal`; our bundles keep
    /// their own paths unless this is set).
    pub into: Option<String>,
    pub on_conflict: OnConflict,
    /// Per-item decisions by `PlanItem::n`: for conflicts; `Skip` also leaves out a new item.
    pub decisions: HashMap<usize, Decision>,
    pub limits: Limits,
    /// Record where each blueprint came from in its companion's `provenance` (default
    /// on through [`ImportOptions::new`]). Off: companions are imported byte for byte.
    pub record_provenance: bool,
    pub cancel: Option<CancelToken>,
}

impl ImportOptions {
    pub fn new() -> Self {
        ImportOptions { record_provenance: true, ..Default::default() }
    }
}

/// The dry-run classification of one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Not in the library yet.
    New,
    /// The same content is already in the library (at the target path, or under the same
    /// id elsewhere): importing it again changes nothing.
    Identical,
    /// The target path, or the blueprint's id, is taken by different content.
    Conflict,
    /// Not a valid blueprint (the error has its line).
    Invalid,
    /// Unsafe or over a limit; never read or written.
    Refused,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanItem {
    /// Stable number of the item in this plan (for per-item decisions).
    pub n: usize,
    /// The file, or `bundle.zip!path/in/bundle`.
    pub source: String,
    /// Library path it would be written to (absent when refused before a path existed).
    pub target: Option<String>,
    pub class: Class,
    /// Why it is invalid, refused or in conflict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The library blueprint it is identical to or conflicts with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A JSON blueprint, written to the library as an equivalent YAML document.
    pub converted_from_json: bool,
    pub has_companion: bool,
    pub size: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceError {
    pub source: String,
    pub error: String,
}

/// The dry-run report. Serialisable for the app's report view; keeps what it needs to
/// apply in memory (not serialised).
#[derive(Clone, Debug, Serialize)]
pub struct ImportPlan {
    pub items: Vec<PlanItem>,
    /// Sources that could not be read at all (missing file, not a zip, archive-level
    /// refusals such as too many entries).
    pub errors: Vec<SourceError>,
    /// Files that are not blueprints and were left alone.
    pub ignored: Vec<String>,
    pub counts: Counts,
    #[serde(skip)]
    payloads: Vec<Option<Payload>>,
    #[serde(skip)]
    provenance_time: String,
    #[serde(skip)]
    existing_folded: HashSet<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub new: usize,
    pub identical: usize,
    pub conflict: usize,
    pub invalid: usize,
    pub refused: usize,
}

#[derive(Clone, Debug)]
struct Payload {
    yaml: Vec<u8>,
    companion: Option<Companion>,
    companion_bytes: Option<Vec<u8>>,
    origin: String,
    entry: Option<String>,
    /// Hash of what is at `target` now (conflicts at the same path).
    target_hash: Option<String>,
    /// For an id conflict: the other path and its hash.
    id_conflict: Option<(String, String)>,
}

/// The result of applying a plan: the JSON report of VISION.md plus details.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Library paths written (new, renamed or overwritten).
    pub imported: Vec<String>,
    /// Library paths already holding the same content.
    pub identical: Vec<String>,
    /// Library paths left alone because of a conflict.
    pub skipped: Vec<String>,
    /// Invalid and refused items and unreadable sources, with reasons.
    pub errors: Vec<SourceError>,
    /// Conflicting items written under a new name.
    pub renamed: Vec<Renamed>,
    /// Library paths replaced.
    pub overwritten: Vec<String>,
    /// Imported paths that came from JSON blueprints (written as YAML).
    pub converted: Vec<String>,
    pub dry_run: bool,
    pub millis: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Renamed {
    pub from: String,
    pub to: String,
}

impl Library {
    /// The dry run: read every source and classify every item. Writes nothing.
    pub fn import_plan(
        &self,
        sources: &[PathBuf],
        opts: &ImportOptions,
        progress: Option<Progress<'_>>,
    ) -> Result<ImportPlan> {
        let mut read_tick = |n: usize| report(progress, "reading", n, n);
        let collected = source::collect(sources, &opts.limits, &opts.cancel, &mut read_tick)?;
        let into = match &opts.into {
            Some(f) => Some(Key::new(f.trim_matches('/'))?.into_string()),
            None => None,
        };
        let states = self.index().file_states()?;
        let ids = self.ids()?;
        let folded_existing: HashMap<String, String> =
            states.keys().map(|k| (super::bundle::fold(k), k.clone())).collect();
        let mut plan = ImportPlan {
            items: Vec::new(),
            errors: collected.errors,
            ignored: collected.ignored,
            counts: Counts::default(),
            payloads: Vec::new(),
            provenance_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            existing_folded: folded_existing.keys().cloned().collect(),
        };
        for r in collected.refused {
            let n = plan.items.len();
            plan.items.push(PlanItem {
                n,
                source: r.source,
                target: None,
                class: Class::Refused,
                reason: Some(r.reason),
                line: None,
                existing: None,
                id: None,
                name: None,
                converted_from_json: false,
                has_companion: false,
                size: 0,
                hash: String::new(),
            });
            plan.payloads.push(None);
        }
        // Targets claimed by earlier items of this import (folded name → hash).
        let mut claimed: HashMap<String, (String, String)> = HashMap::new();
        let total = collected.candidates.len();
        let checked = std::sync::atomic::AtomicUsize::new(0);
        let cancelled = || opts.cancel.as_ref().is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed));
        let prepared: Vec<Prepared> = collected
            .candidates
            .into_par_iter()
            .map(|c| {
                if cancelled() {
                    return Prepared::Done(Box::new(cancelled_item()));
                }
                let done = checked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if done.is_multiple_of(64) {
                    report(progress, "checking", done, total);
                }
                prepare(c, into.as_deref())
            })
            .collect();
        check_cancel(&opts.cancel)?;
        for p in prepared {
            let (item, payload) = self.classify(p, &states, &ids, &folded_existing, &mut claimed);
            let n = plan.items.len();
            plan.items.push(PlanItem { n, ..item });
            plan.payloads.push(payload);
        }
        report(progress, "checking", total, total);
        for i in &plan.items {
            match i.class {
                Class::New => plan.counts.new += 1,
                Class::Identical => plan.counts.identical += 1,
                Class::Conflict => plan.counts.conflict += 1,
                Class::Invalid => plan.counts.invalid += 1,
                Class::Refused => plan.counts.refused += 1,
            }
        }
        Ok(plan)
    }

    /// Every id in the library with its path and hash (first path wins).
    fn ids(&self) -> Result<HashMap<String, (String, String)>> {
        let mut out = HashMap::new();
        let mut offset = 0;
        loop {
            let page = self.list(&ListQuery {
                folder: None,
                tags: Vec::new(),
                author: None,
                modified_from: None,
                modified_to: None,
                valid: None,
                sort: Sort::Name,
                offset,
                limit: 5000,
            })?;
            let n = page.items.len();
            for item in page.items {
                if let Some(id) = item.id.filter(|i| !i.is_empty()) {
                    out.entry(id).or_insert((item.path, item.hash));
                }
            }
            offset += n;
            if n == 0 || offset >= page.total {
                break;
            }
        }
        Ok(out)
    }

    fn classify(
        &self,
        prepared: Prepared,
        states: &HashMap<String, crate::index::FileState>,
        ids: &HashMap<String, (String, String)>,
        folded_existing: &HashMap<String, String>,
        claimed: &mut HashMap<String, (String, String)>,
    ) -> (PlanItem, Option<Payload>) {
        let (mut item, mut payload, target) = match prepared {
            Prepared::Done(item) => return (*item, None),
            Prepared::Ready(item, payload, target) => (*item, *payload, target),
        };
        let hash = item.hash.clone();
        // 4. Against this import's earlier items.
        let folded = super::bundle::fold(&target);
        if let Some((other_target, other_hash)) = claimed.get(&folded) {
            if *other_hash == hash {
                item.class = Class::Identical;
                item.existing = Some(other_target.clone());
                item.reason = Some("the same blueprint appears earlier in this import".into());
                return (item, None);
            }
            item.class = Class::Conflict;
            item.existing = Some(other_target.clone());
            item.reason = Some(format!("another item of this import also goes to {other_target}"));
            return (item, Some(payload));
        }
        // 5. Against the library: the same path…
        let existing_path =
            states.contains_key(&target).then(|| target.clone()).or_else(|| folded_existing.get(&folded).cloned());
        if let Some(existing) = existing_path {
            let existing_hash = states.get(&existing).map(|s| s.hash.clone()).unwrap_or_default();
            item.existing = Some(existing.clone());
            claimed.insert(folded, (target.clone(), hash.clone()));
            if existing_hash == hash {
                item.class = Class::Identical;
                return (item, None);
            }
            item.class = Class::Conflict;
            item.reason = Some(if existing == target {
                format!("a different blueprint already exists at {existing}")
            } else {
                format!("{existing} already exists with a name that looks the same")
            });
            payload.target_hash = Some(existing_hash);
            if existing != target {
                payload.id_conflict = Some((existing.clone(), payload.target_hash.clone().unwrap_or_default()));
            }
            return (item, Some(payload));
        }
        // …or the same id elsewhere.
        if let Some(id) = &item.id
            && let Some((path, existing_hash)) = ids.get(id)
        {
            item.existing = Some(path.clone());
            claimed.insert(folded, (target.clone(), hash.clone()));
            if *existing_hash == hash {
                item.class = Class::Identical;
                item.reason = Some(format!("already in the library as {path}"));
                return (item, None);
            }
            item.class = Class::Conflict;
            item.reason =
                Some(format!("a blueprint with the same id `{id}` already exists at {path} with different content"));
            payload.id_conflict = Some((path.clone(), existing_hash.clone()));
            return (item, Some(payload));
        }
        claimed.insert(folded, (target, hash));
        item.class = Class::New;
        (item, Some(payload))
    }

    /// Apply a plan: new items are written, conflicts resolved by `opts.on_conflict` or
    /// the per-item `opts.decisions`, everything in one all-or-nothing batch. A cancel or
    /// failure leaves the library as it was (`Error::Cancelled` / the error).
    pub fn import_apply(
        &self,
        plan: &ImportPlan,
        opts: &ImportOptions,
        progress: Option<Progress<'_>>,
    ) -> Result<ImportReport> {
        let start = std::time::Instant::now();
        let mut rep = ImportReport::default();
        rep.errors.extend(plan.errors.iter().cloned());
        let mut puts: Vec<RawPut> = Vec::new();
        let mut taken: HashSet<String> = HashSet::new();
        let states = self.index().file_states()?;
        let existing_folded: HashSet<String> = states.keys().map(|k| super::bundle::fold(k)).collect();
        for (item, payload) in plan.items.iter().zip(&plan.payloads) {
            let target = item.target.clone().unwrap_or_default();
            match item.class {
                Class::Invalid | Class::Refused => {
                    let reason = item.reason.clone().unwrap_or_default();
                    let error = match item.line {
                        Some(l) if !reason.starts_with("line ") => format!("line {l}: {reason}"),
                        _ => reason,
                    };
                    rep.errors.push(SourceError { source: item.source.clone(), error });
                }
                Class::Identical => rep.identical.push(item.existing.clone().unwrap_or(target)),
                Class::New if opts.decisions.get(&item.n) == Some(&Decision::Skip) => rep.skipped.push(target),
                Class::New => {
                    let Some(p) = payload else { continue };
                    taken.insert(super::bundle::fold(&target));
                    self.push_item(&mut puts, &target, p, Expect::Absent, opts, &plan.provenance_time);
                    rep.imported.push(target.clone());
                    if item.converted_from_json {
                        rep.converted.push(target);
                    }
                }
                Class::Conflict => {
                    let Some(p) = payload else { continue };
                    let decision = opts.decisions.get(&item.n).copied().unwrap_or(match opts.on_conflict {
                        OnConflict::Skip => Decision::Skip,
                        OnConflict::Rename => Decision::Rename,
                        OnConflict::Overwrite => Decision::Overwrite,
                    });
                    match decision {
                        Decision::Skip => rep.skipped.push(item.existing.clone().unwrap_or(target)),
                        Decision::Overwrite => {
                            // The same id elsewhere: replace that blueprint where it is.
                            let (dest, expect) = match (&p.id_conflict, &p.target_hash) {
                                (Some((path, h)), _) => (path.clone(), Expect::Hash(h.clone())),
                                (None, Some(h)) => (target.clone(), Expect::Hash(h.clone())),
                                // Conflicts only with an earlier item of this import: skip.
                                (None, None) => {
                                    rep.skipped.push(target);
                                    continue;
                                }
                            };
                            if !taken.insert(super::bundle::fold(&dest)) {
                                rep.skipped.push(dest);
                                continue;
                            }
                            self.push_item(&mut puts, &dest, p, expect, opts, &plan.provenance_time);
                            rep.imported.push(dest.clone());
                            rep.overwritten.push(dest);
                        }
                        Decision::Rename => {
                            let dest = free_name(&target, &existing_folded, &mut taken)?;
                            self.push_item(&mut puts, &dest, p, Expect::Absent, opts, &plan.provenance_time);
                            rep.imported.push(dest.clone());
                            rep.renamed.push(Renamed { from: target, to: dest });
                        }
                    }
                }
            }
        }
        check_cancel(&opts.cancel)?;
        let total = puts.len();
        if !puts.is_empty() {
            let cancel = opts.cancel.clone();
            let mut tick = |n: usize| {
                if n.is_multiple_of(32) {
                    report(progress, "writing", n, total);
                }
                check_cancel(&cancel)
            };
            self.apply_raw(&puts, &mut tick)?;
        }
        report(progress, "writing", total, total);
        rep.millis = start.elapsed().as_millis() as u64;
        Ok(rep)
    }

    fn push_item(
        &self,
        puts: &mut Vec<RawPut>,
        dest: &str,
        p: &Payload,
        expect: Expect,
        opts: &ImportOptions,
        when: &str,
    ) {
        puts.push(RawPut { rel: dest.to_owned(), data: p.yaml.clone(), expect });
        let Some(crel) = companion_path(dest) else { return };
        if opts.record_provenance {
            let mut comp = p.companion.clone().unwrap_or_default();
            let mut prov = serde_json::Map::new();
            prov.insert("source".into(), p.origin.clone().into());
            if let Some(e) = &p.entry {
                prov.insert("entry".into(), e.clone().into());
            }
            prov.insert("imported".into(), when.into());
            comp.provenance = Some(serde_json::Value::Object(prov));
            puts.push(RawPut { rel: crel, data: blueprint::companion_to_json(&comp), expect: Expect::Any });
        } else if let Some(bytes) = &p.companion_bytes {
            puts.push(RawPut { rel: crel, data: bytes.clone(), expect: Expect::Any });
        }
    }
}

/// What can be worked out about a candidate without the library: its target, its
/// content (converted, validated) and companion. Runs in parallel.
enum Prepared {
    Done(Box<PlanItem>),
    Ready(Box<PlanItem>, Box<Payload>, String),
}

fn prepare(c: Candidate, into: Option<&str>) -> Prepared {
    let mut item = PlanItem {
        n: 0,
        source: c.source.clone(),
        target: None,
        class: Class::Invalid,
        reason: None,
        line: None,
        existing: None,
        id: None,
        name: None,
        converted_from_json: c.json,
        has_companion: c.companion.is_some(),
        size: c.data.len() as u64,
        hash: String::new(),
    };
    // 1. Where it goes.
    let target = match target_path(&c.rel, c.library_rooted, into) {
        Ok(t) => t,
        Err(e) => {
            item.class = Class::Refused;
            item.reason = Some(format!("its name cannot be used in the library: {e}"));
            return Prepared::Done(Box::new(item));
        }
    };
    item.target = Some(target.clone());
    // 2. The manifest's hash, when there is one.
    if let Some(expected) = &c.expected_sha256
        && !expected.eq_ignore_ascii_case(&content_hash(&c.data))
    {
        item.class = Class::Invalid;
        item.reason = Some("its content does not match the hash in the bundle's manifest (damaged or altered)".into());
        return Prepared::Done(Box::new(item));
    }
    // 3. The content: JSON is converted, YAML kept byte for byte.
    let yaml = if c.json {
        match super::jsonyaml::json_to_yaml(&c.data) {
            Ok(y) => y,
            Err(e) => {
                item.reason = Some(e.message.clone());
                item.line = e.line;
                return Prepared::Done(Box::new(item));
            }
        }
    } else {
        c.data
    };
    // An encrypted blueprint (exported sealed) comes in as it is: it opens with the key of
    // the library that sealed it (`bpv keys recover` with that library's kit).
    let analysis = if crate::secrets::crypto::is_sealed(&yaml) {
        blueprint::Analysis::default()
    } else {
        match blueprint::validate(&yaml) {
            Ok(a) => a,
            Err(e) => {
                item.reason = Some(e.to_string());
                item.line = e.line;
                return Prepared::Done(Box::new(item));
            }
        }
    };
    let companion = match &c.companion {
        Some(bytes) => match blueprint::parse_companion(bytes) {
            Ok(comp) => Some(comp),
            Err(e) => {
                item.reason = Some(format!("its companion metadata is invalid: {e}"));
                item.line = e.line;
                return Prepared::Done(Box::new(item));
            }
        },
        None => None,
    };
    let fields = blueprint::merged_fields(&analysis.fields, companion.as_ref());
    item.id = fields.id.clone();
    item.name = fields.name.clone();
    item.size = yaml.len() as u64;
    let hash = content_hash(&yaml);
    item.hash = hash.clone();
    let payload = Payload {
        yaml,
        companion,
        companion_bytes: c.companion,
        origin: c.origin,
        entry: c.entry,
        target_hash: None,
        id_conflict: None,
    };
    Prepared::Ready(Box::new(item), Box::new(payload), target)
}

impl ImportPlan {
    /// The report this plan would give if applied with `opts` (the `--dry-run` output).
    pub fn preview(&self, opts: &ImportOptions) -> ImportReport {
        let mut rep = ImportReport { dry_run: true, errors: self.errors.clone(), ..Default::default() };
        let mut taken: HashSet<String> = HashSet::new();
        for item in &self.items {
            let target = item.target.clone().unwrap_or_default();
            match item.class {
                Class::Invalid | Class::Refused => {
                    let reason = item.reason.clone().unwrap_or_default();
                    rep.errors.push(SourceError { source: item.source.clone(), error: reason });
                }
                Class::Identical => rep.identical.push(item.existing.clone().unwrap_or(target)),
                Class::New if opts.decisions.get(&item.n) == Some(&Decision::Skip) => rep.skipped.push(target),
                Class::New => {
                    taken.insert(super::bundle::fold(&target));
                    if item.converted_from_json {
                        rep.converted.push(target.clone());
                    }
                    rep.imported.push(target);
                }
                Class::Conflict => {
                    let decision = opts.decisions.get(&item.n).copied().unwrap_or(match opts.on_conflict {
                        OnConflict::Skip => Decision::Skip,
                        OnConflict::Rename => Decision::Rename,
                        OnConflict::Overwrite => Decision::Overwrite,
                    });
                    let existing = item.existing.clone().unwrap_or(target.clone());
                    match decision {
                        Decision::Skip => rep.skipped.push(existing),
                        Decision::Overwrite => {
                            rep.imported.push(existing.clone());
                            rep.overwritten.push(existing);
                        }
                        Decision::Rename => {
                            let to = free_name(&target, &self.existing_folded, &mut taken).unwrap_or_default();
                            rep.imported.push(to.clone());
                            rep.renamed.push(Renamed { from: target, to });
                        }
                    }
                }
            }
        }
        rep
    }
}

/// The library path for an item: `into` (or the default folder) + its path in the
/// source, with `.yaml`/`.yml`/`.json` becoming `.blueprint.yaml`. Our bundles' entries
/// already are library paths; with `into`, their top folders are replaced by it.
fn target_path(rel: &str, library_rooted: bool, into: Option<&str>) -> Result<String> {
    let stem_rel = strip_ext(rel);
    let full = if library_rooted {
        match into {
            None => stem_rel.to_owned(),
            Some(dir) => format!("{dir}/{}", strip_library_top(stem_rel)),
        }
    } else {
        format!("{}/{stem_rel}", into.unwrap_or(DEFAULT_INTO))
    };
    Ok(blueprint_key(&format!("{full}{BLUEPRINT_SUFFIX}"))?.into_string())
}

fn strip_ext(rel: &str) -> &str {
    let lower = rel.to_ascii_lowercase();
    for ext in [".blueprint.yaml", ".blueprint.yml", ".blueprint.json", ".yaml", ".yml", ".json"] {
        if lower.ends_with(ext) && rel.len() > ext.len() {
            return &rel[..rel.len() - ext.len()];
        }
    }
    rel
}

fn strip_library_top(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("Blueprints/") {
        return rest.split_once('/').map(|(_, r)| r).unwrap_or(rest);
    }
    for top in ["Templates/", "Exports/"] {
        if let Some(rest) = path.strip_prefix(top) {
            return rest;
        }
    }
    path
}

fn cancelled_item() -> PlanItem {
    PlanItem {
        n: 0,
        source: String::new(),
        target: None,
        class: Class::Refused,
        reason: Some("cancelled".into()),
        line: None,
        existing: None,
        id: None,
        name: None,
        converted_from_json: false,
        has_companion: false,
        size: 0,
        hash: String::new(),
    }
}

/// `name.blueprint.yaml` → `name (2).blueprint.yaml`, `name (3)…`: the first name not in
/// the library and not taken by this import.
fn free_name(target: &str, existing: &HashSet<String>, taken: &mut HashSet<String>) -> Result<String> {
    let stem = target.strip_suffix(BLUEPRINT_SUFFIX).unwrap_or(target);
    for n in 2..10_000 {
        let candidate = blueprint_key(&format!("{stem} ({n}){BLUEPRINT_SUFFIX}"))?.into_string();
        let folded = super::bundle::fold(&candidate);
        if !existing.contains(&folded) && !taken.contains(&folded) {
            taken.insert(folded);
            return Ok(candidate);
        }
    }
    Err(Error::AlreadyExists(format!("no free name for {target}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_paths() {
        assert_eq!(target_path("a.yaml", false, None).unwrap(), "Blueprints/personal/a.blueprint.yaml");
        assert_eq!(
            target_path("f/b.json", false, Some("Blueprints/shared")).unwrap(),
            "Blueprints/shared/f/b.blueprint.yaml"
        );
        assert_eq!(target_path("f/c.blueprint.yaml", false, None).unwrap(), "Blueprints/personal/f/c.blueprint.yaml");
        assert_eq!(
            target_path("Blueprints/shared/t/x.blueprint.yaml", true, None).unwrap(),
            "Blueprints/shared/t/x.blueprint.yaml"
        );
        assert_eq!(
            target_path("Blueprints/shared/t/x.blueprint.yaml", true, Some("Templates")).unwrap(),
            "Templates/t/x.blueprint.yaml"
        );
        assert!(target_path("con.yaml", false, None).is_err());
        assert!(target_path("a:b.yaml", false, None).is_err());
    }

    #[test]
    fn free_names_count_up() {
        let existing: HashSet<String> = ["a/x (2).blueprint.yaml".to_owned()].into();
        let mut taken = HashSet::new();
        assert_eq!(free_name("a/x.blueprint.yaml", &existing, &mut taken).unwrap(), "a/x (3).blueprint.yaml");
        assert_eq!(free_name("a/x.blueprint.yaml", &existing, &mut taken).unwrap(), "a/x (4).blueprint.yaml");
    }
}
