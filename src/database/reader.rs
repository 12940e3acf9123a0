//! [`Reader`]: a read-only open that works while another process writes.
//!
//! The store admits one process at a time, so a reader does not open it
//! when it need not: a publication with no commit pending (see
//! [`super::publish`]) holds every acknowledged write, and is read in
//! place. Otherwise the store is opened (which republishes a lagging
//! publication), and when a writer holds it the last publication is read,
//! marked as lagging.

use std::path::Path;

use super::{Database, Published, ReadGuard};
use crate::blobs::BlobSource;
use crate::error::{Error, Result};
use crate::sid::SidLayout;
use crate::view::ReadView;

/// A database opened for reading: the store itself, or its published view.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per open; boxing buys nothing
pub enum Reader {
    /// The store (no publication to read, or one that may lag and no
    /// writer holding the store).
    Store(Database),
    /// The published view.
    Published(Published),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.path)
            .finish()
    }
}

/// A consistent view of a [`Reader`]'s items.
pub enum ReaderView<'a> {
    /// The store's current state (its read lock held).
    Store(ReadGuard<'a>),
    /// The published snapshot.
    Published(&'a crate::snapshot::Snapshot<memmap2::Mmap>),
}

impl ReaderView<'_> {
    /// The view as a [`ReadView`].
    pub fn get(&self) -> &(dyn ReadView + Sync) {
        match self {
            ReaderView::Store(guard) => &**guard,
            ReaderView::Published(snap) => *snap,
        }
    }
}

impl Reader {
    /// Opens the database at `path` for reading (see the module docs). A
    /// damaged publication is read past and rebuilt from the store.
    pub fn open(path: &Path) -> Result<Reader> {
        // `Ok(None)`: no publication; `Ok(Some)`: one that may lag; `Err`: damaged.
        let behind = match Published::open(path) {
            Ok(Some(p)) if !p.lagging() => return Ok(Reader::Published(p)),
            other => other,
        };
        match Database::open(path) {
            Ok(db) => {
                if behind.is_err() {
                    // A failure is kept in `health`; this read goes on from the store.
                    let _ = db.publish();
                }
                Ok(Reader::Store(db))
            }
            Err(locked @ Error::Locked { .. }) => match behind {
                Ok(Some(lagging)) => Ok(Reader::Published(lagging)),
                // None or damaged a moment ago: the writer may have published since.
                _ => Published::open(path)?.map(Reader::Published).ok_or(locked),
            },
            Err(e) => Err(e),
        }
    }

    /// The items, consistently (hold it briefly when it is the store's).
    pub fn view(&self) -> ReaderView<'_> {
        match self {
            Reader::Store(db) => ReaderView::Store(db.read()),
            Reader::Published(p) => ReaderView::Published(p.view()),
        }
    }

    /// The SID layout.
    pub fn layout(&self) -> SidLayout {
        match self {
            Reader::Store(db) => db.layout(),
            Reader::Published(p) => *crate::SidIndex::layout(p.view()),
        }
    }

    /// The database, when the store itself was opened (metadata filters
    /// need it).
    pub fn database(&self) -> Option<&Database> {
        match self {
            Reader::Store(db) => Some(db),
            Reader::Published(_) => None,
        }
    }

    /// The database itself, for a write after the reads: the store this
    /// reader holds, or opened now (so inputs can be read and checked from
    /// the published view before the store, which an open writes to).
    pub fn into_database(self) -> Result<Database> {
        match self {
            Reader::Store(db) => Ok(db),
            Reader::Published(p) => Database::open(p.path()),
        }
    }

    /// Whether a commit may be missing from what it reads: a publication
    /// read while a writer held the store with a commit unpublished.
    pub fn lagging(&self) -> bool {
        matches!(self, Reader::Published(p) if p.lagging())
    }
}

impl BlobSource for Reader {
    fn blob(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Reader::Store(db) => db.blob(name),
            Reader::Published(p) => p.blob(name),
        }
    }

    fn describe(&self) -> String {
        match self {
            Reader::Store(db) => BlobSource::describe(db),
            Reader::Published(p) => p.describe(),
        }
    }
}
