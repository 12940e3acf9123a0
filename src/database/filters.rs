//! The database's side of the metadata index: opening it (rebuilt from the
//! store when it lags, is missing or is damaged), bringing it up to each
//! commit, and filtered search. The index is derived: the store's metadata
//! is the truth, so any failure here is repaired from it, never reported as
//! a failed write.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::write::{MetaChanges, parse_meta};
use super::{Database, Health, State};
use crate::error::{Error, Result};
use crate::filter::Filters;
use crate::index::ItemId;
use crate::sid::Token;
use crate::store::Store;

/// Folder of the metadata index inside a database folder.
pub(super) const FILTERS_DIR: &str = "filters";

/// The open metadata index (if any) and whether it is behind the store.
#[derive(Default)]
pub(super) struct FilterSlot {
    filters: RwLock<Option<Arc<Filters>>>,
    /// Why the index is behind the store; `None` when it is current.
    stale: Mutex<Option<String>>,
    rebuilt: AtomicBool,
}

impl FilterSlot {
    pub(super) fn health(&self) -> Health {
        Health {
            filters_stale: self.stale.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            filters_rebuilt: self.rebuilt.load(Ordering::SeqCst),
            ..Health::default()
        }
    }

    pub(super) fn get(&self) -> Option<Arc<Filters>> {
        self.filters
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, filters: Option<Arc<Filters>>) {
        *self.filters.write().unwrap_or_else(|p| p.into_inner()) = filters;
    }

    fn mark_stale(&self, why: String) {
        *self.stale.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    }

    fn is_stale(&self) -> bool {
        self.stale
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }
}

impl Database {
    /// Opens the metadata index if the database has one (or has metadata).
    pub(super) fn open_filters(&self) -> Result<()> {
        let store = self.lock_store();
        if store.meta_generation()? == 0 && !self.path.join(FILTERS_DIR).exists() {
            return Ok(());
        }
        self.repair_filters(&store)
    }

    /// Makes the metadata index match the store: reuses it when it is whole
    /// and current, brings it up to date when it lags, and builds it afresh
    /// when it is missing or damaged (said once on stderr).
    fn repair_filters(&self, store: &Store) -> Result<()> {
        let generation = store.meta_generation()?;
        let dir = self.path.join(FILTERS_DIR);
        let checked = Filters::open(&dir).and_then(|f| {
            f.validate()?;
            let current = f.generation()? == generation;
            Ok((f, current))
        });
        let (filters, current) = match checked {
            Ok(found) => found,
            Err(e) => {
                eprintln!(
                    "adasid: the metadata index in {} is unusable ({e}); rebuilding it from the store",
                    dir.display()
                );
                self.filters.set(None);
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
                }
                (Filters::open(&dir)?, false)
            }
        };
        if !current {
            filters.rebuild(&all_meta(store)?, generation)?;
            self.filters.rebuilt.store(true, Ordering::SeqCst);
        }
        self.filters.set(Some(Arc::new(filters)));
        *self.filters.stale.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    /// Commits a batch's metadata changes to the index (after the store
    /// commit, before publishing). A failure marks the index stale instead
    /// of failing the write, which is already durable.
    pub(super) fn update_filters(&self, store: &Store, meta: &MetaChanges) {
        if meta.is_empty() || self.filters.is_stale() {
            return;
        }
        let result = match self.filters.get() {
            Some(f) => Ok(f),
            None => Filters::open(&self.path.join(FILTERS_DIR)).map(Arc::new),
        }
        .and_then(|f| {
            f.apply(meta, store.meta_generation()?)?;
            Ok(f)
        });
        match result {
            Ok(f) => self.filters.set(Some(f)),
            Err(e) => self.filters.mark_stale(e.to_string()),
        }
    }

    /// Makes committed changes visible; called under the state write lock,
    /// so a reader sees index, keys and filters of one commit.
    pub(super) fn reload_filters(&self) {
        if let Some(f) = self.filters.get()
            && let Err(e) = f.reload()
        {
            self.filters.mark_stale(e.to_string());
        }
    }

    /// The metadata index, if any item has metadata. Stale or damaged, it is
    /// rebuilt from the store first.
    pub fn filters(&self) -> Result<Option<Arc<Filters>>> {
        if self.filters.is_stale() {
            let store = self.lock_store();
            let _writers_wait = self.state.write().unwrap_or_else(|p| p.into_inner());
            if self.filters.is_stale() {
                self.repair_filters(&store)?;
            }
        }
        Ok(self.filters.get())
    }

    /// The items under `prefix` whose metadata matches `filter` (tantivy
    /// query syntax, see [`crate::filter`]), ascending. Without a filter,
    /// every item under the prefix. Both sides are read under one read lock,
    /// so a concurrent write is seen whole or not at all.
    pub fn search(&self, prefix: &[Token], filter: Option<&str>) -> Result<Vec<ItemId>> {
        let filters = match filter {
            Some(_) => self.filters()?,
            None => None,
        };
        let found = self.search_with(&self.read(), filters.as_deref(), prefix, filter);
        match found {
            Err(e) if is_index_failure(&e) => {
                self.filters.mark_stale(e.to_string());
                let filters = self.filters()?;
                self.search_with(&self.read(), filters.as_deref(), prefix, filter)
            }
            other => other,
        }
    }

    /// [`Database::search`] within a read view the caller holds (from
    /// [`Database::read`]), so the ids can be resolved in the same view.
    /// It cannot repair a stale metadata index (a repair waits for readers,
    /// the caller is one): call [`Database::filters`] before taking the view,
    /// or check [`Database::health`].
    pub fn search_in(
        &self,
        state: &State,
        prefix: &[Token],
        filter: Option<&str>,
    ) -> Result<Vec<ItemId>> {
        let filters = self.filters.get();
        let found = self.search_with(state, filters.as_deref(), prefix, filter);
        if let Err(e) = &found
            && is_index_failure(e)
        {
            self.filters.mark_stale(e.to_string());
        }
        found
    }

    fn search_with(
        &self,
        state: &State,
        filters: Option<&Filters>,
        prefix: &[Token],
        filter: Option<&str>,
    ) -> Result<Vec<ItemId>> {
        self.layout.check_prefix(prefix)?;
        let Some(postings) = crate::SidIndex::items(state, prefix) else {
            return Ok(Vec::new());
        };
        match (filter, filters) {
            (None, _) => Ok(postings.to_sorted_vec()),
            (Some(_), None) => Ok(Vec::new()),
            (Some(query), Some(f)) => Ok(crate::filter::intersect(postings, &f.matching(query)?)),
        }
    }
}

/// Whether an error came from the metadata index itself (not the query).
fn is_index_failure(e: &Error) -> bool {
    matches!(
        e,
        Error::Metadata(_) | Error::DataCorruption { .. } | Error::Io { .. }
    )
}

fn all_meta(store: &Store) -> Result<Vec<(ItemId, crate::data::meta::Meta)>> {
    store
        .all_meta()?
        .into_iter()
        .map(|(id, json)| Ok((id, parse_meta(&json)?)))
        .collect()
}
