//! Plain item ids as one-token SIDs: the baseline every semantic ID has to
//! beat. Item `i` of the training catalogue gets the SID `[i]` (K = the
//! catalogue size), so the parallel retriever over it is SASRec with a
//! softmax over item ids, under the same backbone as every SID row. It
//! learns nothing from content: it reconstructs nothing, and an item it
//! was not trained on has no token.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::stored;
use crate::blobs::BlobSource;
use crate::codec::{self, Kind};
use crate::data::embeddings::{DataSpec, Dataset};
use crate::error::{Error, Result};
use crate::item::NewItem;
use crate::sid::{MAX_CODEBOOK_SIZE, SidLayout};

/// Blob names of a stored item-id table.
pub mod blobs {
    /// Its configuration (TOML).
    pub const CONFIG: &str = "item-id/config";
    /// The training catalogue's keys, in token order.
    pub const KEYS: &str = "item-id/keys";
}

/// Settings of the item-id "tokenizer" (TOML): only the data files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ItemIdConfig {
    /// Files of the data folder (only the keys are read).
    pub data: DataSpec,
}

impl ItemIdConfig {
    /// Reads a TOML file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Self> {
        crate::settings::read(path, |_| Ok(()))
    }
}

/// Item ids of a fixed catalogue.
pub struct ItemIds {
    cfg: ItemIdConfig,
    keys: Vec<String>,
    token: HashMap<String, u16>,
}

impl ItemIds {
    /// Its name in the `tokenizer` blob and on the command line.
    pub const NAME: &'static str = "item-id";

    fn from_keys(cfg: ItemIdConfig, keys: Vec<String>) -> Result<Self> {
        if keys.len() < 2 || keys.len() > MAX_CODEBOOK_SIZE as usize {
            return Err(Error::InvalidArgument(format!(
                "item ids as one-token SIDs need 2 to {MAX_CODEBOOK_SIZE} items, got {}",
                keys.len()
            )));
        }
        let token = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i as u16))
            .collect();
        Ok(ItemIds { cfg, keys, token })
    }

    /// One token per item of `data`.
    pub fn train(cfg: ItemIdConfig, data: &Dataset) -> Result<Self> {
        Self::from_keys(cfg, data.keys.clone())
    }

    /// The configuration.
    pub fn config(&self) -> &ItemIdConfig {
        &self.cfg
    }

    /// One position of K = catalogue-size tokens.
    pub fn layout(&self) -> SidLayout {
        SidLayout::new(1, self.keys.len() as u32, 0).expect("checked size")
    }

    /// Each item's own token; an item outside the training catalogue is an error.
    pub fn encode(&self, data: &Dataset) -> Result<Vec<NewItem>> {
        data.keys
            .iter()
            .map(|k| match self.token.get(k) {
                Some(&t) => Ok(NewItem {
                    key: k.clone(),
                    tokens: vec![t],
                    weights: Vec::new(),
                }),
                None => Err(Error::InvalidArgument(format!(
                    "item ids have no token for '{k}', which was not in the training catalogue"
                ))),
            })
            .collect()
    }

    /// The key table, as blobs.
    pub fn to_blobs(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            (
                stored::TOKENIZER.to_string(),
                Self::NAME.as_bytes().to_vec(),
            ),
            (
                blobs::CONFIG.to_string(),
                crate::settings::to_toml(&self.cfg).into_bytes(),
            ),
            (
                blobs::KEYS.to_string(),
                codec::encode(Kind::Blob, &self.keys),
            ),
        ]
    }

    /// Loads the table stored in `db`.
    pub fn from_blobs(db: &(impl BlobSource + ?Sized)) -> Result<Self> {
        let text = stored::required_text(db, blobs::CONFIG)?;
        let cfg = crate::settings::parse(blobs::CONFIG, &text, |_| Ok(()))?;
        let keys: Vec<String> = codec::decode(Kind::Blob, &stored::required(db, blobs::KEYS)?)?;
        Self::from_keys(cfg, keys)
    }
}
