//! A database: the durable [`Store`] plus the in-memory [`Index`] and [`KeyMap`]
//! rebuilt from it on open.
//!
//! Additions and re-encodings go store first, memory second: a batch is
//! validated completely, planned (ids, disambiguation tokens), committed
//! durably, and only then applied to the index under the write lock.
//! Removals go the other way: items leave the index first, then the store
//! (and come back if the commit fails). Readers therefore see either none or
//! all of a batch, and never an item the store does not hold.
//!
//! Item metadata rides in the same store commit; the tantivy metadata index
//! ([`crate::filter`]) is committed after the store and reloaded under the
//! write lock, so a reader holding [`Database::read`] sees index, keys and
//! filters of one and the same commit.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard};

use rayon::prelude::*;

use crate::codec::record::{CHUNK_SLOTS, Chunk, ItemRecord};
use crate::error::{Error, Result};
use crate::filter::{Filters, Meta};
use crate::index::{Index, ItemId, MAX_ITEM_ID};
use crate::keymap::KeyMap;
use crate::sid::{SidLayout, Token, format_tokens};
use crate::snapshot;
use crate::store::{Commit, Store};

/// An item to add or re-encode.
#[derive(Clone, Debug, PartialEq)]
pub struct NewItem {
    /// The external key.
    pub key: String,
    /// Semantic tokens (`levels` of them; no disambiguation token).
    pub tokens: Vec<Token>,
    /// Routing weights of the behavior positions (may be empty).
    pub weights: Vec<f32>,
}

/// What a write did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Items that were new.
    pub inserted: usize,
    /// Existing items whose SID or weights were replaced.
    pub updated: usize,
    /// Items removed.
    pub removed: usize,
}

/// The queryable state: index plus key map, always mutually consistent.
#[derive(Debug)]
pub struct State {
    /// The prefix index.
    pub index: Index,
    /// External keys.
    pub keys: KeyMap,
}

impl State {
    /// Id of an external key, or [`Error::UnknownKey`].
    pub fn id(&self, key: &str) -> Result<ItemId> {
        self.keys
            .id(key)
            .ok_or_else(|| Error::UnknownKey(key.to_string()))
    }

    /// External key of an item id.
    pub fn key(&self, id: ItemId) -> Option<&str> {
        self.keys.key(id)
    }
}

/// An open adasid database.
pub struct Database {
    path: std::path::PathBuf,
    store: Mutex<Store>,
    state: RwLock<State>,
    layout: SidLayout,
    /// The metadata index, once any item has metadata.
    filters: OnceLock<Filters>,
    /// The stored tokenizer, loaded on the first [`Database::encode`].
    tokenizer: OnceLock<crate::tokenizer::Tokenizer>,
}

/// Metadata changes of one commit (`None` removes an item's metadata).
type MetaChanges = Vec<(ItemId, Option<Meta>)>;

/// Folder of the metadata index inside a database folder.
const FILTERS_DIR: &str = "filters";

struct Planned {
    id: ItemId,
    full: Vec<Token>,
    /// A disambiguation token the caller asked for (a full SID was given).
    requested: Option<Token>,
    weights: Vec<f32>,
    key: String,
    existing: bool,
}

impl Database {
    /// Creates an empty database.
    pub fn create(path: &Path, layout: SidLayout) -> Result<Database> {
        let store = Store::create(path, layout)?;
        Ok(Self::from_parts(
            store,
            Index::new(layout),
            KeyMap::default(),
        ))
    }

    /// Opens a database and rebuilds its index from the stored records.
    pub fn open(path: &Path) -> Result<Database> {
        let store = Store::open(path)?;
        let layout = store.layout();
        let raw = store.raw_chunks()?;
        let chunks: Vec<(u32, Chunk)> = raw
            .par_iter()
            .map(|(n, bytes)| Ok((*n, Chunk::decode(bytes)?)))
            .collect::<Result<_>>()?;
        let records = || {
            chunks.iter().flat_map(|(n, c)| {
                c.entries
                    .iter()
                    .map(move |(slot, rec)| (Chunk::item_id(*n, *slot), rec))
            })
        };
        let corrupt =
            |id: u32, detail: String| Error::corruption(format!("item record {id}"), detail);
        // Two independent structures, built side by side.
        let (index, keys) = rayon::join(
            || -> Result<Index> {
                let mut index = Index::new(layout);
                index.reserve_ids(store.next_id());
                if let Some((id, _)) = records().find(|(id, _)| *id >= store.next_id()) {
                    return Err(corrupt(
                        id,
                        format!("id is not below the id counter {}", store.next_id()),
                    ));
                }
                index
                    .bulk_load(records().map(|(id, r)| (id, &r.tokens[..], &r.weights[..])))
                    .map_err(|e| Error::corruption("item records", e.to_string()))?;
                Ok(index)
            },
            || -> Result<KeyMap> {
                let mut keys = KeyMap::default();
                for (id, rec) in records() {
                    if !keys.insert(&rec.key, id) {
                        return Err(corrupt(id, format!("key '{}' appears twice", rec.key)));
                    }
                }
                Ok(keys)
            },
        );
        let (index, keys) = (index?, keys?);
        let db = Self::from_parts(store, index, keys);
        db.open_filters()?;
        Ok(db)
    }

