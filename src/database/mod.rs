//! A database: the durable [`Store`] plus the items it answers from, a
//! [`State`]: its last publication (a snapshot file, mapped) and the changes
//! committed since, in memory. Open maps that publication when it shows
//! every stored commit and rebuilds from the records otherwise.
//!
//! Additions and re-encodings go store first, memory second: a batch is
//! validated completely, planned (ids, disambiguation tokens), committed
//! durably, and only then applied to the index under the write lock.
//! Removals go the other way: items leave the index first, then the store
//! (and come back if the commit fails). Readers therefore see either none or
//! all of a batch, and never an item the store does not hold.
//!
//! The error contract of every write: `Ok` means the batch is durable and
//! visible; `Err` means nothing changed. Once the store commit succeeds the
//! call returns `Ok`; the derived metadata index (with `filters`) is updated
//! after it, and a failure there marks that index stale (see
//! [`Database::health`]) to be rebuilt from the store, rather than failing a
//! write that already happened.

#[cfg(feature = "filters")]
mod filters;
mod first;
mod plan;
mod publish;
mod reader;
mod state;
#[cfg(test)]
mod tests;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

use rayon::prelude::*;

pub use publish::Published;
pub use reader::{Reader, ReaderView};
pub use state::{ReadGuard, State};
pub use write::WriteReport;

use crate::blobs::BlobSource;
use crate::codec::record::Chunk;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::keymap::KeyMap;
use crate::sid::SidLayout;
use crate::snapshot;
use crate::store::Store;

/// Items in memory from which a publication's replaced changes are freed on
/// a thread of their own. Such a thread does not outlive the next such
/// publication: at 1M items, writing the publication took about 1.2 s and
/// freeing about 0.35 s (docs/RESULTS.md, "Ingest end to end").
const FREE_APART: u64 = 1 << 16;

/// An open adasid database.
pub struct Database {
    path: std::path::PathBuf,
    store: Mutex<Store>,
    state: RwLock<State>,
    layout: SidLayout,
    /// The view readers in other processes read; locked under the store lock.
    publisher: Mutex<publish::Publisher>,
    /// Publish after every commit (else on [`Database::publish`] only).
    publish_each_commit: AtomicBool,
    /// Whether open rebuilt the index from the records.
    rebuilt: bool,
    /// The metadata index, once any item has metadata.
    #[cfg(feature = "filters")]
    filters: filters::FilterSlot,
}

/// What a health check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Why the metadata index is behind the store, if it is (a failed update
    /// or a damaged folder); the next filtered search or open rebuilds it.
    pub filters_stale: Option<String>,
    /// Whether the metadata index was rebuilt from the store since open
    /// (it lagged, was missing or was damaged).
    pub filters_rebuilt: bool,
    /// Why the published view (what readers in other processes read) is
    /// behind the store, if its last publication failed; the next commit
    /// or [`Database::publish`] tries again.
    pub published_stale: Option<String>,
    /// Whether open rebuilt the index from the stored records instead of
    /// mapping the publication (which did not show every commit, or was
    /// damaged).
    pub index_rebuilt: bool,
}

impl Database {
    /// Creates an empty database.
    pub fn create(path: &Path, layout: SidLayout) -> Result<Database> {
        let store = Store::create(path, layout)?;
        Ok(Self::from_parts(
            store,
            State::new(Index::new(layout), KeyMap::default()),
        ))
    }

    /// Whether a database exists at `path`.
    pub fn exists(path: &Path) -> bool {
        Store::exists(path)
    }

