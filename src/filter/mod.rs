//! Metadata filters: a tantivy index over item metadata, kept in the
//! database folder (`filters/`, an `MmapDirectory`).
//!
//! Each item's metadata is one JSON object (a `meta.jsonl` line). Known
//! fields get their own tantivy fields: `title`, `brand` and `categories`
//! (tokenized, lowercased text), `price` (f64, range queries); every other
//! field goes into the JSON field `attrs` (`attrs.sales_type:beauty`). A
//! query uses tantivy's syntax: `brand:opi AND price:[0 TO 20]`; bare words
//! search title, brand and categories.
//!
//! Invariant: the store is the source of truth. Metadata is committed to
//! the store first; this index is derived from it and records the store's
//! metadata generation in its commit payload, so an index left behind by a
//! crash is detected on open and rebuilt. Filtered lookups intersect with
//! the SID postings, so results are always items in the store.
//!
//! API boundary: item ids and JSON objects in, item-id bitmaps out; the
//! reader reloads only when [`Filters::reload`] is called, which the
//! database does under its write lock so readers see a write whole.

mod document;
mod ids;

use std::path::Path;
use std::sync::Mutex;

use roaring::RoaringBitmap;
use tantivy::directory::MmapDirectory;
use tantivy::query::QueryParser;
use tantivy::{
    Index as TantivyIndex, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term,
};

use crate::error::{Error, Result};
use crate::index::{ItemId, Postings};

use document::Fields;
pub use document::Meta;

/// Heap for the tantivy writer (its minimum is 15 MB).
const WRITER_HEAP: usize = 32 << 20;

/// The metadata index of a database.
pub struct Filters {
    index: TantivyIndex,
    reader: IndexReader,
    writer: Option<Mutex<IndexWriter<TantivyDocument>>>,
    fields: Fields,
    parser: QueryParser,
    /// Test failpoint: every update fails while set.
    #[cfg(test)]
    pub(crate) fail_writes: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Filters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filters").finish_non_exhaustive()
    }
}

pub(crate) fn tantivy_error(e: impl Into<tantivy::TantivyError>) -> Error {
    Error::Metadata(e.into())
}

impl Filters {
    /// Opens (or creates) the index in `dir` for reading and writing.
    pub fn open(dir: &Path) -> Result<Filters> {
        Self::open_with(dir, true)
    }

    /// Opens an existing index in `dir` for reading only (any number of
    /// processes may; a snapshot server uses this next to a snapshot).
    pub fn open_read_only(dir: &Path) -> Result<Filters> {
        Self::open_with(dir, false)
    }

    fn open_with(dir: &Path, write: bool) -> Result<Filters> {
        if write {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let fields = Fields::new();
        let directory = MmapDirectory::open(dir).map_err(tantivy_error)?;
        let index = if write {
            TantivyIndex::open_or_create(directory, fields.schema.clone())
        } else {
            TantivyIndex::open(directory)
        }
        .map_err(tantivy_error)?;
        if index.schema() != fields.schema {
            return Err(Error::corruption(
                "metadata index",
                format!("{} has another schema", dir.display()),
            ));
        }
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(tantivy_error)?;
        let writer = if write {
            Some(Mutex::new(
                index
                    .writer_with_num_threads(1, WRITER_HEAP)
                    .map_err(tantivy_error)?,
            ))
        } else {
            None
        };
        let parser = fields.parser(&index);
        Ok(Filters {
            index,
            reader,
            writer,
            fields,
            parser,
            #[cfg(test)]
            fail_writes: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The store metadata generation this index reflects (0 when new).
    pub fn generation(&self) -> Result<u64> {
        let metas = self.index.load_metas().map_err(tantivy_error)?;
        Ok(metas
            .payload
            .as_deref()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0))
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter<TantivyDocument>>> {
        self.writer
            .as_ref()
            .map(|w| w.lock().unwrap_or_else(|p| p.into_inner()))
            .ok_or_else(|| Error::InvalidArgument("the metadata index is open read-only".into()))
    }

    /// Replaces the documents of the given items (`None` removes one) and
    /// commits durably, recording `generation`. Readers see the change only
    /// after [`Filters::reload`].
    pub(crate) fn apply(&self, changes: &[(ItemId, Option<Meta>)], generation: u64) -> Result<()> {
        #[cfg(test)]
        if self.fail_writes.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(tantivy_error(tantivy::TantivyError::SystemError(
                "failpoint: filter update refused".into(),
            )));
        }
        let mut writer = self.writer()?;
        for (id, meta) in changes {
            writer.delete_term(Term::from_field_u64(self.fields.id, *id as u64));
            if let Some(m) = meta {
                writer
                    .add_document(self.fields.document(*id, m))
                    .map_err(tantivy_error)?;
            }
        }
        commit(&mut writer, generation)
    }

    /// Drops every document and indexes `all` afresh (recovery after a crash
    /// between the store's commit and this index's).
    pub(crate) fn rebuild(&self, all: &[(ItemId, Meta)], generation: u64) -> Result<()> {
        let mut writer = self.writer()?;
        writer.delete_all_documents().map_err(tantivy_error)?;
        for (id, m) in all {
            writer
                .add_document(self.fields.document(*id, m))
                .map_err(tantivy_error)?;
        }
        commit(&mut writer, generation)?;
        drop(writer);
        self.reload()
    }

    /// Checks every file of the index against its checksum (reading each
    /// once); an error means the folder is damaged.
    pub(crate) fn validate(&self) -> Result<()> {
        let damaged = self.index.validate_checksum().map_err(tantivy_error)?;
        if let Some(file) = damaged.iter().next() {
            return Err(Error::corruption(
                "metadata index",
                format!("{} fails its checksum", file.display()),
            ));
        }
        Ok(())
    }

    /// Makes committed changes visible to new searches.
    pub fn reload(&self) -> Result<()> {
        self.reader.reload().map_err(tantivy_error)
    }

    /// The items whose metadata matches `query` (tantivy query syntax).
    pub fn matching(&self, query: &str) -> Result<RoaringBitmap> {
        let q = parse(&self.parser, query)?;
        self.reader
            .searcher()
            .search(&q, &ids::Ids)
            .map_err(tantivy_error)
    }

    /// Number of indexed documents.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether no document is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn commit(writer: &mut IndexWriter<TantivyDocument>, generation: u64) -> Result<()> {
    let mut prepared = writer.prepare_commit().map_err(tantivy_error)?;
    prepared.set_payload(&generation.to_string());
    prepared.commit().map_err(tantivy_error)?;
    Ok(())
}

/// Checks `query` against the metadata schema without any index, so a bad
/// filter fails before a database is opened.
pub fn check_query(query: &str) -> Result<()> {
    let fields = Fields::new();
    let index = TantivyIndex::create_in_ram(fields.schema.clone());
    parse(&fields.parser(&index), query).map(drop)
}

fn parse(parser: &QueryParser, query: &str) -> Result<Box<dyn tantivy::query::Query>> {
    parser
        .parse_query(query)
        .map_err(|e| Error::InvalidArgument(format!("filter '{query}': {e}")))
}

/// The items of `postings` that are in `docs`, ascending.
pub fn intersect(postings: Postings<'_>, docs: &RoaringBitmap) -> Vec<ItemId> {
    match postings {
        Postings::Many(b) => (b & docs).iter().collect(),
        Postings::One(i) => docs.contains(i).then_some(i).into_iter().collect(),
        Postings::Slice(_) | Postings::Owned(_) => {
            let mut out: Vec<ItemId> = postings.iter().filter(|&i| docs.contains(i)).collect();
            out.sort_unstable();
            out
        }
    }
}