    /// Opens the metadata index if the database has one (or has metadata),
    /// rebuilding it from the store when it lags behind (a crash between the
    /// two commits) or is missing.
    fn open_filters(&self) -> Result<()> {
        let store = self.lock_store();
        let generation = store.meta_generation()?;
        let dir = self.path.join(FILTERS_DIR);
        if generation == 0 && !dir.exists() {
            return Ok(());
        }
        let filters = Filters::open(&dir)?;
        if filters.generation()? != generation {
            let all = store
                .all_meta()?
                .into_iter()
                .map(|(id, json)| Ok((id, parse_meta(&json)?)))
                .collect::<Result<Vec<_>>>()?;
            filters.rebuild(&all, generation)?;
        }
        let _ = self.filters.set(filters);
        Ok(())
    }

    /// Opens the database at `path`, or creates it with `layout` if there is none.
    pub fn open_or_create(path: &Path, layout: Option<SidLayout>) -> Result<Database> {
        match (Store::exists(path), layout) {
            (true, _) => Self::open(path),
            (false, Some(layout)) => Self::create(path, layout),
            (false, None) => Err(Error::NotFound {
                path: path.to_path_buf(),
            }),
        }
    }

    fn from_parts(store: Store, index: Index, keys: KeyMap) -> Database {
        let layout = store.layout();
        Database {
            path: store.path().to_path_buf(),
            store: Mutex::new(store),
            state: RwLock::new(State { index, keys }),
            layout,
            filters: OnceLock::new(),
            tokenizer: OnceLock::new(),
        }
    }

    /// The SID layout.
    pub fn layout(&self) -> SidLayout {
        self.layout
    }

    /// A consistent read view; writers wait while it is held, so keep it short.
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// A named blob (model weights, codebooks, …), if stored.
    pub fn blob(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.lock_store().blob(name)
    }

