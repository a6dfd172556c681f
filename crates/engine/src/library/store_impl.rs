//! The library as a [`Store`]: the same contract as every other backend, so the
//! contract suite covers it. Values are blueprint YAML; tags and metadata go to
//! the companion file; delete moves to the trash.

use chrono::{DateTime, Utc};

use super::{BlueprintSave, Library, blueprint_key};
use crate::error::{Error, Result};
use crate::index::{ListQuery, SearchQuery, Sort};
use crate::item::Item;
use crate::key::{Key, normalise_prefix};
use crate::store::{
    BatchOp, Capabilities, Entry, Format, ListPage, Loaded, Page, SaveOptions, SearchHit, Store, StoreInfo, StoreQuery,
};

pub(super) fn library_capabilities() -> Capabilities {
    Capabilities {
        batch: true,
        compress: false,
        expiration: false,
        full_text_search: true,
        metadata: true,
        tags: true,
        durable: true,
        watch: false,
        encrypt: false,
        formats: vec![Format::Yaml],
    }
}

impl Library {
    /// The Store view of an item: its metadata is the companion's extra fields.
    fn entry_of(&self, item: Item) -> Result<Entry> {
        let metadata = match crate::item::companion_path(&item.path) {
            Some(c) => match super::read_if_exists(&self.root.join(c))? {
                Some(bytes) => crate::blueprint::parse_companion(&bytes).map(|c| c.extra).unwrap_or_default(),
                None => serde_json::Map::new(),
            },
            None => serde_json::Map::new(),
        };
        Ok(entry_with(item, metadata))
    }
}

fn entry_with(item: Item, metadata: serde_json::Map<String, serde_json::Value>) -> Entry {
    let modified = DateTime::parse_from_rfc3339(&item.modified).map(|d| d.with_timezone(&Utc)).unwrap_or_default();
    Entry {
        key: item.path,
        size: item.size,
        hash: item.hash,
        modified,
        tags: item.tags,
        metadata,
        expires: None,
        format: Some(Format::Yaml),
        compressed: false,
    }
}

fn unsupported_options(options: &SaveOptions) -> Result<()> {
    if options.compress {
        return Err(Error::Unsupported("blueprint files are stored uncompressed, so other tools can read them".into()));
    }
    if options.expiration.is_some() {
        return Err(Error::Unsupported("blueprints do not expire".into()));
    }
    if matches!(options.format, Some(Format::Binary | Format::Json)) {
        return Err(Error::Unsupported("the library stores blueprints as YAML".into()));
    }
    Ok(())
}

impl Store for Library {
    fn save(&self, key: &Key, data: &[u8], options: &SaveOptions) -> Result<Entry> {
        unsupported_options(options)?;
        // A save replaces the value's tags and metadata, as in every other store.
        let opts = BlueprintSave {
            tags: Some(options.tags.clone()),
            description: None,
            if_match: options.if_match.clone(),
            create_only: options.create_only,
            allow_invalid: false,
            provenance: None,
            metadata: options.metadata.clone(),
            replace_metadata: true,
            encrypted: None,
        };
        let item = self.save_blueprint(key.as_str(), data, &opts)?;
        self.entry_of(item)
    }

    fn load(&self, key: &Key) -> Result<Loaded> {
        let rel = blueprint_key(key.as_str())?.into_string();
        let data = self.read(&rel)?;
        let item = match self.index.get(&rel)? {
            Some(item) => item,
            None => {
                self.refresh(std::slice::from_ref(&rel))?;
                self.item(&rel)?
            }
        };
        Ok(Loaded { entry: self.entry_of(item)?, data })
    }

    fn delete(&self, key: &Key) -> Result<()> {
        Library::delete(self, key.as_str()).map(|_| ())
    }

    fn exists(&self, key: &Key) -> Result<bool> {
        let rel = blueprint_key(key.as_str())?.into_string();
        Ok(self.root.join(rel).is_file())
    }

    fn list(&self, prefix: &str, page: Page) -> Result<ListPage> {
        let prefix = normalise_prefix(prefix)?;
        let folder = prefix.rfind('/').map(|i| prefix[..i].to_owned());
        let all = self.index.list(&ListQuery {
            folder,
            tags: vec![],
            author: None,
            modified_from: None,
            modified_to: None,
            valid: None,
            sort: Sort::Name,
            offset: 0,
            limit: usize::MAX >> 1,
        })?;
        let mut items: Vec<Item> = all.items.into_iter().filter(|i| i.path.starts_with(&prefix)).collect();
        items.sort_by(|a, b| a.path.cmp(&b.path));
        let total = items.len();
        let entries = items
            .into_iter()
            .skip(page.offset)
            .take(page.limit.unwrap_or(usize::MAX))
            .map(|i| self.entry_of(i))
            .collect::<Result<Vec<_>>>()?;
        Ok(ListPage { entries, total })
    }

    fn search(&self, query: &StoreQuery) -> Result<Vec<SearchHit>> {
        let prefix = normalise_prefix(&query.prefix)?;
        let folder = prefix.rfind('/').map(|i| prefix[..i].to_owned());
        let page = self.index.search(&SearchQuery {
            text: query.text.clone(),
            tags: query.tags.clone(),
            folder,
            author: None,
            modified_from: None,
            modified_to: None,
            offset: query.offset,
            limit: query.limit.unwrap_or(1000),
        })?;
        page.hits
            .into_iter()
            .filter(|h| h.item.path.starts_with(&prefix))
            .map(|h| Ok(SearchHit { score: h.score, snippet: h.snippet, entry: self.entry_of(h.item)? }))
            .collect()
    }

    fn info(&self) -> Result<StoreInfo> {
        let stats = self.index.stats()?;
        Ok(StoreInfo {
            backend: "filesystem".into(),
            location: Some(self.root.to_string_lossy().into_owned()),
            entries: stats.items,
            bytes: stats.bytes,
        })
    }

    fn capabilities(&self) -> Capabilities {
        library_capabilities()
    }

    fn batch(&self, ops: &[BatchOp]) -> Result<()> {
        self.apply_batch(ops)
    }
}
