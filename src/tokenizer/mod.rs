//! Tokenizers: models that turn item embeddings into SIDs for the store and index.

pub mod adasid;
pub mod config;

pub use adasid::{AdaSid, EpochStats, ModelMeta, parse_device};
pub use config::{Ablations, AdaSidConfig, NormSource};
