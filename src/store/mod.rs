//! The durable home of a database: the only module that touches sled.
//!
//! One sled tree, three key spaces:
//!
//! | key                 | value                                   |
//! |---------------------|-----------------------------------------|
//! | `m/format`          | format marker frame                     |
//! | `m/layout`          | [`SidLayout`] frame                     |
//! | `m/next_id`         | counter frame: next unused item id      |
//! | `c/` + u32 BE       | [`Chunk`] frame: items `n*256..n*256+255` |
//! | `b/` + name         | blob frame (model weights, codebooks…)  |
//! | `m/meta_gen`        | counter frame: metadata generation      |
//! | `j/` + u32 BE       | metadata frame: item `id`'s JSON object |
//! | `m/commits`         | counter frame: commits so far (u64)     |
//!
//! Invariant: [`Store::commit`] applies a whole batch with one sled batch
//! (atomic on recovery) and returns only after `flush` (fsync), so a
//! returned commit survives a crash and a crashed one leaves no trace.

mod opening;

use std::path::{Path, PathBuf};

use opening::{ensure_room, mark_opened, open_sled, remove_unfinished_sled_snapshots};

use crate::codec::{self, Chunk, Kind};
use crate::error::{Error, Result};
use crate::sid::SidLayout;

const FORMAT_KEY: &[u8] = b"m/format";
const LAYOUT_KEY: &[u8] = b"m/layout";
const NEXT_ID_KEY: &[u8] = b"m/next_id";
const CHUNK_PREFIX: &[u8] = b"c/";
const BLOB_PREFIX: &[u8] = b"b/";
const META_PREFIX: &[u8] = b"j/";
const META_GEN_KEY: &[u8] = b"m/meta_gen";
const COMMITS_KEY: &[u8] = b"m/commits";

/// Marker payload identifying an adasid store.
const FORMAT_MARKER: &str = "adasid-store";

/// A set of chunk rewrites and the new id counter, applied atomically.
#[derive(Debug, Default)]
pub struct Commit {
    /// Encoded chunks to write (`None` deletes an emptied chunk).
    pub chunks: Vec<(u32, Option<Vec<u8>>)>,
    /// The next unused item id after this commit.
    pub next_id: u32,
    /// Named blobs to write alongside.
    pub blobs: Vec<(String, Vec<u8>)>,
    /// Item metadata (JSON) to write (`None` deletes); when not empty the
    /// metadata generation goes up by one.
    pub meta: Vec<(u32, Option<Vec<u8>>)>,
}

/// An open store.
pub struct Store {
    db: sled::Db,
    path: PathBuf,
    layout: SidLayout,
    next_id: u32,
    /// Commits applied so far (absent in stores that predate the counter: 0).
    commits: u64,
    /// A batch was applied but its flush failed: the caller was told
    /// nothing changed, yet sled may still make the batch durable.
    diverged: bool,
}

/// A two-byte prefix followed by a big-endian number (so a prefix scan
/// visits numbers in ascending order).
fn numbered(prefix: &[u8], number: u32) -> [u8; 6] {
    let mut key = [0u8; 6];
    key[..2].copy_from_slice(prefix);
    key[2..].copy_from_slice(&number.to_be_bytes());
    key
}

/// The number of a key written by [`numbered`]; `what` names it in errors.
fn numbered_key(key: &[u8], what: &str) -> Result<u32> {
    match key.get(2..) {
        Some(n) if key.len() == 6 => Ok(u32::from_be_bytes(n.try_into().expect("4 bytes"))),
        _ => Err(Error::corruption(what, format!("{} bytes", key.len()))),
    }
}

fn chunk_key(number: u32) -> [u8; 6] {
    numbered(CHUNK_PREFIX, number)
}

fn blob_key(name: &str) -> Vec<u8> {
    [BLOB_PREFIX, name.as_bytes()].concat()
}

fn meta_key(id: u32) -> [u8; 6] {
    numbered(META_PREFIX, id)
}

impl Store {
    /// Creates a new, empty store at `path`.
    pub fn create(path: &Path, layout: SidLayout) -> Result<Store> {
        Self::stage(path, layout)?.finish()
    }

