//! The corpus generator: a deterministic, realistic library of N blueprints in the
//! library layout, plus a `corpus.json` manifest the runner checks results against.
//!
//! Determinism: everything is drawn from ChaCha8 streams derived from the seed. Paths
//! come from stream `2*i`, file contents from stream `2*i+1`, global choices (broken
//! files, rare-word placement) from the seed's stream 0 generator, so the output does
//! not depend on thread scheduling.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::vocab::*;
use crate::yaml::{Y, emit_doc};

pub const MANIFEST_NAME: &str = "corpus.json";
pub const MANIFEST_FORMAT: u32 = 1;

#[derive(Clone, Debug)]
pub struct CorpusOptions {
    pub out: PathBuf,
    pub count: usize,
    pub seed: u64,
    pub broken_ratio: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub count: usize,
    pub seed: u64,
    pub broken_ratio: f64,
    /// Blueprint files that are valid under format v1.
    pub valid: usize,
    /// Blueprint files that have a `.blueprint.meta.json` companion.
    pub companions: usize,
    /// Bytes of all blueprint and companion files.
    pub total_bytes: u64,
    pub folders: usize,
    /// Paths (relative, `/`-separated) of files with an awkward name (unicode, emoji,
    /// `%`, `_`, `'`, `&`, very long).
    pub awkward_names: Vec<String>,
    pub broken: Vec<BrokenFile>,
    /// Planted tokens that occur nowhere else; `files` is exact (valid files only).
    pub rare_words: Vec<RareWord>,
    /// Frequent words. `files` counts files whose text (YAML plus companion) contains
    /// the word as a whole token, case-insensitively; `valid_files` only valid ones.
    pub common_words: Vec<CommonWord>,
    /// Tag → number of valid blueprints carrying it (YAML tags ∪ companion tags).
    pub tags: Vec<TagCount>,
    /// The same, also counting invalid files whose YAML parses with a `tags` list.
    pub tags_including_invalid: Vec<TagCount>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BrokenFile {
    pub path: String,
    pub kind: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RareWord {
    pub word: String,
    pub files: usize,
    pub paths: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CommonWord {
    pub word: String,
    pub files: usize,
    pub valid_files: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TagCount {
    pub tag: String,
    pub count: usize,
}

impl Manifest {
    pub fn load(dir: &Path) -> Result<Manifest, String> {
        let p = dir.join(MANIFEST_NAME);
        let bytes = fs::read(&p).map_err(|e| {
            format!("cannot read {}: {e} (generate a corpus with `bpv-bench corpus` first)", p.display())
        })?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{} is not a corpus manifest: {e}", p.display()))
    }
}

/// Ways a file is broken. Each one makes the file invalid under format v1.
pub const BROKEN_KINDS: &[&str] = &[
    "yaml_syntax_unclosed_flow",
    "yaml_syntax_mapping_in_scalar",
    "missing_name",
    "empty_name",
    "duplicate_node_id",
    "edge_to_unknown_node",
    "tags_not_a_list",
    "empty_file",
    "not_a_mapping",
    "node_missing_type",
];

/// Broken kinds whose YAML still parses with a proper `tags` list.
const BROKEN_KEEPS_TAGS: &[&str] =
    &["missing_name", "empty_name", "duplicate_node_id", "edge_to_unknown_node", "node_missing_type"];

/// Cumulative Zipf-like weights over `n` ranks: weight(rank) = 1 / (rank + 1)^s.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut acc = 0.0;
        let cdf = (0..n)
            .map(|r| {
                acc += 1.0 / ((r + 1) as f64).powf(s);
                acc
            })
            .collect::<Vec<_>>();
        Zipf { cdf }
    }
    fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let total = *self.cdf.last().unwrap_or(&1.0);
        let x = rng.random::<f64>() * total;
        self.cdf.partition_point(|&c| c < x).min(self.cdf.len() - 1)
    }
}

/// Shared, read-only generator state.
struct Gen {
    words: Zipf,
    tail: Vec<String>,
    tail_zipf: Zipf,
    tags: Zipf,
    small: HashMap<usize, Zipf>,
    /// Steeper weights for folder names, so a few folders hold most files.
    steep: HashMap<usize, Zipf>,
}

impl Gen {
    #[allow(clippy::needless_range_loop)] // a, b and c are syllable indices, combined
    fn new() -> Gen {
        // The synthetic long tail is seed-independent: a stable vocabulary of code-name-like
        // words (two or three syllables). None contains "xq", the rare-token prefix.
        let mut tail = Vec::new();
        let mut seen: HashSet<String> = WORDS.iter().map(|w| w.to_string()).collect();
        let n = SYLLABLES.len();
        'outer: for a in 0..n {
            for b in 0..n {
                for c in [usize::MAX, (a * 7 + b * 3) % n] {
                    let mut w = format!("{}{}", SYLLABLES[a], SYLLABLES[b]);
                    if c != usize::MAX {
                        w.push_str(SYLLABLES[c]);
                    }
                    if seen.insert(w.clone()) {
                        tail.push(w);
                    }
                    if tail.len() >= 3000 {
                        break 'outer;
                    }
                }
            }
        }
        // Spread the tail so that frequent tail words are not all alphabetical neighbours.
        let mut order: Vec<usize> = (0..tail.len()).collect();
        let mut r = ChaCha8Rng::seed_from_u64(0x7a11);
        for i in (1..order.len()).rev() {
            let j = r.random_range(0..=i);
            order.swap(i, j);
        }
        let tail: Vec<String> = order.into_iter().map(|i| tail[i].clone()).collect();
        let mut small = HashMap::new();
        for len in [
            TEAMS.len(),
            PROJECTS.len(),
            TOPICS.len(),
            TEMPLATE_CATEGORIES.len(),
            NAME_PREFIXES.len(),
            NAME_SUBJECTS.len(),
            NAME_ACTIONS.len(),
            NAME_SUFFIXES.len(),
            AUTHORS.len(),
            CHANNELS.len(),
            HOSTS.len(),
            NODE_TYPES.len(),
            MODELS.len(),
        ] {
            small.entry(len).or_insert_with(|| Zipf::new(len, 0.9));
        }
        let steep = small.keys().map(|&len| (len, Zipf::new(len, 1.4))).collect();
        Gen {
            words: Zipf::new(WORDS.len(), 1.0),
            tail_zipf: Zipf::new(tail.len(), 1.0),
            tail,
            tags: Zipf::new(TAGS.len(), 1.1),
            small,
            steep,
        }
    }

