//! A trained ADA-SID as database blobs: configuration, input sizes and
//! N_norm range, weights, and each expert's codebook.

use candle_core::Device;

use super::{AdaSid, ModelMeta};
use crate::blobs::BlobSource;
use crate::codec::{self, Kind, Matrix};
use crate::error::{Error, Result};
use crate::tokenizer::config::AdaSidConfig;
use crate::tokenizer::stored;

/// Blob names under which a trained model is stored.
pub mod blobs {
    /// Which tokenizer made the SIDs.
    pub const TOKENIZER: &str = "tokenizer";
    /// The training configuration (TOML).
    pub const CONFIG: &str = "adasid/config";
    /// Input sizes and N_norm statistics.
    pub const META: &str = "adasid/meta";
    /// Network weights (safetensors).
    pub const WEIGHTS: &str = "adasid/weights";
    /// Prefix of each expert's codebook (matrix frame), followed by its index.
    pub const CODEBOOK: &str = "adasid/codebook/";
}

impl AdaSid {
    /// Everything a database needs to encode new items later.
    pub fn to_blobs(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut out = vec![
            (blobs::TOKENIZER.to_string(), Self::NAME.as_bytes().to_vec()),
            (blobs::CONFIG.to_string(), self.cfg.to_toml().into_bytes()),
            (
                blobs::META.to_string(),
                codec::encode(Kind::Blob, &self.meta),
            ),
            (blobs::WEIGHTS.to_string(), self.net.params().to_bytes()?),
        ];
        for e in 0..self.net.shape().experts() {
            let rows = self.net.codebook(e).rows()?;
            let m = Matrix::new(
                self.cfg.codebook_size as u32,
                self.cfg.code_dim as u32,
                rows,
            )?;
            out.push((format!("{}{e}", blobs::CODEBOOK), m.encode()));
        }
        Ok(out)
    }

    /// Loads the model stored in `db`.
    pub fn from_blobs(db: &(impl BlobSource + ?Sized), device: Device) -> Result<AdaSid> {
        if stored::required(db, blobs::TOKENIZER)? != Self::NAME.as_bytes() {
            return Err(Error::InvalidArgument(
                "the database's SIDs were not made by ADA-SID".into(),
            ));
        }
        let cfg_text = stored::required_text(db, blobs::CONFIG)?;
        let cfg = AdaSidConfig::from_toml("stored model config", &cfg_text)?;
        let meta: ModelMeta = codec::decode(Kind::Blob, &stored::required(db, blobs::META)?)?;
        let model = AdaSid::build(cfg, meta, device)?;
        model
            .net
            .params()
            .load_bytes(&stored::required(db, blobs::WEIGHTS)?)?;
        Ok(model)
    }
}
