//! The published view: what readers in other processes read while a writer
//! holds the store (the store admits one process at a time).
//!
//! `DB/published/CURRENT` names a generation `n`; `DB/published/n/` holds
//! `index.snap` (a [`crate::snapshot`] of index and keys) and `blobs`
//! (every stored blob, one checksummed frame). A generation is complete
//! before `CURRENT` names it, and `CURRENT` is replaced by a rename, so a
//! reader finds either the previous publication or the whole new one.
//!
//! `DIRTY` exists (durably) from before a commit until that commit is
//! published. A reader that finds no `DIRTY` reads a publication that
//! holds every acknowledged write; one that finds it knows the
//! publication may lag (a commit is under way, publication is deferred,
//! or a writer died between its commit and its publication, which the
//! next open of the store repairs).
//!
//! Invariant: with publication after every commit (the default), a write
//! is acknowledged only once it is published.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::blobs::BlobSource;
use crate::codec::{self, frame::Kind};
use crate::error::{Error, Result};
use crate::snapshot::{Sections, Snapshot};

/// The publication folder inside a database folder.
pub const DIR: &str = "published";
const CURRENT: &str = "CURRENT";
const DIRTY: &str = "DIRTY";
const INDEX: &str = "index.snap";
const BLOBS: &str = "blobs";
const META_GENERATION: &str = "meta_generation";
/// The store's commit count the generation shows (`Store::commits`).
const COMMITS: &str = "commits";
/// Temporary names of a writer's files (see [`crate::stale`]).
const TEMP_PREFIX: &str = ".adasid-publish-";

/// A writer's side: where it publishes and what it knows of the last
/// publication. Used under the database's store lock only.
#[derive(Debug)]
pub(super) struct Publisher {
    dir: PathBuf,
    /// The generation `CURRENT` names (0: none yet).
    generation: u64,
    /// The store commit count that generation shows (`None`: unknown, as
    /// in one written before the count was recorded).
    commits: Option<u64>,
    dirty: bool,
    /// Blobs unchanged since the last publication (its file can be linked).
    blobs_same: bool,
    /// Why the last publication failed, until one succeeds.
    pub(super) failed: Option<String>,
}

impl Publisher {
    /// Reads what `db/published` holds (nothing is written).
    pub(super) fn new(db: &Path) -> Publisher {
        let dir = db.join(DIR);
        let generation = current(&dir).unwrap_or(0);
        Publisher {
            generation,
            commits: read_number(&dir.join(generation.to_string()).join(COMMITS)),
            dirty: dir.join(DIRTY).exists(),
            dir,
            blobs_same: false,
            failed: None,
        }
    }

    /// The current generation's snapshot file, when it shows exactly the
    /// store's `commits` commits (none when the publication is missing,
    /// dirty, or the count is unknown or another): what an open maps
    /// instead of rebuilding.
    pub(super) fn base(&self, commits: Option<u64>) -> Option<PathBuf> {
        let shows = self.generation > 0 && !self.dirty && commits.is_some();
        (shows && self.commits == commits).then(|| self.generation_dir(self.generation).join(INDEX))
    }

    fn generation_dir(&self, generation: u64) -> PathBuf {
        self.dir.join(generation.to_string())
    }

    /// Makes `DIRTY` durable before a commit (once until the next publication).
    pub(super) fn before_commit(&mut self, blobs: bool) -> Result<()> {
        self.blobs_same &= !blobs;
        if self.dirty {
            return Ok(());
        }
        let io = |e| Error::io(&self.dir, e);
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        std::fs::File::create(self.dir.join(DIRTY))
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        crate::stale::sync_dir(&self.dir)?;
        self.dirty = true;
        Ok(())
    }

    /// Publishes the snapshot `sections` returns (of the items the store
    /// shows after `commits` commits; `None`: unknown, so no open will map
    /// it) and the blobs `all_blobs` returns (read only when they changed
    /// since the last publication) as a new generation; returns its
    /// snapshot file.
    pub(super) fn publish(
        &mut self,
        sections: impl FnOnce() -> Result<Sections>,
        (meta_generation, commits): (u64, Option<u64>),
        all_blobs: impl FnOnce() -> Result<Vec<(String, Vec<u8>)>>,
    ) -> Result<PathBuf> {
        let result = self.try_publish(sections, (meta_generation, commits), all_blobs);
        self.failed = result.as_ref().err().map(|e| e.to_string());
        result
    }