    /// Zipf pick from a short list.
    fn pick<'a>(&self, rng: &mut ChaCha8Rng, list: &'a [&'a str]) -> &'a str {
        list[self.small[&list.len()].sample(rng)]
    }

    /// Zipf pick of a folder name (steeper than `pick`).
    fn folder<'a>(&self, rng: &mut ChaCha8Rng, list: &'a [&'a str]) -> &'a str {
        list[self.steep[&list.len()].sample(rng)]
    }

    fn word(&self, rng: &mut ChaCha8Rng) -> &str {
        if rng.random_bool(0.88) { WORDS[self.words.sample(rng)] } else { &self.tail[self.tail_zipf.sample(rng)] }
    }

    fn sentence(&self, rng: &mut ChaCha8Rng, min: usize, max: usize) -> String {
        match rng.random_range(0..6) {
            0 => format!(
                "Fetch {} {} from {} and send a summary to {}.",
                self.word(rng),
                self.word(rng),
                self.pick(rng, HOSTS),
                self.pick(rng, CHANNELS)
            ),
            1 => format!(
                "When a {} {} arrives, {} the {} and notify the {} team.",
                self.word(rng),
                self.word(rng),
                self.word(rng),
                self.word(rng),
                self.pick(rng, TEAMS)
            ),
            2 => format!(
                "Runs every {} to {} {} data for {}.",
                self.word(rng),
                self.word(rng),
                self.word(rng),
                self.pick(rng, AUTHORS)
            ),
            _ => {
                let n = rng.random_range(min..=max);
                let mut s = String::new();
                for k in 0..n {
                    let w = self.word(rng);
                    if k == 0 {
                        let mut cs = w.chars();
                        if let Some(f) = cs.next() {
                            s.extend(f.to_uppercase());
                            s.push_str(cs.as_str());
                        }
                    } else {
                        s.push(' ');
                        s.push_str(w);
                    }
                    if k + 1 < n && rng.random_bool(0.06) {
                        s.push(',');
                    }
                }
                s.push('.');
                s
            }
        }
    }

    fn text(&self, rng: &mut ChaCha8Rng, sentences: usize) -> String {
        (0..sentences).map(|_| self.sentence(rng, 5, 14)).collect::<Vec<_>>().join(" ")
    }

    fn tag_set(&self, rng: &mut ChaCha8Rng, n: usize) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        let mut guard = 0;
        while out.len() < n && guard < 50 {
            let t = self.tags.sample(rng);
            if !out.contains(&t) {
                out.push(t);
            }
            guard += 1;
        }
        out
    }
}

/// What phase 1 decides for each file.
#[derive(Clone, Debug)]
struct FileSpec {
    folder: String,
    name: String,
    stem: String,
    awkward: bool,
}

struct FileOutcome {
    bytes: u64,
    companion: bool,
    /// Tags a reader sees (YAML ∪ companion), as TAGS indices.
    tags: Vec<usize>,
    common_mask: u32,
    error: Option<String>,
}

fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Generate the corpus. Returns the manifest (also written to `out/corpus.json`).
pub fn generate(opts: &CorpusOptions) -> Result<Manifest, String> {
    if opts.count == 0 {
        return Err("--count must be at least 1".into());
    }
    if !(0.0..=1.0).contains(&opts.broken_ratio) {
        return Err("--broken-ratio must be between 0 and 1".into());
    }
    let out = &opts.out;
    if out.exists() {
        let non_empty = fs::read_dir(out).map_err(|e| format!("cannot read {}: {e}", out.display()))?.next().is_some();
        if non_empty {
            return Err(format!("{} exists and is not empty; pick a new directory", out.display()));
        }
    }
    fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let started = Instant::now();
    let g = Gen::new();
    let n = opts.count;
    let mut master = stream_rng(opts.seed, u64::MAX);

    // Broken files: an exact number, at seeded positions, kinds in rotation.
    let n_broken = ((n as f64) * opts.broken_ratio).round() as usize;
    let mut broken_idx: Vec<usize> = rand::seq::index::sample(&mut master, n, n_broken).into_vec();
    broken_idx.sort_unstable();
    let mut broken_kind: HashMap<usize, &'static str> = HashMap::new();
    for (k, &i) in broken_idx.iter().enumerate() {
        broken_kind.insert(i, BROKEN_KINDS[k % BROKEN_KINDS.len()]);
    }

    // Rare words: "xq" + syllables, never a substring of any other generated text or of
    // each other. File counts cycle through 1, 2, 5 and about one per 5000 files.
    let per_5000 = ((n as f64) / 5000.0).round().max(1.0) as usize;
    let counts = [1usize, 2, 5, per_5000];
    let mut rare_words: Vec<String> = Vec::new();
    while rare_words.len() < 32 {
        let mut w = String::from("xq");
        for _ in 0..3 {
            w.push_str(SYLLABLES[master.random_range(0..SYLLABLES.len())]);
        }
        if rare_words.iter().any(|o| o.contains(&w) || w.contains(o.as_str())) {
            continue;
        }
        rare_words.push(w);
    }
    let n_valid = n - n_broken;
    let mut plants: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut rare_files: Vec<Vec<usize>> = Vec::new();
    for (w, _) in rare_words.iter().enumerate() {
        let want = counts[w % counts.len()].min(n_valid);
        let mut chosen: Vec<usize> = Vec::new();
        while chosen.len() < want {
            let i = master.random_range(0..n);
            if broken_kind.contains_key(&i) || chosen.contains(&i) {
                continue;
            }
            chosen.push(i);
        }
        chosen.sort_unstable();
        for &i in &chosen {
            plants.entry(i).or_default().push(w);
        }
        rare_files.push(chosen);
    }

    // Phase 1: folders and names (cheap, sequential so deduplication is deterministic).
    let mut specs: Vec<FileSpec> = Vec::with_capacity(n);
    let mut taken: HashSet<(String, String)> = HashSet::new();
    for i in 0..n {
        let mut rng = stream_rng(opts.seed, 2 * i as u64);
        let mut spec = file_spec(&g, &mut rng);
        let base = spec.stem.clone();
        let mut k = 2;
        while !taken.insert((spec.folder.clone(), spec.stem.to_lowercase())) {
            spec.stem = format!("{base} {k}");
            k += 1;
        }
        specs.push(spec);
    }
    let folders: BTreeMap<&str, ()> = specs.iter().map(|s| (s.folder.as_str(), ())).collect();
    for f in folders.keys() {
        let p = out.join(f);
        fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
    }

    // Phase 2: contents, in parallel.
    let outcomes: Vec<FileOutcome> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng = stream_rng(opts.seed, 2 * i as u64 + 1);
            let spec = &specs[i];
            let planted: Vec<&str> =
                plants.get(&i).map(|v| v.iter().map(|&w| rare_words[w].as_str()).collect()).unwrap_or_default();
            let (yaml, meta, tags) = file_contents(&g, &mut rng, spec, broken_kind.get(&i).copied(), &planted);
            let mut mask = common_mask(&yaml);
            let mut bytes = yaml.len() as u64;
            let base = out.join(&spec.folder);
            let mut error = None;
            if let Err(e) = fs::write(base.join(format!("{}.blueprint.yaml", spec.stem)), yaml.as_bytes()) {
                error = Some(format!("{}/{}: {e}", spec.folder, spec.stem));
            }
            let companion = meta.is_some();
            if let Some(meta) = meta {
                mask |= common_mask(&meta);
                bytes += meta.len() as u64;
                if let Err(e) = fs::write(base.join(format!("{}.blueprint.meta.json", spec.stem)), meta.as_bytes()) {
                    error = Some(format!("{}/{}: {e}", spec.folder, spec.stem));
                }
            }
            FileOutcome { bytes, companion, tags, common_mask: mask, error }
        })
        .collect();
    if let Some(e) = outcomes.iter().find_map(|o| o.error.clone()) {
        return Err(format!("writing the corpus failed: {e}"));
    }

    let rel = |i: usize| format!("{}/{}.blueprint.yaml", specs[i].folder, specs[i].stem);
    let mut tag_counts = vec![0usize; TAGS.len()];
    let mut tag_counts_all = vec![0usize; TAGS.len()];
    let mut common_all = vec![0usize; COMMON_QUERY_WORDS.len()];
    let mut common_valid = vec![0usize; COMMON_QUERY_WORDS.len()];
    for (i, o) in outcomes.iter().enumerate() {
        let valid = !broken_kind.contains_key(&i);
        for &t in &o.tags {
            tag_counts_all[t] += 1;
            if valid {
                tag_counts[t] += 1;
            }
        }
        for (w, c) in common_all.iter_mut().enumerate() {
            if o.common_mask & (1 << w) != 0 {
                *c += 1;
                if valid {
                    common_valid[w] += 1;
                }
            }
        }
    }
    let tag_list = |counts: &[usize]| {
        let mut v: Vec<TagCount> = TAGS
            .iter()
            .zip(counts)
            .filter(|(_, c)| **c > 0)
            .map(|(t, c)| TagCount { tag: t.to_string(), count: *c })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then(a.tag.cmp(&b.tag)));
        v
    };
    let tags = tag_list(&tag_counts);
    let tags_including_invalid = tag_list(&tag_counts_all);

    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        count: n,
        seed: opts.seed,
        broken_ratio: opts.broken_ratio,
        valid: n_valid,
        companions: outcomes.iter().filter(|o| o.companion).count(),
        total_bytes: outcomes.iter().map(|o| o.bytes).sum(),
        folders: folders.len(),
        awkward_names: (0..n).filter(|&i| specs[i].awkward).map(rel).collect(),
        broken: broken_idx.iter().map(|&i| BrokenFile { path: rel(i), kind: broken_kind[&i].to_string() }).collect(),
        rare_words: rare_words
            .iter()
            .zip(&rare_files)
            .map(|(w, files)| RareWord {
                word: w.clone(),
                files: files.len(),
                paths: files.iter().map(|&i| rel(i)).collect(),
            })
            .collect(),
        common_words: COMMON_QUERY_WORDS
            .iter()
            .enumerate()
            .map(|(k, w)| CommonWord { word: w.to_string(), files: common_all[k], valid_files: common_valid[k] })
            .collect(),
        tags,
        tags_including_invalid,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| format!("manifest: {e}"))?;
    let mp = out.join(MANIFEST_NAME);
    fs::write(&mp, json).map_err(|e| format!("cannot write {}: {e}", mp.display()))?;
    eprintln!(
        "generated {} blueprints ({} broken, {} companions, {} folders, {:.1} MB) in {:.2}s",
        n,
        n_broken,
        manifest.companions,
        manifest.folders,
        manifest.total_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(manifest)
}