    /// Starts a new store for `path` under a hidden sibling folder, where
    /// it can take its first commit before [`Staged::finish`] renames it
    /// into place: a folder at `path` is never a half-made store (a killed
    /// create leaves only the sibling, which the next create beside it removes).
    pub fn stage(path: &Path, layout: SidLayout) -> Result<Staged> {
        if Self::exists(path) {
            return Err(Error::AlreadyExists {
                path: path.to_path_buf(),
            });
        }
        // Never write into a folder of someone else's files.
        if std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_some()) {
            return Err(Error::InvalidArgument(format!(
                "{} holds files that are not an adasid database: give a new or empty folder",
                path.display()
            )));
        }
        let (parent, name) = match (path.parent(), path.file_name()) {
            (Some(p), Some(n)) if p.as_os_str().is_empty() => (Path::new("."), n),
            (Some(p), Some(n)) => (p, n),
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "{} cannot be a database folder",
                    path.display()
                )));
            }
        };
        let prefix = format!(".{}.adasid-new-", name.to_string_lossy());
        for stale in crate::stale::left_by_dead_writers(parent, &prefix) {
            let _ = std::fs::remove_dir_all(stale);
        }
        let staging = crate::stale::own_name(parent, &prefix);
        let _ = std::fs::remove_dir_all(&staging);
        let db = open_sled(&staging)?;
        let mut batch = sled::Batch::default();
        batch.insert(FORMAT_KEY, codec::encode(Kind::Format, &FORMAT_MARKER));
        batch.insert(LAYOUT_KEY, codec::encode(Kind::Layout, &layout));
        batch.insert(NEXT_ID_KEY, codec::encode(Kind::Counter, &0u32));
        db.apply_batch(batch).map_err(store_error)?;
        db.flush().map_err(store_error)?;
        Ok(Staged {
            store: Some(Store {
                db,
                path: staging,
                layout,
                next_id: 0,
                commits: 0,
                diverged: false,
            }),
            target: path.to_path_buf(),
            parent: parent.to_path_buf(),
        })
    }

    /// Opens an existing store, checking its format version.
    pub fn open(path: &Path) -> Result<Store> {
        // Both of sled's files, or sled would take a stranger's `db` file for its log.
        if !Self::exists(path) || !path.join("conf").is_file() {
            return Err(Error::NotFound {
                path: path.to_path_buf(),
            });
        }
        ensure_room(path)?;
        remove_unfinished_sled_snapshots(path);
        let db = open_sled(path)?;
        let get = |key: &[u8], what: &str| -> Result<sled::IVec> {
            db.get(key)
                .map_err(store_error)?
                .ok_or_else(|| Error::corruption(what, "missing (not an adasid database?)"))
        };
        let marker: String = codec::decode(Kind::Format, &get(FORMAT_KEY, "format marker")?)?;
        if marker != FORMAT_MARKER {
            return Err(Error::corruption(
                "format marker",
                format!("unexpected marker '{marker}'"),
            ));
        }
        let layout: SidLayout = codec::decode(Kind::Layout, &get(LAYOUT_KEY, "SID layout")?)?;
        SidLayout::new(
            layout.levels as u32,
            layout.codebook_size as u32,
            layout.behavior as u32,
        )
        .map_err(|e| Error::corruption("SID layout", e.to_string()))?;
        let next_id: u32 = codec::decode(Kind::Counter, &get(NEXT_ID_KEY, "item id counter")?)?;
        let commits: u64 = match db.get(COMMITS_KEY).map_err(store_error)? {
            Some(bytes) => codec::decode(Kind::Counter, &bytes)?,
            None => 0,
        };
        Ok(Store {
            db,
            path: path.to_path_buf(),
            layout,
            next_id,
            commits,
            diverged: false,
        })
    }

    /// Whether `path` holds a sled database (it may still fail to open).
    pub fn exists(path: &Path) -> bool {
        path.join("db").is_file()
    }

    /// The database folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The SID layout fixed at creation.
    pub fn layout(&self) -> SidLayout {
        self.layout
    }

    /// The next unused item id.
    pub fn next_id(&self) -> u32 {
        self.next_id
    }

    /// How many commits the store has applied (since the counter exists):
    /// what ties a publication to the exact store state it shows. `None`
    /// once a commit was applied but failed to flush: the caller undid it
    /// in memory, sled may still keep it, so no publication of this open
    /// can vouch for the store (the next open rebuilds from the records).
    pub fn commits(&self) -> Option<u64> {
        (!self.diverged).then_some(self.commits)
    }

    /// Reads one chunk.
    pub fn chunk(&self, number: u32) -> Result<Option<Chunk>> {
        match self.db.get(chunk_key(number)).map_err(store_error)? {
            Some(bytes) => Ok(Some(Chunk::decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Raw bytes of every chunk, in chunk order (decode them in parallel).
    pub fn raw_chunks(&self) -> Result<Vec<(u32, sled::IVec)>> {
        self.db
            .scan_prefix(CHUNK_PREFIX)
            .map(|entry| {
                let (key, value) = entry.map_err(store_error)?;
                Ok((numbered_key(&key, "chunk key")?, value))
            })
            .collect()
    }

    /// Reads a named blob.
    pub fn blob(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self.db.get(blob_key(name)).map_err(store_error)? {
            Some(bytes) => Ok(Some(codec::frame::decode(Kind::Blob, &bytes)?.to_vec())),
            None => Ok(None),
        }
    }

    /// Every stored blob, by name.
    pub fn blobs(&self) -> Result<Vec<(String, Vec<u8>)>> {
        self.db
            .scan_prefix(BLOB_PREFIX)
            .map(|entry| {
                let (key, value) = entry.map_err(store_error)?;
                let name = String::from_utf8(key[BLOB_PREFIX.len()..].to_vec())
                    .map_err(|_| Error::corruption("blob key", "not UTF-8"))?;
                let bytes = codec::frame::decode(Kind::Blob, &value)?.to_vec();
                Ok((name, bytes))
            })
            .collect()
    }

    /// How many commits have changed item metadata (0 for none).
    pub fn meta_generation(&self) -> Result<u64> {
        match self.db.get(META_GEN_KEY).map_err(store_error)? {
            Some(bytes) => codec::decode(Kind::Counter, &bytes),
            None => Ok(0),
        }
    }

    /// The stored metadata of one item (a JSON object), if any.
    pub fn meta(&self, id: u32) -> Result<Option<Vec<u8>>> {
        match self.db.get(meta_key(id)).map_err(store_error)? {
            Some(bytes) => Ok(Some(codec::frame::decode(Kind::Meta, &bytes)?.to_vec())),
            None => Ok(None),
        }
    }

    /// Every item's stored metadata, by ascending id.
    #[cfg_attr(not(feature = "filters"), allow(dead_code))]
    pub fn all_meta(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        self.db
            .scan_prefix(META_PREFIX)
            .map(|entry| {
                let (key, value) = entry.map_err(store_error)?;
                Ok((
                    numbered_key(&key, "metadata key")?,
                    codec::frame::decode(Kind::Meta, &value)?.to_vec(),
                ))
            })
            .collect()
    }

    /// Applies `commit` atomically and durably: when this returns `Ok`, the
    /// whole commit survives a crash; if the process dies first, none of it does.
    pub fn commit(&mut self, commit: Commit) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (number, chunk) in commit.chunks {
            match chunk {
                Some(bytes) => batch.insert(&chunk_key(number), bytes),
                None => batch.remove(&chunk_key(number)),
            }
        }
        for (name, bytes) in &commit.blobs {
            batch.insert(blob_key(name), codec::frame::encode(Kind::Blob, bytes));
        }
        if !commit.meta.is_empty() {
            for (id, json) in &commit.meta {
                match json {
                    Some(j) => batch.insert(&meta_key(*id), codec::frame::encode(Kind::Meta, j)),
                    None => batch.remove(&meta_key(*id)),
                }
            }
            let generation = self.meta_generation()? + 1;
            batch.insert(META_GEN_KEY, codec::encode(Kind::Counter, &generation));
        }
        batch.insert(NEXT_ID_KEY, codec::encode(Kind::Counter, &commit.next_id));
        let commits = self.commits + 1;
        batch.insert(COMMITS_KEY, codec::encode(Kind::Counter, &commits));
        self.db.apply_batch(batch).map_err(store_error)?;
        // Counted once applied, flushed or not: no two states of the store
        // may carry the same count, and no id is handed out twice.
        self.commits = commits;
        self.next_id = commit.next_id;
        if let Err(e) = self.db.flush() {
            self.diverged = true;
            return Err(store_error(e));
        }
        Ok(())
    }

    /// Bytes the store occupies on disk.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.db.size_on_disk().map_err(store_error)
    }
}

/// A new store under its hidden sibling folder (see [`Store::stage`]);
/// dropped unfinished, the sibling is removed.
pub struct Staged {
    store: Option<Store>,
    target: PathBuf,
    parent: PathBuf,
}

impl Staged {
    /// The store, for its first commits.
    pub fn store(&mut self) -> &mut Store {
        self.store.as_mut().expect("a staged store until finished")
    }

    /// Renames the store into place (the parent folder fsynced) and reopens it there.
    pub fn finish(mut self) -> Result<Store> {
        let store = self.store.take().expect("finished once");
        let (staging, layout, next_id, commits) = (
            store.path.clone(),
            store.layout,
            store.next_id,
            store.commits,
        );
        drop(store);
        let io = |e| Error::io(&self.target, e);
        let moved = (|| {
            if self.target.is_dir() {
                std::fs::remove_dir(&self.target)?; // empty, checked by `stage`
            }
            std::fs::rename(&staging, &self.target)?;
            std::fs::File::open(&self.parent).and_then(|d| d.sync_all())
        })();
        if let Err(e) = moved {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(io(e));
        }
        mark_opened(&self.target);
        Ok(Store {
            db: open_sled(&self.target)?,
            path: self.target.clone(),
            layout,
            next_id,
            commits,
            diverged: false,
        })
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            let staging = store.path.clone();
            drop(store);
            let _ = std::fs::remove_dir_all(staging);
        }
    }
}

fn store_error(e: sled::Error) -> Error {
    match e {
        sled::Error::Corruption { .. } => Error::corruption("sled store", e.to_string()),
        other => Error::Store(other),
    }
}
