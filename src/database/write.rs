//! Writes: upserts (with blobs and metadata) and removals, each one atomic,
//! durable store commit published to readers whole.

use std::collections::HashMap;
use std::path::Path;

use super::Database;
use super::first::FirstBatch;
use super::plan::{Planned, plan};
use super::state::State;
use rayon::prelude::*;

use crate::codec::record::{CHUNK_SLOTS, Chunk, RecordRef, encode_chunk};
use crate::data::meta::Meta;
use crate::error::{Error, Result};
use crate::index::{Index, ItemId};
use crate::item::{ItemInput, NewItem};
use crate::keymap::KeyMap;
use crate::sid::{SidLayout, Token};
use crate::snapshot;
use crate::store::{Commit, Store};

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

/// Metadata changes of one commit (`None` removes an item's metadata).
pub(super) type MetaChanges = Vec<(ItemId, Option<Meta>)>;

/// A batch without items (metadata or blobs only).
const NO_ITEMS: &[NewItem] = &[];

/// What a removal takes out of memory, to put back if the commit fails.
type Unpublished = Vec<(ItemId, String, Vec<Token>, Vec<f32>)>;

impl Database {
    /// Adds new items and re-encodes existing ones (matched by key), as one
    /// atomic, durable batch: when this returns `Ok` the batch survives a
    /// crash and is visible; on `Err` nothing changed. An item whose semantic
    /// tokens did not change keeps its disambiguation token.
    pub fn upsert(&self, items: &[impl ItemInput]) -> Result<WriteReport> {
        self.upsert_with_blobs(items, Vec::new())
    }

    /// [`Database::upsert`] plus named blobs (a model, its codebooks) in the
    /// same atomic commit.
    pub fn upsert_with_blobs(
        &self,
        items: &[impl ItemInput],
        blobs: Vec<(String, Vec<u8>)>,
    ) -> Result<WriteReport> {
        self.upsert_with_meta(items, &[], blobs)
    }

    /// [`Database::upsert_with_blobs`] plus metadata (JSON objects, by key)
    /// for items of the batch or already stored, in the same atomic commit.
    pub fn upsert_with_meta(
        &self,
        items: &[impl ItemInput],
        meta: &[(String, Meta)],
        blobs: Vec<(String, Vec<u8>)>,
    ) -> Result<WriteReport> {
        let mut store = self.lock_store();
        let state = self.read();
        let planned = plan(&state, items, store.next_id())?;
        let changes = meta_changes(&state, &planned, meta)?;
        drop(state);
        self.apply(&mut store, planned, blobs, changes)
    }

    /// Sets the metadata of stored items (by key), replacing what they had,
    /// as one atomic, durable commit. Unknown keys are an error and nothing
    /// is written.
    pub fn set_meta(&self, meta: &[(String, Meta)]) -> Result<WriteReport> {
        if meta.is_empty() {
            return Ok(WriteReport::default());
        }
        self.upsert_with_meta(NO_ITEMS, meta, Vec::new())
    }

    /// Stores named blobs (a model trained on the database's SIDs) as one
    /// atomic, durable commit, replacing blobs of the same names.
    pub fn put_blobs(&self, blobs: Vec<(String, Vec<u8>)>) -> Result<WriteReport> {
        self.upsert_with_blobs(NO_ITEMS, blobs)
    }

    /// The stored metadata of an item.
    pub fn meta(&self, key: &str) -> Result<Option<Meta>> {
        let id = self.read().id(key)?;
        match self.lock_store().meta(id)? {
            Some(json) => parse_meta(&json).map(Some),
            None => Ok(None),
        }
    }

    /// Creates a database holding `items` (with `meta` and `blobs`) in one
    /// commit. Everything is validated before the folder is created, so a
    /// rejected batch (bad tokens, more than K items on one SID, unknown
    /// metadata keys, …) leaves no database behind.
    pub fn create_with(
        path: &Path,
        layout: SidLayout,
        items: &[impl ItemInput],
        meta: &[(String, Meta)],
        blobs: Vec<(String, Vec<u8>)>,
    ) -> Result<(Database, WriteReport)> {
        let empty = State::new(Index::new(layout), KeyMap::default());
        let planned = plan(&empty, items, 0)?;
        let changes = meta_changes(&empty, &planned, meta)?;
        // The first batch is committed before the folder is put in place, so
        // a crash leaves no database rather than an empty one. Its
        // publication's sections are built meanwhile (both only read the
        // batch); they are written once the commit is in place.
        let mut staged = Store::stage(path, layout)?;
        let batch = FirstBatch::new(layout, &planned);
        let store = staged.store();
        let (committed, sections) = rayon::join(
            || commit_planned(store, &planned, blobs, &changes),
            || batch.as_ref().map(snapshot::Sections::of),
        );
        committed?;
        let db = Self::from_parts(staged.finish()?, empty);
        let store = db.lock_store();
        let report = db.publish_first(&store, &planned, &changes, sections);
        drop(store);
        Ok((db, report))
    }

