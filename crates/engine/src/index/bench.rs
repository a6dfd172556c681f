//! Micro benchmark at 100k synthetic blueprints (ignored by default):
//!
//! ```sh
//! cargo test -p bpv-engine --lib index::bench -- --ignored --nocapture
//! ```
//! `BPV_BENCH_ITEMS` changes the size.

use std::time::{Duration, Instant};

use super::tests::doc;
use super::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Zipf-ish: small indexes far more likely.
    fn skewed(&mut self, n: usize) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((n as f64).powf(u) as usize).saturating_sub(1).min(n - 1)
    }
}

const COMMON: &[&str] = &[
    "the", "data", "send", "report", "daily", "sales", "customer", "email", "fetch", "update", "summary", "slack",
    "notify", "weekly", "invoice", "lead", "sync", "export", "import", "alert",
];

fn vocabulary() -> Vec<String> {
    let syll =
        ["ka", "lo", "mi", "ren", "tor", "vex", "sa", "qui", "dan", "pel", "mor", "zu", "ti", "bra", "nel", "gos"];
    let mut words: Vec<String> = COMMON.iter().map(|s| s.to_string()).collect();
    for a in syll {
        for b in syll {
            for c in syll {
                words.push(format!("{a}{b}{c}"));
            }
        }
    }
    words
}

fn sentence(rng: &mut Rng, vocab: &[String], n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&vocab[rng.skewed(vocab.len())]);
    }
    s
}

fn synthetic_docs(n: usize) -> Vec<IndexDoc> {
    let vocab = vocabulary();
    let tags: Vec<String> = (0..60).map(|i| if i < 10 { COMMON[i].to_owned() } else { format!("tag{i}") }).collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|i| {
            let area = match i % 10 {
                0..=4 => "Blueprints/personal".to_owned(),
                5..=7 => "Blueprints/shared".to_owned(),
                _ => format!("Templates/t{}", rng.below(50)),
            };
            let folder = format!("{area}/f{}/g{}", rng.below(20), rng.below(5));
            let path = format!("{folder}/bp-{i}.blueprint.yaml");
            let cjk = i % 20 == 0;
            let name = if cjk {
                format!("東京タワー監視 {}", sentence(&mut rng, &vocab, 1))
            } else {
                {
                    let k = 2 + rng.below(3);
                    sentence(&mut rng, &vocab, k)
                }
            };
            let mut d = doc(&path, &name);
            let k = 8 + rng.below(12);
            d.item.description = Some(format!("the {}", sentence(&mut rng, &vocab, k)));
            d.item.tags = (0..1 + rng.below(3)).map(|_| tags[rng.skewed(tags.len())].clone()).collect();
            d.item.tags.dedup();
            d.item.author = Some(format!("Author {}", rng.below(50)));
            let day = 1 + rng.below(28);
            let hour = rng.below(24);
            d.item.modified = format!("2024-02-{day:02}T{hour:02}:{:02}:00.000Z", rng.below(60));
            d.item.valid = i % 97 != 0;
            if !d.item.valid {
                d.item.error = Some("line 3: bad".into());
            }
            let nodes = 3 + rng.below(8);
            let mut content = String::new();
            for k in 0..nodes {
                let len = 5 + rng.below(15);
                content.push_str(&format!("node{k}\nhttp.request\n{}\n", sentence(&mut rng, &vocab, len)));
            }
            d.content = content;
            d.node_count = nodes as u32;
            d
        })
        .collect()
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Wall-clock p50/p99 and thread-CPU p50/p99 (the CPU numbers are steadier on a shared
/// machine).
fn measure(label: &str, runs: usize, mut f: impl FnMut() -> usize) {
    let mut wall: Vec<Duration> = Vec::with_capacity(runs);
    let mut cpu: Vec<Duration> = Vec::with_capacity(runs);
    let mut n = 0;
    for _ in 0..runs {
        let (t, c) = (Instant::now(), thread_cpu());
        n = f();
        cpu.push(thread_cpu() - c);
        wall.push(t.elapsed());
    }
    wall.sort();
    cpu.sort();
    let pct =
        |v: &[Duration], p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1].as_secs_f64() * 1e3;
    println!(
        "{label:<40} wall p50 {:>7.2} p99 {:>7.2} | cpu p50 {:>7.2} p99 {:>7.2} ms  (total {n})",
        pct(&wall, 0.5),
        pct(&wall, 0.99),
        pct(&cpu, 0.5),
        pct(&cpu, 0.99)
    );
}

