//! The one path from embeddings to a database: train a tokenizer, give
//! every item its SID, and write SIDs, model and metadata in one atomic
//! commit. `adasid train`, `compare` and `demo` all go through
//! [`train_database`]; [`encode`] gives later items SIDs with a stored model.

use std::path::Path;

use candle_core::Device;

use crate::data::embeddings::Dataset;
use crate::data::meta::Meta;
use crate::database::{Database, WriteReport};
use crate::error::{Error, Result};
use crate::eval::{ReconError, recon_error};
use crate::tokenizer::{Step, Tokenizer, TokenizerConfig, Trained};

/// A database written by [`train_database`], with what training reported.
pub struct Built {
    /// The new database, open.
    pub db: Database,
    /// The tokenizer and its training history.
    pub trained: Trained,
    /// What the single commit wrote.
    pub report: WriteReport,
}

impl Built {
    /// How well the trained tokenizer's SIDs reconstruct `data` (the data it
    /// was trained on): one decoding pass, run only when asked for; `None`
    /// for item ids, which reconstruct nothing.
    pub fn recon(&self, data: &Dataset) -> Result<Option<ReconError>> {
        let model = &self.trained.tokenizer;
        model
            .reconstruct(data)?
            .map(|r| recon_error(data, &r))
            .transpose()
    }
}

/// Refuses `path` for a new database when one exists there (what
/// [`train_database`] checks first; a caller may check before loading data).
pub fn check_new(path: &Path) -> Result<()> {
    match Database::exists(path) {
        true => Err(Error::AlreadyExists {
            path: path.to_path_buf(),
        }),
        false => Ok(()),
    }
}

/// Trains `config` on `data`, encodes every item and creates the database
/// at `path` holding SIDs, model blobs and `meta` (by key) in one commit.
/// Refuses an existing database before any work. Training, encoding and
/// the batch's validation (SIDs, metadata keys) all happen before the
/// folder is created, so a failure there leaves no database; only a failed
/// store commit after creation leaves an empty one.
pub fn train_database(
    path: &Path,
    config: &TokenizerConfig,
    data: &Dataset,
    meta: &[(String, Meta)],
    device: Device,
    progress: impl FnMut(Step<'_>),
) -> Result<Built> {
    check_new(path)?;
    let trained = config.train(data, device, progress)?;
    let model = &trained.tokenizer;
    let items = model.encode(data)?;
    let (db, report) =
        Database::create_with(path, model.layout(), &items, meta, model.to_blobs()?)?;
    Ok(Built {
        db,
        trained,
        report,
    })
}

/// Gives the items of `data` SIDs with `tokenizer` (normally the one stored
/// in `db`, [`Tokenizer::from_blobs`]) and upserts them with their `meta` as
/// one atomic, durable batch: new keys are added, known keys re-encoded.
pub fn encode(
    db: &Database,
    tokenizer: &Tokenizer,
    data: &Dataset,
    meta: &[(String, Meta)],
) -> Result<WriteReport> {
    db.upsert_with_meta(&tokenizer.encode(data)?, meta, Vec::new())
}