    /// Opens a database. When its publication shows exactly the stored
    /// commits (the usual case: every commit is published), the items are
    /// that snapshot, mapped and verified, not rebuilt; otherwise (a writer
    /// died between a commit and its publication, publication was deferred,
    /// or the file is damaged) the index is rebuilt from the stored records
    /// and published.
    pub fn open(path: &Path) -> Result<Database> {
        let store = Store::open(path)?;
        let publisher = publish::Publisher::new(path);
        let mapped = publisher
            .base(store.commits())
            .map(|file| map_base(&file, store.layout(), true));
        let (state, rebuilt) = match mapped {
            Some(Ok(state)) => (state, false),
            // Behind or damaged: rebuilt, then published so the next open maps.
            _ => {
                let (index, keys) = load_state(&store)?;
                // The decoded records are dropped by now; do not keep their pages.
                crate::heap::release_free_memory();
                (State::new(index, keys), true)
            }
        };
        let mut db = Self::with_publisher(store, state, publisher);
        db.rebuilt = rebuilt;
        #[cfg(feature = "filters")]
        db.open_filters()?;
        if rebuilt {
            // A failure is kept in `health` and retried by the next commit.
            let store = db.lock_store();
            let _ = db.publish_locked(&store);
        }
        Ok(db)
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

    fn from_parts(store: Store, state: State) -> Database {
        let publisher = publish::Publisher::new(store.path());
        Self::with_publisher(store, state, publisher)
    }

    fn with_publisher(store: Store, state: State, publisher: publish::Publisher) -> Database {
        let layout = store.layout();
        Database {
            path: store.path().to_path_buf(),
            publisher: Mutex::new(publisher),
            publish_each_commit: AtomicBool::new(true),
            rebuilt: false,
            store: Mutex::new(store),
            state: RwLock::new(state),
            layout,
            #[cfg(feature = "filters")]
            filters: filters::FilterSlot::default(),
        }
    }

    /// The SID layout.
    pub fn layout(&self) -> SidLayout {
        self.layout
    }

    /// A consistent read view; writers wait while it is held, so keep it short.
    pub fn read(&self) -> ReadGuard<'_> {
        ReadGuard::new(self.state.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// A named blob (model weights, codebooks, …), if stored.
    pub fn blob(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.lock_store().blob(name)
    }

    /// The database folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the database in a process about to exit: the store and the
    /// rest close as on drop (flushed, unlocked), but the in-memory index
    /// and key map are left to the operating system, which takes a
    /// process's memory back at once instead of an allocation at a time
    /// (freeing them took about a tenth of a 1M-item `ingest-tokens`).
    pub fn close_before_exit(self) {
        let Database { state, .. } = self;
        std::mem::forget(state);
    }

    /// Bytes on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.lock_store().size_on_disk()
    }

    /// What is behind the store: derived indexes that are stale or were rebuilt.
    pub fn health(&self) -> Health {
        #[cfg(feature = "filters")]
        let health = self.filters.health();
        #[cfg(not(feature = "filters"))]
        let health = Health::default();
        Health {
            published_stale: self.lock_publisher().failed.clone(),
            index_rebuilt: self.rebuilt,
            ..health
        }
    }

    fn lock_store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_publisher(&self) -> std::sync::MutexGuard<'_, publish::Publisher> {
        self.publisher.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes the current items and blobs for readers in other
    /// processes ([`Reader`], [`Published`]): a new generation of
    /// `published/` replacing the last. Done after every commit unless
    /// [`Database::publish_each_commit`] turned that off.
    pub fn publish(&self) -> Result<()> {
        let store = self.lock_store();
        self.publish_locked(&store)
    }

    /// Whether every commit is published before it returns (the default:
    /// readers in other processes then see every acknowledged write). A
    /// bulk load may turn it off and call [`Database::publish`] at the end;
    /// until then readers see the last publication, marked as lagging.
    pub fn publish_each_commit(&self, on: bool) {
        self.publish_each_commit.store(on, Ordering::SeqCst);
    }

    /// Publishes under the store lock, then continues from the published
    /// snapshot: it shows exactly the current items, so the in-memory
    /// index of changes is dropped (memory stays bounded by the changes
    /// since the last publication).
    fn publish_locked(&self, store: &Store) -> Result<()> {
        let file = self.write_publication(store, &&*self.read())?;
        // Written and fsynced by this process just now: mapped without
        // reading it all back. If it cannot be mapped, memory keeps the items.
        if let Ok(base) = map_base(&file, self.layout, false) {
            let old = std::mem::replace(
                &mut *self.state.write().unwrap_or_else(|p| p.into_inner()),
                base,
            );
            // Freed after the write lock (a temporary above) is let go; a
            // large one not by the writer: 1M items take about 0.3 s to free.
            if old.changes() >= FREE_APART {
                crate::heap::free_in_background(old);
            } else {
                drop(old);
                crate::heap::release_free_memory();
            }
        }
        Ok(())
    }

    /// Publishes `items`, what the store holds now; returns the snapshot file.
    fn write_publication(&self, store: &Store, items: &impl snapshot::Source) -> Result<PathBuf> {
        self.write_sections(store, || snapshot::Sections::of(items))
    }

    /// [`Database::write_publication`] of sections `sections` builds (or
    /// hands over, built already).
    fn write_sections(
        &self,
        store: &Store,
        sections: impl FnOnce() -> Result<snapshot::Sections>,
    ) -> Result<PathBuf> {
        let counts = (store.meta_generation()?, store.commits());
        self.lock_publisher()
            .publish(sections, counts, || store.blobs())
    }

    /// Marks the publication behind before a commit touches the store.
    fn before_commit(&self, blobs: bool) -> Result<()> {
        self.lock_publisher().before_commit(blobs)
    }

    /// Publishes a commit that succeeded. A failure cannot undo the commit:
    /// it is kept in [`Database::health`] and retried by the next one.
    fn after_commit(&self, store: &Store) {
        if self.publish_each_commit.load(Ordering::SeqCst) {
            let _ = self.publish_locked(store);
        }
    }

    /// Writes an immutable snapshot of the current index and keys to `path`
    /// (see [`crate::snapshot`]); returns its size in bytes.
    pub fn snapshot(&self, path: &Path) -> Result<u64> {
        Self::check_snapshot_path(&self.path, path)?;
        let state = self.read();
        state.write_snapshot(path)
    }
}

impl Database {
    /// Refuses a snapshot `path` inside the database folder `db`: a file
    /// written there could replace one of the store's own. (Checked again
    /// by [`Database::snapshot`]; a caller may check before opening.)
    pub fn check_snapshot_path(db: &Path, path: &Path) -> Result<()> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let (Ok(dir), Ok(own)) = (dir.canonicalize(), db.canonicalize()) else {
            return Ok(()); // a missing folder fails the write itself, with its path
        };
        if dir.starts_with(&own) {
            return Err(Error::InvalidArgument(format!(
                "{} is inside the database folder {}: write the snapshot elsewhere",
                path.display(),
                db.display()
            )));
        }
        Ok(())
    }
}