    /// The database folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.lock_store().size_on_disk()
    }

    fn lock_store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds new items and re-encodes existing ones (matched by key), as one
    /// atomic, durable batch: when this returns `Ok` the batch survives a
    /// crash; on `Err` nothing changed. An item whose semantic tokens did not
    /// change keeps its disambiguation token.
    pub fn upsert(&self, items: &[NewItem]) -> Result<WriteReport> {
        self.upsert_with_blobs(items, Vec::new())
    }

    /// [`Database::upsert`] plus named blobs (a model, its codebooks) in the
    /// same atomic commit.
    pub fn upsert_with_blobs(
        &self,
        items: &[NewItem],
        blobs: Vec<(String, Vec<u8>)>,
    ) -> Result<WriteReport> {
        self.upsert_with_meta(items, &[], blobs)
    }

    /// [`Database::upsert_with_blobs`] plus metadata (JSON objects, by key)
    /// for items of the batch or already stored, in the same atomic commit.
    /// The metadata index is updated before this returns.
    pub fn upsert_with_meta(
        &self,
        items: &[NewItem],
        meta: &[(String, Meta)],
        blobs: Vec<(String, Vec<u8>)>,
    ) -> Result<WriteReport> {
        let mut store = self.lock_store();
        let planned = self.plan_upsert(items, store.next_id())?;
        let changes = {
            let batch: HashMap<&str, ItemId> =
                planned.iter().map(|p| (p.key.as_str(), p.id)).collect();
            let state = self.read();
            meta.iter()
                .map(|(key, m)| {
                    let id = match batch.get(key.as_str()) {
                        Some(&id) => id,
                        None => state.id(key)?,
                    };
                    Ok((id, Some(m.clone())))
                })
                .collect::<Result<MetaChanges>>()?
        };
        self.apply(&mut store, planned, blobs, changes)
    }

    /// Sets the metadata of stored items (by key), replacing what they had,
    /// as one atomic, durable commit. Unknown keys are an error and nothing
    /// is written.
    pub fn set_meta(&self, meta: &[(String, Meta)]) -> Result<WriteReport> {
        if meta.is_empty() {
            return Ok(WriteReport::default());
        }
        self.upsert_with_meta(&[], meta, Vec::new())
    }

    /// The stored metadata of an item.
    pub fn meta(&self, key: &str) -> Result<Option<Meta>> {
        let id = self.read().id(key)?;
        match self.lock_store().meta(id)? {
            Some(json) => parse_meta(&json).map(Some),
            None => Ok(None),
        }
    }

    /// The metadata index, if any item has metadata.
    pub fn filters(&self) -> Option<&Filters> {
        self.filters.get()
    }

    /// The items under `prefix` whose metadata matches `filter` (tantivy
    /// query syntax, see [`crate::filter`]), ascending. Without a filter,
    /// every item under the prefix. Both sides are read under one read lock,
    /// so a concurrent write is seen whole or not at all.
    pub fn search(&self, prefix: &[Token], filter: Option<&str>) -> Result<Vec<ItemId>> {
        self.search_in(&self.read(), prefix, filter)
    }

    /// [`Database::search`] within a read view the caller holds (from
    /// [`Database::read`]), so the ids can be resolved in the same view.
    pub fn search_in(
        &self,
        state: &State,
        prefix: &[Token],
        filter: Option<&str>,
    ) -> Result<Vec<ItemId>> {
        self.layout.check_prefix(prefix)?;
        let Some(postings) = state.index.items(prefix) else {
            return Ok(Vec::new());
        };
        match filter {
            None => Ok(postings.to_sorted_vec()),
            Some(query) => {
                let docs = match self.filters() {
                    Some(f) => f.matching(query)?,
                    None => return Ok(Vec::new()),
                };
                Ok(crate::filter::intersect(postings, &docs))
            }
        }
    }

    /// Gives the items of `data` SIDs with the tokenizer stored in this
    /// database (loaded once, run on the CPU) and upserts them as one atomic,
    /// durable batch: new keys are added, known keys re-encoded.
    pub fn encode(&self, data: &crate::data::embeddings::Dataset) -> Result<WriteReport> {
        let tokenizer = match self.tokenizer.get() {
            Some(t) => t,
            None => {
                let t = crate::tokenizer::Tokenizer::from_database(self, candle_core::Device::Cpu)?;
                self.tokenizer.get_or_init(|| t)
            }
        };
        self.upsert(&tokenizer.encode(data)?)
    }

    /// Writes an immutable snapshot of the current index and keys to `path`
    /// (see [`crate::snapshot`]); returns its size in bytes.
    pub fn snapshot(&self, path: &Path) -> Result<u64> {
        let state = self.read();
        snapshot::write(&state.index, &state.keys, path)
    }

    /// Creates a database holding `items` (and `blobs`) from the start. The
    /// batch is validated before the folder is created, so a rejected batch
    /// (bad tokens, more than K items on one SID, …) leaves no database behind.
    pub fn create_with(
        path: &Path,
        layout: SidLayout,
        items: &[NewItem],
        blobs: Vec<(String, Vec<u8>)>,
    ) -> Result<(Database, WriteReport)> {
        let empty = State {
            index: Index::new(layout),
            keys: KeyMap::default(),
        };
        let planned = plan(&empty, &layout, items, 0)?;
        let db = Self::create(path, layout)?;
        let report = db.apply(&mut db.lock_store(), planned, blobs, Vec::new())?;
        Ok((db, report))
    }

    /// Commits a planned batch durably, then publishes it to readers.
    fn apply(
        &self,
        store: &mut Store,
        planned: Vec<Planned>,
        blobs: Vec<(String, Vec<u8>)>,
        meta: MetaChanges,
    ) -> Result<WriteReport> {
        let next_id = planned
            .iter()
            .map(|p| p.id + 1)
            .max()
            .unwrap_or(0)
            .max(store.next_id());
        let commit = Commit {
            chunks: rewrite_chunks(
                store,
                planned.iter().map(|p| {
                    let rec = ItemRecord {
                        key: p.key.clone(),
                        tokens: p.full.clone(),
                        weights: p.weights.clone(),
                    };
                    (p.id, Some(rec))
                }),
            )?,
            next_id,
            blobs,
            meta: meta_records(&meta),
        };
        store.commit(commit)?;
        let filters = self.update_filters(store, &meta)?;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        // Remove every re-encoded item first: a new item may take the full SID
        // another item of the same batch is leaving.
        for p in planned.iter().filter(|p| p.existing) {
            state.index.remove(p.id)?;
        }
        let mut report = WriteReport::default();
        for p in &planned {
            state.index.insert(p.id, &p.full, &p.weights)?;
            if p.existing {
                report.updated += 1;
            } else {
                state.keys.insert(&p.key, p.id);
                report.inserted += 1;
            }
        }
        if let Some(f) = filters {
            f.reload()?;
        }
        Ok(report)
    }

    /// Commits metadata changes to the metadata index (after the store),
    /// opening it on first use; returns it when it needs a reload.
    fn update_filters(&self, store: &Store, meta: &MetaChanges) -> Result<Option<&Filters>> {
        if meta.is_empty() {
            return Ok(None);
        }
        if self.filters.get().is_none() {
            let _ = self
                .filters
                .set(Filters::open(&self.path.join(FILTERS_DIR))?);
        }
        let filters = self.filters.get().expect("just set");
        filters.apply(meta, store.meta_generation()?)?;
        Ok(Some(filters))
    }

    fn plan_upsert(&self, items: &[NewItem], next_id: u32) -> Result<Vec<Planned>> {
        plan(&self.read(), &self.layout, items, next_id)
    }
}