#[test]
#[ignore = "benchmark: run explicitly with --ignored --nocapture"]
fn index_bench_100k() {
    let n: usize = std::env::var("BPV_BENCH_ITEMS").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::TempDir::new().unwrap();
    // BPV_BENCH_DB=/some/file.sqlite keeps the index (and reuses it when it exists).
    let keep = std::env::var_os("BPV_BENCH_DB").map(std::path::PathBuf::from);
    let path = keep.clone().unwrap_or_else(|| dir.path().join("index.sqlite"));
    if !path.exists() {
        let t = Instant::now();
        let docs = synthetic_docs(n);
        println!("generated {n} docs in {:?}", t.elapsed());
        let ix = Index::open(&path).unwrap();
        let (t, c) = (Instant::now(), thread_cpu());
        ix.rebuild(&docs).unwrap();
        let (took, cpu) = (t.elapsed(), thread_cpu() - c);
        println!("rebuild: {took:?} wall, {cpu:?} cpu ({:.0} docs/s wall)", n as f64 / took.as_secs_f64());
        let wal = std::fs::metadata(format!("{}-wal", path.display())).map(|m| m.len()).unwrap_or(0);
        println!(
            "index size: {:.1} MB (+ wal {:.1} MB)",
            std::fs::metadata(&path).unwrap().len() as f64 / 1e6,
            wal as f64 / 1e6
        );
        let (t, c) = (Instant::now(), thread_cpu());
        let upd: Vec<IndexDoc> = docs[..100]
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.item.name.push_str(" updated");
                d
            })
            .collect();
        ix.apply(&upd, &[docs[200].item.path.clone()]).unwrap();
        println!("apply 100 upserts + 1 removal: {:?} wall, {:?} cpu", t.elapsed(), thread_cpu() - c);
    }
    if std::env::var_os("BPV_BENCH_REBUILD_ONLY").is_some() {
        return;
    }
    let get_path = "Blueprints/personal/f1/g1/bp-10.blueprint.yaml";
    let t = Instant::now();
    let ix = Index::open(&path).unwrap();
    let first = ix.list(&ListQuery { limit: 50, ..Default::default() }).unwrap();
    println!("open + first list page: {:?} (total {})", t.elapsed(), first.total);

    let runs = 100;
    let ixr = &ix;
    let list = |q: ListQuery| move || ixr.list(&q).unwrap().total;
    let base = ListQuery { limit: 50, ..Default::default() };
    measure("list: all by name", runs, list(base.clone()));
    measure("list: all by modified", runs, list(ListQuery { sort: Sort::Modified, ..base.clone() }));
    measure("list: all by name, offset 50000", runs, list(ListQuery { offset: 50_000, ..base.clone() }));
    measure(
        "list: folder 50% by name",
        runs,
        list(ListQuery { folder: Some("Blueprints/personal".into()), ..base.clone() }),
    );
    measure(
        "list: folder 50% by modified",
        runs,
        list(ListQuery { folder: Some("Blueprints/personal".into()), sort: Sort::Modified, ..base.clone() }),
    );
    measure(
        "list: folder 0.1% by name",
        runs,
        list(ListQuery { folder: Some("Blueprints/shared/f3/g1".into()), ..base.clone() }),
    );
    measure(
        "list: folder 0.02% by name",
        runs,
        list(ListQuery { folder: Some("Templates/t7".into()), ..base.clone() }),
    );
    measure("list: common tag", runs, list(ListQuery { tags: vec!["the".into()], ..base.clone() }));
    measure("list: rare tag", runs, list(ListQuery { tags: vec!["tag55".into()], ..base.clone() }));
    measure("list: author", runs, list(ListQuery { author: Some("author 7".into()), ..base.clone() }));
    measure("list: invalid only", runs, list(ListQuery { valid: Some(false), ..base.clone() }));

    let search = |text: &str| {
        let q = SearchQuery { text: text.to_owned(), limit: 50, ..Default::default() };
        move || ixr.search(&q).unwrap().total
    };
    for text in [
        "the ",
        "data ",
        "the data",
        "d",
        "da",
        "dat",
        "sales report ",
        "\"daily sales\"",
        "kalomi ",
        "kalo",
        "zuzuzu ",
        "東京",
        "監視",
        "東京タワー",
        "nomatchword ",
    ] {
        measure(&format!("search: {text:?}"), runs, search(text));
    }
    let q = SearchQuery {
        text: "data".into(),
        folder: Some("Blueprints/shared".into()),
        tags: vec!["the".into()],
        limit: 50,
        ..Default::default()
    };
    measure("search: \"data\" + folder + tag", runs, || ix.search(&q).unwrap().total);
    let q = SearchQuery { text: "report".into(), author: Some("Author 3".into()), limit: 50, ..Default::default() };
    measure("search: \"report\" + author", runs, || ix.search(&q).unwrap().total);
    measure("tag_counts(None)", 20, || ix.tag_counts(None).unwrap().len());
    measure("tag_counts(Blueprints/shared)", 20, || ix.tag_counts(Some("Blueprints/shared")).unwrap().len());
    measure("folders()", 20, || ix.folders().unwrap().len());
    measure("stats()", 20, || ix.stats().unwrap().items as usize);
    measure("file_states()", 5, || ix.file_states().unwrap().len());
    let some_path = ix.list(&ListQuery { limit: 1, offset: 777, ..Default::default() }).unwrap().items[0].path.clone();
    let _ = get_path;
    measure("get()", runs, || usize::from(ix.get(&some_path).unwrap().is_some()));
    let mut k = 0;
    let docs = synthetic_docs(200);
    measure("apply(1 upsert) (existing path)", 50, || {
        k += 1;
        let mut d = docs[k % docs.len()].clone();
        d.item.name = format!("renamed {k}");
        ix.apply(&[d], &[]).unwrap();
        1
    });
    measure("apply(100 upserts)", 5, || {
        ix.apply(&docs[..100], &[]).unwrap();
        100
    });
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines().filter(|l| {
        l.starts_with("VmRSS") || l.starts_with("VmHWM") || l.starts_with("RssFile") || l.starts_with("RssAnon")
    }) {
        println!("{line}");
    }
}