    fn try_publish(
        &mut self,
        sections: impl FnOnce() -> Result<Sections>,
        (meta_generation, commits): (u64, Option<u64>),
        all_blobs: impl FnOnce() -> Result<Vec<(String, Vec<u8>)>>,
    ) -> Result<PathBuf> {
        let io = |e| Error::io(&self.dir, e);
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let next = self.generation + 1;
        let gen_dir = self.dir.join(next.to_string());
        // A folder of this number is what a writer that died mid-publication left.
        if gen_dir.exists() {
            std::fs::remove_dir_all(&gen_dir).map_err(io)?;
        }
        std::fs::create_dir(&gen_dir).map_err(io)?;
        sections()?.write(&gen_dir.join(INDEX))?;
        let old_blobs = self.dir.join(self.generation.to_string()).join(BLOBS);
        let linked = self.blobs_same
            && self.generation > 0
            && std::fs::hard_link(&old_blobs, gen_dir.join(BLOBS)).is_ok();
        if !linked {
            write_synced(&gen_dir, BLOBS, &encode_blobs(&all_blobs()?)?)?;
        }
        // Which metadata commit the view holds: a reader checks the metadata
        // index against it.
        write_synced(
            &gen_dir,
            META_GENERATION,
            format!("{meta_generation}\n").as_bytes(),
        )?;
        if let Some(commits) = commits {
            write_synced(&gen_dir, COMMITS, format!("{commits}\n").as_bytes())?;
        }
        crate::stale::sync_dir(&gen_dir)?;
        write_synced(&self.dir, CURRENT, format!("{next}\n").as_bytes())?;
        let previous = self.generation;
        self.generation = next;
        self.commits = commits;
        self.blobs_same = true;
        if self.dirty {
            std::fs::remove_file(self.dir.join(DIRTY)).map_err(io)?;
            crate::stale::sync_dir(&self.dir)?;
            self.dirty = false;
        }
        // The previous generation stays for readers that just read CURRENT;
        // older ones go (a reader holding their files keeps reading them).
        self.remove_generations_before(previous);
        Ok(gen_dir.join(INDEX))
    }

    fn remove_generations_before(&self, keep: u64) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let n = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u64>().ok());
            if n.is_some_and(|n| n < keep) {
                // Best effort: a leftover is removed by a later publication.
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        for stale in crate::stale::left_by_dead_writers(&self.dir, TEMP_PREFIX) {
            let _ = std::fs::remove_file(stale);
        }
    }
}

/// The generation `CURRENT` names.
fn current(dir: &Path) -> Option<u64> {
    read_number(&dir.join(CURRENT))
}

/// A file holding one decimal number and a newline.
fn read_number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Writes `name` in `dir` through a fsynced temporary file and a rename.
fn write_synced(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    crate::stale::replace(&dir.join(name), TEMP_PREFIX, |w| w.write_all(bytes)).map(drop)
}

fn encode_blobs(blobs: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let payload = codec::to_payload(&blobs);
    if payload.len() > u32::MAX as usize {
        return Err(Error::InvalidArgument(
            "blobs too large to publish (over 4 GiB)".into(),
        ));
    }
    Ok(codec::frame::encode(Kind::BlobSet, &payload))
}

fn decode_blobs(bytes: &[u8]) -> Result<HashMap<String, Vec<u8>>> {
    let list: Vec<(String, Vec<u8>)> = codec::decode(Kind::BlobSet, bytes)?;
    Ok(list.into_iter().collect())
}