/// Validates a batch against `state` and gives every item its id and full SID.
fn plan(
    state: &State,
    layout: &SidLayout,
    items: &[NewItem],
    mut next_id: u32,
) -> Result<Vec<Planned>> {
    {
        let layout = *layout;
        let mut seen = HashSet::with_capacity(items.len());
        let mut planned = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let bad = |m: String| {
                Error::InvalidArgument(format!("item '{}' (#{}): {m}", item.key, i + 1))
            };
            let (tokens, requested) = split_full(&layout, &item.tokens).map_err(bad)?;
            let semantic = layout.canonical(tokens, &item.weights).map_err(bad)?;
            if !seen.insert(item.key.as_str()) {
                return Err(Error::InvalidArgument(format!(
                    "item '{}' appears twice in one batch",
                    item.key
                )));
            }
            let existing = state.keys.id(&item.key);
            let id = match existing {
                Some(id) => id,
                None => {
                    if next_id > MAX_ITEM_ID {
                        return Err(Error::InvalidArgument(
                            "the database is full (2^31 item ids)".into(),
                        ));
                    }
                    next_id += 1;
                    next_id - 1
                }
            };
            planned.push(Planned {
                id,
                full: semantic,
                requested,
                weights: item.weights.clone(),
                key: item.key.clone(),
                existing: existing.is_some(),
            });
        }
        assign_disambiguators(&state.index, &mut planned)?;
        Ok(planned)
    }
}

