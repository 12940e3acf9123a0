//! `snapshot` and `meta`: what a serving process reads.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use super::{DbArgs, emit};
use adasid::database::{Database, Reader};
use adasid::error::{Error, Result};
use adasid::filter::Meta;
use adasid::snapshot::Snapshot;

#[derive(clap::Args, Debug)]
pub struct SnapshotArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Snapshot file to write (replaced atomically if it exists).
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct MetaArgs {
    #[command(flatten)]
    db: DbArgs,
    /// JSON lines, one object per item (`meta.jsonl`).
    #[arg(long)]
    file: PathBuf,
    /// Field holding the item key (default: the first of key, asin, item_id, id).
    #[arg(long)]
    key_field: Option<String>,
}

pub fn snapshot(a: SnapshotArgs) -> Result<()> {
    Database::check_snapshot_path(&a.db.db, &a.out)?;
    let start = Instant::now();
    // A current publication is a snapshot already: copied, the store is
    // not opened (a writer may hold it). One that may lag is not used.
    let bytes = match Reader::open(&a.db.db)? {
        Reader::Published(p) if !p.lagging() => {
            adasid::snapshot::write_bytes(p.view().as_bytes(), &a.out)?
        }
        Reader::Published(_) => {
            return Err(Error::Locked {
                path: a.db.db.clone(),
            });
        }
        Reader::Store(db) => db.snapshot(&a.out)?,
    };
    let write_seconds = start.elapsed().as_secs_f64();
    let opened = Instant::now();
    let snap = Snapshot::open(&a.out)?;
    let open_seconds = opened.elapsed().as_secs_f64();
    snap.verify()?;
    let items = adasid::index::SidIndex::len(&snap);
    let value = json!({
        "out": a.out,
        "items": items,
        "bytes": bytes,
        "write_seconds": write_seconds,
        "open_seconds": open_seconds,
    });
    emit(a.db.json, &value, || {
        format!(
            "snapshot of {items} items written to {} ({bytes} bytes, {write_seconds:.2}s); \
             opens in {:.3} ms, checksums verified\n",
            a.out.display(),
            open_seconds * 1e3
        )
    });
    Ok(())
}

pub fn meta(a: MetaArgs) -> Result<()> {
    // The file first: a bad one fails before the store is opened (an open writes to it).
    let all = adasid::data::meta::read(&a.file, a.key_field.as_deref())?;
    let db = Database::open(&a.db.db)?;
    let total = all.len();
    let known: Vec<(String, Meta)> = {
        let state = db.read();
        all.into_iter()
            .filter(|(k, _)| state.find(k).is_some())
            .collect()
    };
    db.set_meta(&known)?;
    let value = json!({ "lines": total, "indexed": known.len(), "skipped": total - known.len() });
    emit(a.db.json, &value, || {
        format!(
            "metadata of {} items indexed; {} lines name items not in the database\n",
            known.len(),
            total - known.len()
        )
    });
    Ok(())
}

/// The metadata in `dir/meta.jsonl` (if there is one) of the keys `keep` accepts.
pub(crate) fn data_meta(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<(String, Meta)>> {
    let path = dir.join("meta.jsonl");
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let mut all = adasid::data::meta::read(&path, None)?;
    all.retain(|(k, _)| keep(k));
    Ok(all)
}