    /// Makes a new database's first batch visible: its publication is
    /// written straight from the batch and mapped, so the in-memory index
    /// that publishing one would replace is never built (1M items: about
    /// 1 s). Where that fails the batch is applied in memory, as a later
    /// one is, and published after (unless only the mapping failed).
    fn publish_first(
        &self,
        store: &Store,
        planned: &[Planned],
        meta: &MetaChanges,
        sections: Option<Result<snapshot::Sections>>,
    ) -> WriteReport {
        // The metadata index first, as for any batch: a publication names
        // the metadata commit it shows.
        self.update_filters(store, meta);
        // Sections that could not be built are not handed to the publisher:
        // the usual publication after the commit tries (and reports) again.
        let built = sections.and_then(Result::ok);
        let file = built.and_then(|s| self.write_sections(store, || Ok(s)).ok());
        let base = file
            .as_ref()
            .and_then(|f| super::map_base(f, self.layout, false).ok());
        let report = self.show(|state| match base {
            Some(base) => {
                *state = base;
                #[cfg(test)]
                super::first::PUBLISHED_STRAIGHT.with(|n| n.set(n.get() + 1));
                WriteReport {
                    inserted: planned.len(),
                    ..Default::default()
                }
            }
            None => publish(state, planned),
        });
        if file.is_none() {
            self.after_commit(store);
        }
        report
    }

    /// Commits a planned batch durably, then publishes it to readers. After
    /// the store commit nothing can fail the call: the batch was validated
    /// against the index it is applied to, under the store lock.
    fn apply(
        &self,
        store: &mut Store,
        planned: Vec<Planned>,
        blobs: Vec<(String, Vec<u8>)>,
        meta: MetaChanges,
    ) -> Result<WriteReport> {
        self.before_commit(!blobs.is_empty())?;
        commit_planned(store, &planned, blobs, &meta)?;
        let report = self.publish_committed(store, &planned, &meta);
        self.after_commit(store);
        Ok(report)
    }

    /// Makes a committed batch visible: the metadata index, then the index
    /// and key map under the write lock.
    fn publish_committed(
        &self,
        store: &Store,
        planned: &[Planned],
        meta: &MetaChanges,
    ) -> WriteReport {
        self.update_filters(store, meta);
        self.show(|state| publish(state, planned))
    }

    /// Applies `change` to the index and key map under the write lock and
    /// reloads the metadata index readers search: the last step of making
    /// a batch visible.
    fn show(&self, change: impl FnOnce(&mut State) -> WriteReport) -> WriteReport {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let report = change(&mut state);
        self.reload_filters();
        report
    }

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
        let with_meta = store.meta_generation()? > 0;
        let meta: MetaChanges = match with_meta {
            true => ids.iter().map(|&id| (id, None)).collect(),
            false => Vec::new(),
        };
        let commit = Commit {
            chunks: rewrite_chunks(&store, ids.iter().map(|&id| (id, None)).collect())?,
            next_id: store.next_id(),
            blobs: Vec::new(),
            meta: meta_records(&meta),
        };
        self.before_commit(false)?;
        // Unpublish first, so no reader sees an item whose record is being
        // deleted; put the items back if the commit fails.
        let removed = unpublish(
            &mut self.state.write().unwrap_or_else(|p| p.into_inner()),
            &ids,
        )?;
        if let Err(e) = store.commit(commit) {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            let sids: Vec<_> = removed
                .iter()
                .map(|(id, _, s, w)| (*id, &s[..], &w[..]))
                .collect();
            let keys: Vec<_> = removed
                .iter()
                .map(|(id, k, _, _)| (k.as_str(), *id))
                .collect();
            state.insert_with_keys(&sids, &keys)?;
            return Err(e);
        }
        self.update_filters(&store, &meta);
        let readers_wait = self.state.write().unwrap_or_else(|p| p.into_inner());
        self.reload_filters();
        drop(readers_wait);
        self.after_commit(&store);
        Ok(WriteReport {
            removed: ids.len(),
            ..Default::default()
        })
    }

    /// Without the metadata index there is nothing derived to update.
    #[cfg(not(feature = "filters"))]
    fn update_filters(&self, _store: &Store, _meta: &MetaChanges) {}

    #[cfg(not(feature = "filters"))]
    fn reload_filters(&self) {}
}