/// Which COMMON_QUERY_WORDS occur in `text` as whole tokens (case-insensitive).
fn common_mask(text: &str) -> u32 {
    let mut mask = 0u32;
    for tok in text.split(|c: char| !c.is_alphanumeric()) {
        if tok.len() < 3 || tok.len() > 8 {
            continue;
        }
        for (k, w) in COMMON_QUERY_WORDS.iter().enumerate() {
            if tok.eq_ignore_ascii_case(w) {
                mask |= 1 << k;
            }
        }
    }
    mask
}

fn file_spec(g: &Gen, rng: &mut ChaCha8Rng) -> FileSpec {
    let root = rng.random::<f64>();
    let depth = match rng.random::<f64>() {
        x if x < 0.35 => 1,
        x if x < 0.75 => 2,
        x if x < 0.95 => 3,
        _ => 4,
    };
    let mut parts: Vec<String> = Vec::new();
    if root < 0.5 {
        parts.push("Blueprints/personal".into());
        for d in 0..depth {
            parts.push(match d {
                0 => if rng.random_bool(0.5) { g.folder(rng, PROJECTS) } else { g.folder(rng, TOPICS) }.to_string(),
                1 | 2 => g.folder(rng, TOPICS).to_string(),
                _ => format!("{}", rng.random_range(2021..2026)),
            });
        }
    } else if root < 0.85 {
        parts.push("Blueprints/shared".into());
        for d in 0..depth {
            parts.push(
                match d {
                    0 => g.folder(rng, TEAMS),
                    1 => g.folder(rng, PROJECTS),
                    2 => g.folder(rng, TOPICS),
                    _ => ["archive", "v2", "drafts", "old"][rng.random_range(0..4)],
                }
                .to_string(),
            );
        }
    } else {
        parts.push("Templates".into());
        for d in 0..depth {
            parts.push(
                match d {
                    0 => g.folder(rng, TEMPLATE_CATEGORIES),
                    _ => g.folder(rng, TOPICS),
                }
                .to_string(),
            );
        }
    }
    // Avoid a folder path repeating a segment twice in a row ("ai/ai").
    parts.dedup();
    let folder = parts.join("/");

    let roll = rng.random::<f64>();
    let (name, awkward) = if roll < 0.04 {
        let base = AWKWARD_NAMES[rng.random_range(0..AWKWARD_NAMES.len())];
        let name = if rng.random_bool(0.5) { format!("{base} {}", rng.random_range(1..500)) } else { base.to_string() };
        (name, true)
    } else if roll < 0.05 {
        // Very long: 180–200 bytes.
        let target = rng.random_range(180..=200);
        let mut name = String::from("Quarterly");
        loop {
            let w = g.word(rng).to_string();
            if name.len() + 1 + w.len() > target {
                break;
            }
            name.push(' ');
            name.push_str(&w);
        }
        (name, true)
    } else {
        let prefix = g.pick(rng, NAME_PREFIXES);
        let subject = g.pick(rng, NAME_SUBJECTS);
        let action = g.pick(rng, NAME_ACTIONS);
        let suffix = g.pick(rng, NAME_SUFFIXES);
        let mut name = if prefix.is_empty() {
            format!("{subject} {action}{suffix}")
        } else {
            format!("{prefix} {subject} {action}{suffix}")
        };
        if let Some(f) = name.chars().next() {
            let up: String = f.to_uppercase().collect();
            name.replace_range(..f.len_utf8(), &up);
        }
        (name, false)
    };
    let stem = if awkward || rng.random_bool(0.6) { sanitize_stem(&name) } else { slug(&name) };
    FileSpec { folder, name, stem, awkward }
}