/// A database's published view, opened without its store: the snapshot
/// (mapped, verified) and the blob file (mapped; decoded on first use) of
/// one publication.
pub struct Published {
    snapshot: Snapshot<memmap2::Mmap>,
    /// The blob file, mapped at open (so a later publication removing it
    /// does not matter) and decoded on the first [`BlobSource::blob`]: most
    /// reads need no model.
    blob_file: memmap2::Mmap,
    blobs: std::sync::OnceLock<HashMap<String, Vec<u8>>>,
    /// The metadata commits the view holds (`Store::meta_generation`);
    /// filtered reads check it.
    #[cfg_attr(not(feature = "filters"), allow(dead_code))]
    meta_generation: Option<u64>,
    lagging: bool,
    path: PathBuf,
}

impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published")
            .field("path", &self.path)
            .field("lagging", &self.lagging)
            .finish()
    }
}

impl Published {
    /// The newest publication of the database at `db`, or `None` if it has
    /// none. Retries when the writer replaces the generation being opened.
    pub fn open(db: &Path) -> Result<Option<Published>> {
        let dir = db.join(DIR);
        for _ in 0..8 {
            let lagging = dir.join(DIRTY).exists();
            let Some(n) = current(&dir) else {
                return Ok(None);
            };
            match Self::open_generation(db, &dir.join(n.to_string()), lagging) {
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    continue; // replaced and removed meanwhile: read CURRENT again
                }
                other => return other.map(Some),
            }
        }
        Err(Error::Busy {
            path: db.to_path_buf(),
            reason: "its writer replaced the published view 8 times while it was being opened"
                .into(),
        })
    }

    /// The SID layout of the database at `db`, read from its publication's
    /// header without opening the store (`None` without a publication). A
    /// layout never changes, so even a lagging publication has it right.
    pub fn layout_at(db: &Path) -> Option<crate::sid::SidLayout> {
        let dir = db.join(DIR);
        let n = current(&dir)?;
        let snap = Snapshot::open(&dir.join(n.to_string()).join(INDEX)).ok()?;
        Some(*crate::SidIndex::layout(&snap))
    }

    fn open_generation(db: &Path, dir: &Path, lagging: bool) -> Result<Published> {
        let snapshot = Snapshot::open(&dir.join(INDEX))?;
        snapshot.verify()?;
        let path = dir.join(BLOBS);
        let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        // SAFETY: a publication's files are never modified once `CURRENT`
        // names them (new generations are new files), only removed, and a
        // mapping outlives the removal.
        let blob_file = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        let meta_generation = std::fs::read_to_string(dir.join(META_GENERATION))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        Ok(Published {
            snapshot,
            blob_file,
            blobs: std::sync::OnceLock::new(),
            meta_generation,
            lagging,
            path: db.to_path_buf(),
        })
    }

    /// The published items: SIDs, postings and keys.
    pub fn view(&self) -> &Snapshot<memmap2::Mmap> {
        &self.snapshot
    }

    /// The database's metadata index, opened for reading beside the writer
    /// (`None` without metadata), when it holds exactly the metadata of
    /// this view; otherwise (a metadata commit under way, or the index
    /// behind and waiting for the writer's repair) `Error::Busy`.
    #[cfg(feature = "filters")]
    pub fn filters(&self) -> Result<Option<crate::filter::Filters>> {
        let dir = self.path.join(super::filters::FILTERS_DIR);
        if !dir.exists() {
            return Ok(None);
        }
        let filters = crate::filter::Filters::open_read_only(&dir)?;
        let holds = filters.generation()?;
        match self.meta_generation == Some(holds) {
            true => Ok(Some(filters)),
            false => Err(Error::Busy {
                path: self.path.clone(),
                reason: format!(
                    "its metadata index holds metadata commit {holds}, the published items \
                     commit {}: a metadata write or the index's repair is under way",
                    self.meta_generation
                        .map_or("(unknown)".to_string(), |g| g.to_string())
                ),
            }),
        }
    }

    /// The database folder it was published in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a commit may be missing from it (see the module docs).
    pub fn lagging(&self) -> bool {
        self.lagging
    }
}

impl BlobSource for Published {
    fn blob(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let blobs = match self.blobs.get() {
            Some(blobs) => blobs,
            None => {
                let _ = self.blobs.set(decode_blobs(&self.blob_file)?);
                self.blobs.get().expect("just set")
            }
        };
        Ok(blobs.get(name).cloned())
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}