impl BlobSource for Database {
    fn blob(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Database::blob(self, name)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// A state whose items are the snapshot file at `path` (of `layout`),
/// mapped; `verify` checks every section's checksum first.
fn map_base(path: &Path, layout: SidLayout, verify: bool) -> Result<State> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: a publication's files are never modified once written (new
    // generations are new files), only removed, and a mapping outlives
    // the removal.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let snap = snapshot::Snapshot::new(crate::view::BaseBytes::Map(map))?;
    if verify {
        snap.verify()?;
    }
    if *crate::SidIndex::layout(&snap) != layout {
        return Err(Error::corruption(
            path.display().to_string(),
            "its layout is not the store's",
        ));
    }
    Ok(State::from_snapshot(snap))
}

/// Decodes every stored record and builds index and key map from them.
fn load_state(store: &Store) -> Result<(Index, KeyMap)> {
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
    let corrupt = |id: u32, detail: String| Error::corruption(format!("item record {id}"), detail);
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
            let count = chunks.iter().map(|(_, c)| c.entries.len()).sum();
            keys.reserve(count, store.next_id());
            for (id, rec) in records() {
                if !keys.insert(&rec.key, id) {
                    return Err(corrupt(id, format!("key '{}' appears twice", rec.key)));
                }
            }
            Ok(keys)
        },
    );
    Ok((index?, keys?))
}