/// A file stem the engine's key rules accept (no `/`, no Windows-reserved characters,
/// no leading dot, no trailing dot or space, at most 200 bytes).
fn sanitize_stem(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c == '/' { '-' } else { c })
        .filter(|c| !c.is_control() && !['<', '>', ':', '"', '|', '?', '*', '\\'].contains(c))
        .collect();
    if s.len() > 200 {
        let mut cut = 200;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    let s = s.trim_matches(|c: char| c == ' ' || c == '.').to_string();
    if s.is_empty() { "untitled".into() } else { s }
}

fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let s = out.trim_end_matches('-').to_string();
    if s.is_empty() { "untitled".into() } else { sanitize_stem(&s) }
}

fn uuid(rng: &mut ChaCha8Rng) -> String {
    let v: u128 = rng.random();
    let v = (v & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let h = format!("{v:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn timestamp(rng: &mut ChaCha8Rng, from: i64, to: i64) -> (i64, String) {
    let secs = rng.random_range(from..to);
    let s = chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "2024-01-01T00:00:00Z".into());
    (secs, s)
}

struct Node {
    id: String,
    ty: &'static str,
    x: i64,
    y: i64,
    params: Vec<(String, Y)>,
}

fn id_word(ty: &str) -> &'static str {
    match ty {
        "http.request" => "fetch",
        "llm.prompt" => "summarize",
        "slack.post" => "post",
        "filter" => "filter",
        "map" => "map",
        "schedule" => "every",
        "webhook.trigger" => "on",
        "email.send" => "email",
        "db.query" => "query",
        "code.js" => "code",
        "sheets.append" => "append",
        "if" => "if",
        "merge" => "merge",
        "delay" => "wait",
        "transform.json" => "transform",
        "notion.create_page" => "notion",
        "github.issue" => "issue",
        "openai.embed" => "embed",
        "s3.upload" => "upload",
        _ => "ticket",
    }
}