/// Writes a planned batch (records, blobs, metadata) as one durable store commit.
fn commit_planned(
    store: &mut Store,
    planned: &[Planned],
    blobs: Vec<(String, Vec<u8>)>,
    meta: &MetaChanges,
) -> Result<()> {
    let next_id = planned
        .iter()
        .map(|p| p.id + 1)
        .max()
        .unwrap_or(0)
        .max(store.next_id());
    let records = planned
        .iter()
        .map(|p| {
            let rec = RecordRef {
                key: p.key,
                tokens: &p.full,
                weights: &p.weights,
            };
            (p.id, Some(rec))
        })
        .collect();
    let commit = Commit {
        chunks: rewrite_chunks(store, records)?,
        next_id,
        blobs,
        meta: meta_records(meta),
    };
    store.commit(commit)
}

/// Applies a committed batch to the index and key map (side by side: they
/// share nothing).
fn publish(state: &mut State, planned: &[Planned]) -> WriteReport {
    // Remove every re-encoded item first: a new item may take the full SID
    // another item of the same batch is leaving.
    for p in planned.iter().filter(|p| p.existing) {
        let removed = state.take(p.id);
        debug_assert!(removed.is_ok(), "a planned item is indexed");
    }
    let sids: Vec<_> = planned
        .iter()
        .map(|p| (p.id, &p.full[..], &p.weights[..]))
        .collect();
    let new_keys: Vec<(&str, ItemId)> = planned
        .iter()
        .filter(|p| !p.existing)
        .map(|p| (p.key, p.id))
        .collect();
    let inserted = state.insert_with_keys(&sids, &new_keys);
    debug_assert!(inserted.is_ok(), "planned SIDs are valid and free");
    let updated = planned.iter().filter(|p| p.existing).count();
    WriteReport {
        inserted: planned.len() - updated,
        updated,
        removed: 0,
    }
}

/// Takes items out of the index and key map; returns what they held.
fn unpublish(state: &mut State, ids: &[ItemId]) -> Result<Unpublished> {
    let mut removed = Vec::with_capacity(ids.len());
    for &id in ids {
        let (sid, weights) = state.take(id)?;
        let key = state.remove_key(id).unwrap_or_default();
        removed.push((id, key, sid, weights));
    }
    Ok(removed)
}

/// Resolves metadata keys to ids: items of the batch first, then stored ones.
fn meta_changes(
    state: &State,
    planned: &[Planned],
    meta: &[(String, Meta)],
) -> Result<MetaChanges> {
    if meta.is_empty() {
        return Ok(MetaChanges::default());
    }
    let batch: HashMap<&str, ItemId> = planned.iter().map(|p| (p.key, p.id)).collect();
    meta.iter()
        .map(|(key, m)| {
            let id = match batch.get(key.as_str()) {
                Some(&id) => id,
                None => state.id(key)?,
            };
            Ok((id, Some(m.clone())))
        })
        .collect()
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

pub(super) fn parse_meta(json: &[u8]) -> Result<Meta> {
    serde_json::from_slice(json).map_err(|e| Error::corruption("item metadata", e.to_string()))
}

/// Loads each chunk touched by `changes` once, applies the changes
/// (`None` removes), and returns the rewritten chunks encoded (`None` for
/// an emptied one), chunks in parallel.
fn rewrite_chunks(
    store: &Store,
    mut changes: Vec<(ItemId, Option<RecordRef<'_>>)>,
) -> Result<Vec<(u32, Option<Vec<u8>>)>> {
    changes.par_sort_unstable_by_key(|(id, _)| *id);
    let groups: Vec<&[(ItemId, Option<RecordRef<'_>>)]> = changes
        .chunk_by(|a, b| Chunk::number(a.0) == Chunk::number(b.0))
        .collect();
    groups
        .into_par_iter()
        .map(|group| {
            let number = Chunk::number(group[0].0);
            let existing = match Chunk::item_id(number, 0) < store.next_id() {
                true => store.chunk(number)?.unwrap_or_default(),
                false => Chunk::default(),
            };
            let entries = merge_slots(&existing, group);
            Ok((
                number,
                (!entries.is_empty()).then(|| encode_chunk(&entries)),
            ))
        })
        .collect()
}

/// The records of `existing` with `changes` (ascending ids of its chunk) applied.
fn merge_slots<'a>(
    existing: &'a Chunk,
    changes: &[(ItemId, Option<RecordRef<'a>>)],
) -> Vec<(u8, RecordRef<'a>)> {
    let mut out = Vec::with_capacity(existing.entries.len() + changes.len());
    let mut old = existing.entries.iter().peekable();
    for (id, change) in changes {
        let slot = (id % CHUNK_SLOTS) as u8;
        while let Some((s, rec)) = old.next_if(|(s, _)| *s < slot) {
            out.push((*s, rec.into()));
        }
        old.next_if(|(s, _)| *s == slot);
        if let Some(rec) = change {
            out.push((slot, *rec));
        }
    }
    out.extend(old.map(|(s, rec)| (*s, rec.into())));
    out
}
