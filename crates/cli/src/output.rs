//! Everything `bpv` prints: JSON for scripts (`--json`), short readable text for people.

use std::io::Write;
use std::path::Path;

use bpv_engine::index::{FolderCount, SearchHit, TagCount};
use bpv_engine::library::{LibraryInfo, ReindexReport, TrashEntry, Version};
use bpv_engine::{Error, Item, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::json;

pub struct Out {
    json: bool,
}

fn emit_json<T: Serialize + ?Sized>(v: &T) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, v)
        .map_err(|e| Error::Io { context: "cannot write output".into(), source: e.into() })?;
    writeln!(stdout).map_err(|e| Error::Io { context: "cannot write output".into(), source: e })
}

fn print(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}").map_err(|e| Error::Io { context: "cannot write output".into(), source: e })
}

/// A progress bar on stderr, only for people at a terminal (never with --json).
pub fn progress_bar(out: &Out, what: &str) -> Option<ProgressBar> {
    if out.json || !crate::stderr_is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    Some(bar)
}

fn folder_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(f, _)| f).unwrap_or("")
}

fn item_line(i: &Item) -> String {
    let marker = if i.valid { " " } else { "!" };
    let tags = if i.tags.is_empty() { String::new() } else { format!("  [{}]", i.tags.join(", ")) };
    let mut line =
        format!("{marker} {:<40}  {}{}  {}", i.name, folder_of(&i.path), tags, &i.modified[..10.min(i.modified.len())]);
    if let Some(e) = &i.error {
        line.push_str(&format!("\n    invalid: {e}"));
    }
    line
}

impl Out {
    pub fn new(json: bool) -> Out {
        Out { json }
    }

    pub fn error(&self, e: &Error) {
        let mut stderr = std::io::stderr().lock();
        let _ = if self.json {
            writeln!(stderr, "{}", json!({ "code": e.code(), "message": e.to_string() }))
        } else {
            writeln!(stderr, "bpv: {e}")
        };
    }

    pub fn init(&self, root: &Path, info: &LibraryInfo) -> Result<()> {
        if self.json {
            return emit_json(&json!({ "library": root, "items": info.stats.items }));
        }
        print(&format!("Library ready at {} ({} blueprints)", root.display(), info.stats.items))
    }

    pub fn reindex(&self, r: &ReindexReport) -> Result<()> {
        if self.json {
            return emit_json(r);
        }
        print(&format!("Indexed {} blueprints in {} ms ({} invalid)", r.indexed, r.millis, r.invalid.len()))?;
        for i in &r.invalid {
            print(&format!("  ! {}: {}", i.path, i.error))?;
        }
        Ok(())
    }

    pub fn items(&self, items: &[Item], total: usize) -> Result<()> {
        if self.json {
            return emit_json(items);
        }
        if items.is_empty() {
            return print("No blueprints here. Add one with `bpv save PATH --file FILE`.");
        }
        for i in items {
            print(&item_line(i))?;
        }
        if total > items.len() {
            print(&format!("({} of {total}; use --offset/--limit for more)", items.len()))?;
        }
        Ok(())
    }

    pub fn hits(&self, hits: &[SearchHit], total: usize) -> Result<()> {
        if self.json {
            return emit_json(hits);
        }
        if hits.is_empty() {
            return print("No matches.");
        }
        for h in hits {
            print(&item_line(&h.item))?;
            if let Some(s) = &h.snippet {
                print(&format!("    {}", s.replace("<mark>", "\x1b[1m").replace("</mark>", "\x1b[0m")))?;
            }
        }
        if total > hits.len() {
            print(&format!("({} of {total} matches)", hits.len()))?;
        }
        Ok(())
    }

    pub fn item(&self, i: &Item) -> Result<()> {
        if self.json {
            return emit_json(i);
        }
        let mut s = format!("{}\n  path: {}\n", i.name, i.path);
        for (k, v) in [("id", &i.id), ("description", &i.description), ("author", &i.author), ("version", &i.version)] {
            if let Some(v) = v {
                s.push_str(&format!("  {k}: {v}\n"));
            }
        }
        s.push_str(&format!(
            "  tags: {}\n  modified: {}\n  size: {}\n  hash: {}\n",
            i.tags.join(", "),
            i.modified,
            i.size,
            i.hash
        ));
        if let Some(e) = &i.error {
            s.push_str(&format!("  invalid: {e}\n"));
        }
        print(s.trim_end())
    }

    pub fn saved(&self, i: &Item) -> Result<()> {
        if self.json {
            return emit_json(i);
        }
        print(&format!("Saved {} ({})", i.path, &i.hash[..12.min(i.hash.len())]))
    }

    pub fn moved(&self, i: &Item) -> Result<()> {
        if self.json {
            return emit_json(i);
        }
        print(&format!("Moved to {}", i.path))
    }

    pub fn deleted(&self, e: &TrashEntry) -> Result<()> {
        if self.json {
            return emit_json(e);
        }
        print(&format!("Moved {} to the trash (restore with `bpv trash restore {}`)", e.path, e.id))
    }

    pub fn trash(&self, entries: &[TrashEntry]) -> Result<()> {
        if self.json {
            return emit_json(entries);
        }
        if entries.is_empty() {
            return print("The trash is empty.");
        }
        for e in entries {
            print(&format!("{}  {}  (deleted {})", e.id, e.path, e.deleted))?;
        }
        Ok(())
    }

    pub fn emptied(&self, n: usize) -> Result<()> {
        if self.json {
            return emit_json(&json!({ "removed": n }));
        }
        print(&format!("Removed {n} item(s) from the trash"))
    }

    pub fn versions(&self, v: &[Version]) -> Result<()> {
        if self.json {
            return emit_json(v);
        }
        if v.is_empty() {
            return print("No earlier versions.");
        }
        for x in v {
            print(&format!("{}  replaced {}  {} bytes", x.id, x.saved, x.size))?;
        }
        Ok(())
    }

    pub fn tags(&self, tags: &[TagCount]) -> Result<()> {
        if self.json {
            return emit_json(tags);
        }
        for t in tags {
            print(&format!("{:>7}  {}", t.count, t.tag))?;
        }
        Ok(())
    }

    pub fn folders(&self, folders: &[FolderCount]) -> Result<()> {
        if self.json {
            return emit_json(folders);
        }
        for f in folders {
            print(&format!("{:>7}  {}", f.count, f.path))?;
        }
        Ok(())
    }

    pub fn info(&self, info: &LibraryInfo) -> Result<()> {
        if self.json {
            let mut v = serde_json::to_value(info).map_err(|e| Error::Corrupt(e.to_string()))?;
            if let Some(o) = v.as_object_mut() {
                o.insert("version".into(), env!("CARGO_PKG_VERSION").into());
            }
            return emit_json(&v);
        }
        print(&format!(
            "Library:   {}\nData:      {}\nIndex:     {}\nBlueprints: {} ({} invalid, {} encrypted), {} bytes\nTrash:     {}\nBackend:   {}\nWatcher:   {}",
            info.library,
            info.data_dir,
            info.index,
            info.stats.items,
            info.stats.invalid,
            info.stats.encrypted,
            info.stats.bytes,
            info.trash,
            info.backend,
            info.watcher.state
        ))
    }
}
