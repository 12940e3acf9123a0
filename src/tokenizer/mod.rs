//! Tokenizers: models that turn item embeddings into SIDs for the store and
//! index. ADA-SID is the method; RQ-Kmeans, RQ-VAE and OPQ are the
//! baselines it is measured against. Each stores itself as database blobs, so `encode`
//! and `eval` find the right one from the database alone.

pub mod adasid;
mod any;
pub mod config;
pub mod inputs;
pub mod item_id;
pub mod opq;
pub mod rq_kmeans;
pub mod rq_vae;
mod stored;

use candle_core::Device;

pub use adasid::{AdaSid, EpochStats, ModelMeta};
pub use any::{Step, TokenizerConfig, Trained};
pub use config::{Ablations, AdaSidConfig, NormSource};
pub use inputs::Inputs;
pub use item_id::{ItemIdConfig, ItemIds};
pub use opq::{Opq, OpqConfig};
pub use rq_kmeans::{RqKmeans, RqKmeansConfig};
pub use rq_vae::{Distance, RqVae, RqVaeConfig, RqVaeEpoch};

use crate::blobs::BlobSource;
use crate::data::embeddings::{DataSpec, Dataset, Table};
use crate::error::{Error, Result};
use crate::item::NewItem;
use crate::sid::SidLayout;

/// A tokenizer's reconstruction of its inputs, one table per modality.
#[derive(Clone, Debug)]
pub struct Reconstruction {
    /// Content modalities, in data order.
    pub content: Vec<Table>,
    /// The behavior embedding, when the tokenizer reads it.
    pub behavior: Option<Table>,
}

impl Reconstruction {
    /// The first `content` tables are content; a further one is behavior.
    pub(crate) fn from_tables(mut tables: Vec<Table>, content: usize) -> Self {
        let behavior = (tables.len() > content).then(|| tables.remove(content));
        tables.truncate(content);
        Reconstruction {
            content: tables,
            behavior,
        }
    }
}

/// Any trained tokenizer.
pub enum Tokenizer {
    /// ADA-SID (or one of its ablations).
    AdaSid(AdaSid),
    /// Residual k-means.
    RqKmeans(RqKmeans),
    /// Residual-quantised VAE.
    RqVae(RqVae),
    /// Product quantisation with a learned rotation.
    Opq(Opq),
    /// Plain item ids (the baseline without semantics).
    ItemIds(ItemIds),
}

impl Tokenizer {
    /// Loads whichever tokenizer made `db`'s SIDs.
    pub fn from_blobs(db: &(impl BlobSource + ?Sized), device: Device) -> Result<Tokenizer> {
        let name = stored::required(db, stored::TOKENIZER)?;
        match std::str::from_utf8(&name).unwrap_or("") {
            AdaSid::NAME => Ok(Tokenizer::AdaSid(AdaSid::from_blobs(db, device)?)),
            RqKmeans::NAME => Ok(Tokenizer::RqKmeans(RqKmeans::from_blobs(db)?)),
            RqVae::NAME => Ok(Tokenizer::RqVae(RqVae::from_blobs(db, device)?)),
            Opq::NAME => Ok(Tokenizer::Opq(Opq::from_blobs(db)?)),
            ItemIds::NAME => Ok(Tokenizer::ItemIds(ItemIds::from_blobs(db)?)),
            _ => Err(Error::InvalidArgument(format!(
                "unknown tokenizer '{}' in {}",
                String::from_utf8_lossy(&name),
                db.describe()
            ))),
        }
    }

    /// The tokenizer stored in `db`, or `None` for a database of imported
    /// SIDs (`ingest-tokens`), which holds no model.
    pub fn stored_in(db: &(impl BlobSource + ?Sized), device: Device) -> Result<Option<Tokenizer>> {
        match db.blob(stored::TOKENIZER)? {
            None => Ok(None),
            Some(_) => Tokenizer::from_blobs(db, device).map(Some),
        }
    }

    /// Its name as `adasid train --tokenizer` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Tokenizer::AdaSid(_) => AdaSid::NAME,
            Tokenizer::RqKmeans(_) => RqKmeans::NAME,
            Tokenizer::RqVae(_) => RqVae::NAME,
            Tokenizer::Opq(_) => Opq::NAME,
            Tokenizer::ItemIds(_) => ItemIds::NAME,
        }
    }

    /// The SID layout it produces.
    pub fn layout(&self) -> SidLayout {
        match self {
            Tokenizer::AdaSid(t) => t.layout(),
            Tokenizer::RqKmeans(t) => t.layout(),
            Tokenizer::RqVae(t) => t.layout(),
            Tokenizer::Opq(t) => t.layout(),
            Tokenizer::ItemIds(t) => t.layout(),
        }
    }

    /// The data-folder files it reads.
    pub fn data_spec(&self) -> &DataSpec {
        match self {
            Tokenizer::AdaSid(t) => &t.config().data,
            Tokenizer::RqKmeans(t) => &t.config().data,
            Tokenizer::RqVae(t) => &t.config().data,
            Tokenizer::Opq(t) => &t.config().data,
            Tokenizer::ItemIds(t) => &t.config().data,
        }
    }

    /// SIDs of every item of `data`, in row order.
    pub fn encode(&self, data: &Dataset) -> Result<Vec<NewItem>> {
        match self {
            Tokenizer::AdaSid(t) => t.encode(data),
            Tokenizer::RqKmeans(t) => t.encode(data),
            Tokenizer::RqVae(t) => t.encode(data),
            Tokenizer::Opq(t) => t.encode(data),
            Tokenizer::ItemIds(t) => t.encode(data),
        }
    }

    /// What the SIDs reconstruct of every item's inputs (`None` for item
    /// ids, which carry no content).
    pub fn reconstruct(&self, data: &Dataset) -> Result<Option<Reconstruction>> {
        Ok(Some(match self {
            Tokenizer::AdaSid(t) => t.reconstruct(data)?,
            Tokenizer::RqKmeans(t) => t.reconstruct(data)?,
            Tokenizer::RqVae(t) => t.reconstruct(data)?,
            Tokenizer::Opq(t) => t.reconstruct(data)?,
            Tokenizer::ItemIds(_) => return Ok(None),
        }))
    }

    /// The blobs that store it.
    pub fn to_blobs(&self) -> Result<Vec<(String, Vec<u8>)>> {
        match self {
            Tokenizer::AdaSid(t) => t.to_blobs(),
            Tokenizer::RqKmeans(t) => t.to_blobs(),
            Tokenizer::RqVae(t) => t.to_blobs(),
            Tokenizer::Opq(t) => t.to_blobs(),
            Tokenizer::ItemIds(t) => Ok(t.to_blobs()),
        }
    }
}