fn ident(w: &str) -> String {
    w.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

fn node_params(g: &Gen, rng: &mut ChaCha8Rng, ty: &str) -> Vec<(String, Y)> {
    let w = |rng: &mut ChaCha8Rng| ident(g.word(rng));
    let mut p: Vec<(&str, Y)> = match ty {
        "http.request" => {
            let host = g.pick(rng, HOSTS);
            let mut headers = vec![("Accept", Y::s("application/json"))];
            if rng.random_bool(0.7) {
                headers.push(("Authorization", Y::s(format!("Bearer {{{{ secrets.{}_token }}}}", w(rng)))));
            }
            if rng.random_bool(0.3) {
                headers.push(("X-Request-Source", Y::s(format!("blueprint-{}", w(rng)))));
            }
            let mut v = vec![
                ("method", Y::s(["GET", "POST", "PUT", "PATCH"][rng.random_range(0..4)])),
                (
                    "url",
                    Y::s(format!(
                        "https://{host}/v{}/{}/{}?limit={}&status={}",
                        rng.random_range(1..4),
                        w(rng),
                        w(rng),
                        rng.random_range(10..500),
                        w(rng)
                    )),
                ),
                ("headers", Y::map(headers)),
            ];
            if rng.random_bool(0.5) {
                v.push((
                    "body",
                    Y::map(vec![
                        ("query", Y::s(g.sentence(rng, 3, 8))),
                        ("fields", Y::List((0..rng.random_range(1..5)).map(|_| Y::s(w(rng))).collect())),
                    ]),
                ));
            }
            v.push((
                "retry",
                Y::map(vec![("count", Y::Int(rng.random_range(0..6))), ("backoff", Y::s("exponential"))]),
            ));
            v
        }
        "llm.prompt" => {
            let mut prompt = format!("You are a {} assistant for the {} team.\n", g.word(rng), g.pick(rng, TEAMS));
            for _ in 0..rng.random_range(1..5) {
                prompt.push_str(&g.sentence(rng, 6, 16));
                prompt.push('\n');
            }
            if rng.random_bool(0.05) {
                prompt.push_str(CJK_SENTENCES[rng.random_range(0..CJK_SENTENCES.len())]);
                prompt.push('\n');
            }
            prompt.push_str("\nInput:\n{{ input.text }}\n");
            vec![
                ("model", Y::s(g.pick(rng, MODELS))),
                ("temperature", Y::Float((rng.random_range(0..10) as f64) / 10.0)),
                ("max_tokens", Y::Int(rng.random_range(1..16) * 100)),
                ("system", Y::s(g.sentence(rng, 5, 12))),
                ("prompt", Y::Block(prompt)),
            ]
        }
        "slack.post" => vec![
            ("channel", Y::s(g.pick(rng, CHANNELS))),
            ("text", Y::s(format!("{} {{{{ steps.{}.output }}}}", g.sentence(rng, 3, 9), w(rng)))),
            ("unfurl_links", Y::Bool(rng.random_bool(0.3))),
        ],
        "filter" => vec![("condition", Y::s(format!("{{{{ item.{} }}}} > {}", w(rng), rng.random_range(0..1000))))],
        "map" => vec![(
            "fields",
            Y::Map(
                (0..rng.random_range(1..6))
                    .map(|k| (format!("{}_{k}", w(rng)), Y::s(format!("{{{{ item.{} }}}}", w(rng)))))
                    .collect(),
            ),
        )],
        "schedule" => vec![
            (
                "cron",
                Y::s(format!(
                    "{} {} * * {}",
                    rng.random_range(0..60),
                    rng.random_range(0..24),
                    ["*", "1-5", "1", "5"][rng.random_range(0..4)]
                )),
            ),
            ("timezone", Y::s(TIMEZONES[rng.random_range(0..TIMEZONES.len())])),
        ],
        "webhook.trigger" => vec![
            ("path", Y::s(format!("/hooks/{}/{}", w(rng), w(rng)))),
            ("method", Y::s("POST")),
            ("auth", Y::map(vec![("type", Y::s("header")), ("header", Y::s("X-Webhook-Token"))])),
        ],
        "email.send" => vec![
            ("to", Y::s(format!("{}@example.com", w(rng)))),
            ("subject", Y::s(g.sentence(rng, 3, 7))),
            (
                "body",
                Y::Block({
                    let k = rng.random_range(1..4);
                    g.text(rng, k)
                }),
            ),
        ],
        "db.query" => vec![
            ("connection", Y::s(format!("postgres-{}", w(rng)))),
            (
                "sql",
                Y::Block(format!(
                    "SELECT id, {}, {}\nFROM {}\nWHERE {} = $1\nLIMIT {}",
                    w(rng),
                    w(rng),
                    w(rng),
                    w(rng),
                    rng.random_range(10..1000)
                )),
            ),
        ],
        "code.js" => vec![(
            "code",
            Y::Block(format!(
                "// {}\nconst rows = input.items.filter(r => r.{} !== undefined);\nreturn rows.map(r => ({{ ...r, {}: true }}));",
                g.sentence(rng, 4, 9),
                w(rng),
                w(rng)
            )),
        )],
        "sheets.append" => vec![
            ("spreadsheet_id", Y::s(format!("{:x}", rng.random::<u64>()))),
            ("range", Y::s(format!("{}!A:F", w(rng)))),
            (
                "values",
                Y::List((0..rng.random_range(1..5)).map(|_| Y::s(format!("{{{{ item.{} }}}}", w(rng)))).collect()),
            ),
        ],
        "if" => vec![("expression", Y::s(format!("{{{{ item.{} == '{}' }}}}", w(rng), w(rng))))],
        "merge" => vec![("mode", Y::s(["append", "zip", "by_key"][rng.random_range(0..3)]))],
        "delay" => vec![("seconds", Y::Int(rng.random_range(1..3600)))],
        "transform.json" => vec![(
            "mapping",
            Y::map(vec![
                ("title", Y::s(format!("{{{{ item.{} }}}}", w(rng)))),
                (
                    "meta",
                    Y::map(vec![("source", Y::s(g.word(rng).to_string())), ("label", Y::s(g.sentence(rng, 2, 5)))]),
                ),
            ]),
        )],
        "notion.create_page" => vec![
            ("database", Y::s(format!("{:x}", rng.random::<u64>()))),
            ("title", Y::s(g.sentence(rng, 3, 7))),
            (
                "properties",
                Y::map(vec![("Status", Y::s(g.word(rng).to_string())), ("Owner", Y::s(g.pick(rng, AUTHORS)))]),
            ),
        ],
        "github.issue" => vec![
            ("repo", Y::s(format!("acme/{}", w(rng)))),
            ("title", Y::s(g.sentence(rng, 3, 8))),
            ("labels", Y::List((0..rng.random_range(0..3)).map(|_| Y::s(w(rng))).collect())),
        ],
        "openai.embed" => {
            vec![("model", Y::s("text-embedding-3-small")), ("input", Y::s(format!("{{{{ item.{} }}}}", w(rng))))]
        }
        "s3.upload" => vec![
            ("bucket", Y::s(format!("acme-{}", w(rng)))),
            ("key", Y::s(format!("exports/{}/{{{{ date }}}}.json", w(rng)))),
        ],
        _ => vec![
            ("project", Y::s(w(rng).to_uppercase())),
            ("summary", Y::s(g.sentence(rng, 4, 10))),
            ("description", Y::Block(g.text(rng, 2))),
        ],
    };
    if rng.random_bool(0.3) {
        p.push(("notes", Y::s(g.sentence(rng, 4, 12))));
    }
    p.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Build one file: (YAML text, companion JSON, tags of a valid file).
fn file_contents(
    g: &Gen,
    rng: &mut ChaCha8Rng,
    spec: &FileSpec,
    broken: Option<&str>,
    planted: &[&str],
) -> (String, Option<String>, Vec<usize>) {
    // Nodes.
    let n_nodes = 2 + (28.0 * rng.random::<f64>().powi(2)) as usize;
    let mut nodes: Vec<Node> = Vec::with_capacity(n_nodes);
    let mut ids: HashSet<String> = HashSet::new();
    for k in 0..n_nodes {
        let ty = if k == 0 && rng.random_bool(0.7) {
            if rng.random_bool(0.5) { "schedule" } else { "webhook.trigger" }
        } else {
            g.pick(rng, NODE_TYPES)
        };
        let base = format!("{}_{}", id_word(ty), ident(g.word(rng)));
        let mut id = base.clone();
        let mut s = 2;
        while !ids.insert(id.clone()) {
            id = format!("{base}_{s}");
            s += 1;
        }
        let params = node_params(g, rng, ty);
        nodes.push(Node {
            id,
            ty,
            x: 100 + 220 * k as i64 + rng.random_range(-30..30),
            y: 100 + 140 * rng.random_range(0..3),
            params,
        });
    }
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for k in 1..n_nodes {
        let from = if rng.random_bool(0.75) { k - 1 } else { rng.random_range(k.saturating_sub(4)..k) };
        edges.push((from, k));
    }
    if n_nodes > 3 && rng.random_bool(0.15) {
        let a = rng.random_range(0..n_nodes - 2);
        let b = rng.random_range(a + 2..n_nodes);
        if !edges.contains(&(a, b)) {
            edges.push((a, b));
        }
    }

    let mut description = if rng.random_bool(0.04) {
        CJK_SENTENCES[rng.random_range(0..CJK_SENTENCES.len())].to_string()
    } else {
        let k = rng.random_range(1..3);
        g.text(rng, k)
    };
    let has_description = rng.random_bool(0.85);

    // Plant rare words.
    let mut force_description = false;
    for &word in planted {
        let node = rng.random_range(0..nodes.len());
        let (key, value) = match rng.random_range(0..5) {
            0 => {
                description.push_str(&format!(" Ask {word} before changing this."));
                force_description = true;
                continue;
            }
            1 => ("comment", Y::s(format!("Keep in sync with the {word} {} flow.", g.word(rng)))),
            2 => (
                "advanced",
                Y::map(vec![(
                    "fallback",
                    Y::map(vec![("hint", Y::s(format!("{} {word} {}", g.sentence(rng, 2, 4), g.word(rng))))]),
                )]),
            ),
            3 => (
                "callback_url",
                Y::s(format!("https://{}/v2/{word}/events?source={}", g.pick(rng, HOSTS), ident(g.word(rng)))),
            ),
            _ => (
                "extra_headers",
                Y::map(vec![("X-Trace-Context", Y::s(format!("{word}-{}", rng.random_range(1000..9999))))]),
            ),
        };
        if nodes[node].params.iter().any(|(k, _)| k == key) {
            description.push_str(&format!(" See {word}."));
            force_description = true;
        } else {
            nodes[node].params.push((key.to_owned(), value));
        }
    }

    let n_tags = match rng.random::<f64>() {
        x if x < 0.15 => 0,
        x if x < 0.40 => 1,
        x if x < 0.65 => 2,
        x if x < 0.80 => 3,
        x if x < 0.92 => 4,
        _ => 5,
    };
    let tags = g.tag_set(rng, n_tags);
    let id = uuid(rng);
    let author = g.pick(rng, AUTHORS);
    let version = format!("{}.{}.{}", rng.random_range(0..3), rng.random_range(0..10), rng.random_range(0..20));

    // Assemble, applying the breakage if any.
    let mut doc: Vec<(String, Y)> = Vec::new();
    match broken {
        Some("missing_name") => {}
        Some("empty_name") => doc.push(("name".into(), Y::s(""))),
        Some("yaml_syntax_mapping_in_scalar") => doc.push(("name".into(), Y::Raw("Sales digest: broken: here".into()))),
        _ => doc.push(("name".into(), Y::s(spec.name.clone()))),
    }
    if rng.random_bool(0.9) {
        doc.push(("id".into(), Y::s(id.clone())));
    }
    if has_description || force_description {
        doc.push(("description".into(), Y::s(description)));
    }
    if rng.random_bool(0.7) {
        doc.push(("version".into(), Y::s(version)));
    }
    if broken == Some("tags_not_a_list") {
        doc.push(("tags".into(), Y::s("crm, slack, daily")));
    } else if !tags.is_empty() {
        doc.push(("tags".into(), Y::List(tags.iter().map(|&t| Y::s(TAGS[t])).collect())));
    }
    if rng.random_bool(0.8) {
        doc.push(("author".into(), Y::s(author)));
    }
    if rng.random_bool(0.1) {
        doc.push((
            "settings".into(),
            Y::map(vec![
                ("timezone", Y::s(TIMEZONES[rng.random_range(0..TIMEZONES.len())])),
                ("error_workflow", Y::s(format!("{}-errors", ident(g.word(rng))))),
            ]),
        ));
    }
    let dup = broken == Some("duplicate_node_id");
    let no_type = broken == Some("node_missing_type");
    doc.push((
        "nodes".into(),
        Y::List(
            nodes
                .iter()
                .enumerate()
                .map(|(k, nd)| {
                    let id = if dup && k == 1 { nodes[0].id.clone() } else { nd.id.clone() };
                    let mut m = vec![("id".to_owned(), Y::s(id))];
                    if !(no_type && k == 0) {
                        m.push(("type".to_owned(), Y::s(nd.ty)));
                    }
                    m.push(("position".to_owned(), Y::Raw(format!("{{x: {}, y: {}}}", nd.x, nd.y))));
                    m.push(("parameters".to_owned(), Y::Map(nd.params.clone())));
                    Y::Map(m)
                })
                .collect(),
        ),
    ));
    let mut edge_list: Vec<Y> = edges
        .iter()
        .map(|&(a, b)| Y::map(vec![("from", Y::s(nodes[a].id.clone())), ("to", Y::s(nodes[b].id.clone()))]))
        .collect();
    if broken == Some("edge_to_unknown_node") {
        edge_list
            .push(Y::map(vec![("from", Y::s(nodes[0].id.clone())), ("to", Y::s("ghost_node_that_does_not_exist"))]));
    }
    doc.push(("edges".into(), Y::List(edge_list)));

    let mut yaml = match broken {
        Some("empty_file") => String::new(),
        Some("not_a_mapping") => nodes.iter().map(|nd| format!("- {}\n", nd.id)).collect(),
        _ => emit_doc(&doc),
    };
    if broken == Some("yaml_syntax_unclosed_flow") {
        yaml.push_str("retry_policy: {attempts: 3, delays: [1, 5, 30\n");
    }

    // Companion metadata for about 20% of valid files.
    let mut all_tags = tags.clone();
    let meta = if broken.is_none() && rng.random_bool(0.2) {
        let k = rng.random_range(0..4);
        let meta_tags = g.tag_set(rng, k);
        for &t in &meta_tags {
            if !all_tags.contains(&t) {
                all_tags.push(t);
            }
        }
        let (created_s, created) = timestamp(rng, 1_640_995_200, 1_735_689_600);
        let (_, modified) = timestamp(rng, created_s, 1_751_328_000);
        let mut m = serde_json::Map::new();
        m.insert("id".into(), serde_json::Value::String(if rng.random_bool(0.9) { id } else { uuid(rng) }));
        m.insert("author".into(), serde_json::Value::String(g.pick(rng, AUTHORS).to_string()));
        m.insert(
            "tags".into(),
            serde_json::Value::Array(
                meta_tags.iter().map(|&t| serde_json::Value::String(TAGS[t].to_string())).collect(),
            ),
        );
        if rng.random_bool(0.5) {
            m.insert("description".into(), serde_json::Value::String(g.sentence(rng, 5, 12)));
        }
        m.insert("created".into(), serde_json::Value::String(created));
        m.insert("modified".into(), serde_json::Value::String(modified));
        serde_json::to_string_pretty(&serde_json::Value::Object(m)).ok().map(|s| s + "\n")
    } else {
        None
    };
    // Tags a reader can still see: none when the YAML does not parse or `tags` is not a list.
    let visible_tags = match broken {
        Some(k) if !BROKEN_KEEPS_TAGS.contains(&k) => Vec::new(),
        _ => all_tags,
    };
    (yaml, meta, visible_tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(dir: &Path, out: &mut Vec<(String, Vec<u8>)>, root: &Path) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                walk(&p, out, root);
            } else {
                out.push((p.strip_prefix(root).unwrap().to_string_lossy().into_owned(), fs::read(&p).unwrap()));
            }
        }
    }

    fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut v = Vec::new();
        walk(dir, &mut v, dir);
        v.sort();
        v
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        let opts = |d: &Path, seed| CorpusOptions { out: d.join("lib"), count: 600, seed, broken_ratio: 0.02 };
        let ma = generate(&opts(a.path(), 7)).unwrap();
        let mb = generate(&opts(b.path(), 7)).unwrap();
        let mc = generate(&opts(c.path(), 8)).unwrap();
        assert_eq!(ma, mb);
        assert_eq!(tree(&a.path().join("lib")), tree(&b.path().join("lib")));
        assert_ne!(tree(&a.path().join("lib")), tree(&c.path().join("lib")));
        assert_ne!(ma.rare_words, mc.rare_words);
    }

    /// Format v1 rules, checked independently of the engine with saphyr.
    fn v1_error(text: &str) -> Option<String> {
        use saphyr::{LoadableYamlNode, Yaml};
        let docs = match Yaml::load_from_str(text) {
            Ok(d) => d,
            Err(e) => return Some(format!("syntax: {e}")),
        };
        let Some(doc) = docs.first() else { return Some("empty".into()) };
        if !doc.is_mapping() {
            return Some("not a mapping".into());
        }
        match doc.as_mapping_get("name").and_then(|n| n.as_str()) {
            Some(s) if !s.is_empty() => {}
            _ => return Some("name".into()),
        }
        if let Some(t) = doc.as_mapping_get("tags") {
            match t.as_vec() {
                Some(seq) if seq.iter().all(|x| x.as_str().is_some()) => {}
                _ => return Some("tags".into()),
            }
        }
        for k in ["id", "description", "version", "author"] {
            if let Some(v) = doc.as_mapping_get(k)
                && v.as_str().is_none()
            {
                return Some(format!("{k} not a string"));
            }
        }
        let mut ids = HashSet::new();
        if let Some(nodes) = doc.as_mapping_get("nodes") {
            let Some(nodes) = nodes.as_vec() else { return Some("nodes not a list".into()) };
            for nd in nodes {
                let id = nd.as_mapping_get("id").and_then(|v| v.as_str());
                let ty = nd.as_mapping_get("type").and_then(|v| v.as_str());
                let (Some(id), Some(_)) = (id, ty) else { return Some("node id/type".into()) };
                if !ids.insert(id.to_string()) {
                    return Some("duplicate node id".into());
                }
            }
        }
        if let Some(edges) = doc.as_mapping_get("edges") {
            let Some(edges) = edges.as_vec() else { return Some("edges not a list".into()) };
            for e in edges {
                for k in ["from", "to"] {
                    let v = e.as_mapping_get(k).and_then(|v| v.as_str());
                    if !v.is_some_and(|v| ids.contains(v)) {
                        return Some("edge to unknown node".into());
                    }
                }
            }
        }
        None
    }

    #[test]
    fn broken_files_match_the_manifest_and_the_rest_are_valid() {
        let d = tempfile::tempdir().unwrap();
        let lib = d.path().join("lib");
        let m = generate(&CorpusOptions { out: lib.clone(), count: 1500, seed: 42, broken_ratio: 0.02 }).unwrap();
        assert_eq!(m.broken.len(), 30);
        assert_eq!(m.valid, 1470);
        // Every kind appears.
        for k in BROKEN_KINDS {
            assert!(m.broken.iter().any(|b| b.kind == *k), "kind {k} missing");
        }
        let broken: HashMap<String, String> = m.broken.iter().map(|b| (b.path.clone(), b.kind.clone())).collect();
        let mut blueprints = 0;
        let mut companions = 0;
        for (path, bytes) in tree(&lib) {
            if path.ends_with(".blueprint.meta.json") {
                companions += 1;
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert!(v["tags"].is_array() && v["id"].is_string() && v["created"].is_string(), "{path}");
                continue;
            }
            if !path.ends_with(".blueprint.yaml") {
                assert_eq!(path, MANIFEST_NAME);
                continue;
            }
            blueprints += 1;
            let text = String::from_utf8(bytes).unwrap();
            let err = v1_error(&text);
            // The engine's own analyser agrees.
            let engine_err = bpv_engine::blueprint::analyse(text.as_bytes()).error;
            match broken.get(&path) {
                Some(kind) => {
                    assert!(err.is_some(), "{path} ({kind}) should be invalid:\n{text}");
                    assert!(engine_err.is_some(), "engine accepts {path} ({kind}):\n{text}");
                }
                None => {
                    assert!(err.is_none(), "{path} should be valid: {err:?}\n{text}");
                    assert!(engine_err.is_none(), "engine refuses {path}: {engine_err:?}\n{text}");
                }
            }
        }
        assert_eq!(blueprints, 1500);
        assert_eq!(companions, m.companions);
        // Rare words occur in exactly the recorded files (a substring search, like rg -l -i).
        let lowered: Vec<(String, String)> = tree(&lib)
            .into_iter()
            .filter(|(p, _)| p != MANIFEST_NAME)
            .map(|(p, b)| (p, String::from_utf8_lossy(&b).to_lowercase()))
            .collect();
        for rw in &m.rare_words {
            let hits: Vec<String> =
                lowered.iter().filter(|(_, t)| t.contains(&rw.word)).map(|(p, _)| p.clone()).collect();
            let mut want = rw.paths.clone();
            want.sort();
            assert_eq!(hits, want, "rare word {}", rw.word);
        }
        // Common words really are common.
        for cw in &m.common_words {
            assert!(cw.valid_files * 2 > m.valid, "{} only in {} files", cw.word, cw.valid_files);
        }
        assert!(!m.awkward_names.is_empty());
    }
}