impl Database {
    /// Removes items by key as one atomic, durable batch. Unknown keys are an
    /// error and nothing is removed.
    pub fn remove(&self, keys: &[&str]) -> Result<WriteReport> {
        let mut store = self.lock_store();
        let ids: Vec<ItemId> = {
            let state = self.read();
            let mut ids = keys
                .iter()
                .map(|k| state.id(k))
                .collect::<Result<Vec<_>>>()?;
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        let next_id = store.next_id();
        let meta: MetaChanges = if self.filters().is_some() {
            ids.iter().map(|&id| (id, None)).collect()
        } else {
            Vec::new()
        };
        let commit = Commit {
            chunks: rewrite_chunks(&store, ids.iter().map(|&id| (id, None)))?,
            next_id,
            blobs: Vec::new(),
            meta: meta_records(&meta),
        };
        // Unpublish first, so no reader sees an item whose record is being
        // deleted; put the items back if the commit fails.
        let removed = self.unpublish(&ids)?;
        if let Err(e) = store.commit(commit) {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            for (id, key, sid, weights) in removed {
                state.index.insert(id, &sid, &weights)?;
                state.keys.insert(&key, id);
            }
            return Err(e);
        }
        if let Some(f) = self.update_filters(&store, &meta)? {
            f.reload()?;
        }
        Ok(WriteReport {
            removed: ids.len(),
            ..Default::default()
        })
    }
}

impl Database {
    /// Takes items out of the index and key map; returns what they held.
    #[allow(clippy::type_complexity)]
    fn unpublish(&self, ids: &[ItemId]) -> Result<Vec<(ItemId, String, Vec<Token>, Vec<f32>)>> {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let mut removed = Vec::with_capacity(ids.len());
        for &id in ids {
            let (sid, weights) = state
                .index
                .sid(id)
                .map(|(s, w)| (s.to_vec(), w.to_vec()))
                .ok_or_else(|| {
                    Error::corruption("index", format!("item {id} has a key but no SID"))
                })?;
            state.index.remove(id)?;
            let key = state.keys.remove(id).map(String::from).unwrap_or_default();
            removed.push((id, key, sid, weights));
        }
        Ok(removed)
    }
}

fn meta_records(meta: &MetaChanges) -> Vec<(u32, Option<Vec<u8>>)> {
    meta.iter()
        .map(|(id, m)| {
            let json = m
                .as_ref()
                .map(|m| serde_json::to_vec(m).expect("a JSON map serialises"));
            (*id, json)
        })
        .collect()
}

fn parse_meta(json: &[u8]) -> Result<Meta> {
    serde_json::from_slice(json).map_err(|e| Error::corruption("item metadata", e.to_string()))
}

/// Gives each planned item its full SID. Items whose semantic tokens are
/// unchanged keep their token; the others take the smallest free one.
fn assign_disambiguators(index: &Index, planned: &mut [Planned]) -> Result<()> {
    let k = index.layout().k();
    let current = |p: &Planned| index.sid(p.id).map(|(old, _)| old.to_vec());
    let keeps = |p: &Planned| {
        p.existing
            && current(p).is_some_and(|old| {
                old[..p.full.len()] == p.full[..]
                    && p.requested.is_none_or(|d| d == old[p.full.len()])
            })
    };
    let moving: HashSet<ItemId> = planned
        .iter()
        .filter(|p| p.existing && !keeps(p))
        .map(|p| p.id)
        .collect();
    for p in planned
        .iter_mut()
        .filter(|p| p.existing && !moving.contains(&p.id))
    {
        let old = current(p).expect("existing item is indexed");
        p.full.push(old[p.full.len()]);
    }
    let mut used: HashMap<Vec<Token>, BTreeSet<Token>> = HashMap::new();
    let taken_for = |semantic: &[Token]| -> BTreeSet<Token> {
        index
            .disambiguators(semantic)
            .into_iter()
            .filter(|(_, item)| !moving.contains(item))
            .map(|(t, _)| t)
            .collect()
    };
    // Requested tokens first, so automatic ones never take them.
    for p in planned
        .iter_mut()
        .filter(|p| p.full.len() < index.layout().full_len() && p.requested.is_some())
    {
        let d = p.requested.expect("filtered");
        let taken = used
            .entry(p.full.clone())
            .or_insert_with(|| taken_for(&p.full));
        if !taken.insert(d) {
            return Err(Error::InvalidArgument(format!(
                "item '{}': the full SID {},{d} belongs to another item",
                p.key,
                format_tokens(&p.full)
            )));
        }
        p.full.push(d);
    }
    for p in planned
        .iter_mut()
        .filter(|p| p.full.len() < index.layout().full_len())
    {
        let taken = used
            .entry(p.full.clone())
            .or_insert_with(|| taken_for(&p.full));
        let d = (0usize..)
            .zip(taken.iter())
            .find(|(want, have)| *want != **have as usize)
            .map_or(taken.len(), |(want, _)| want);
        if d >= k as usize {
            return Err(Error::TooManyCollisions {
                sid: format_tokens(&p.full),
                count: taken.len() + 1,
                k,
            });
        }
        taken.insert(d as Token);
        p.full.push(d as Token);
    }
    Ok(())
}

/// Splits a token list into semantic tokens and an optional requested
/// disambiguation token (present when the full SID, `levels + 1` tokens, is given).
pub(crate) fn split_full<'a>(
    layout: &SidLayout,
    tokens: &'a [Token],
) -> std::result::Result<(&'a [Token], Option<Token>), String> {
    if tokens.len() == layout.full_len() {
        let d = tokens[layout.levels()];
        if d as u32 >= layout.k() {
            return Err(format!(
                "disambiguation token {d} is not below K = {}",
                layout.codebook_size
            ));
        }
        return Ok((&tokens[..layout.levels()], Some(d)));
    }
    Ok((tokens, None))
}

/// Loads each chunk touched by `changes` once, applies the changes
/// (`None` removes), and returns the rewritten chunks.
fn rewrite_chunks(
    store: &Store,
    changes: impl Iterator<Item = (ItemId, Option<ItemRecord>)>,
) -> Result<Vec<(u32, Option<Chunk>)>> {
    let mut chunks: BTreeMap<u32, Chunk> = BTreeMap::new();
    for (id, record) in changes {
        let number = Chunk::number(id);
        let chunk = match chunks.entry(number) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let existing = if Chunk::item_id(number, 0) < store.next_id() {
                    store.chunk(number)?
                } else {
                    None
                };
                e.insert(existing.unwrap_or_default())
            }
        };
        let slot = (id % CHUNK_SLOTS) as u8;
        match record {
            Some(rec) => chunk.put(slot, rec),
            None => {
                chunk.remove(slot);
            }
        }
    }
    Ok(chunks.into_iter().map(|(n, c)| (n, Some(c))).collect())
}
