//! ADA-SID, the mixture-of-quantization tokenizer: the candle network
//! (`net`, with its cosine `codebook`s and the behavior `router`), the
//! per-item `weights` from N_norm, training (`fit`), its stored form
//! (`stored`), and batch encoding and reconstruction here.

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::Reconstruction;
use super::config::{AdaSidConfig, NormSource};
use crate::data::embeddings::Dataset;
use crate::error::{Error, Result};
use crate::item::NewItem;
use crate::nn::ParamStore;
use crate::nn::params::ml;
use crate::sid::{EMPTY, SidLayout, Token};
use net::{AdaSidNet, Batch, NetShape};
use plain::{PlainEncoder, Rows};
use rayon::prelude::*;
use weights::n_norm;

/// Items per encoding task (each runs its products on one core).
const ENCODE_ROWS: usize = 512;

mod codebook;
mod fit;
mod net;
mod plain;
mod router;
mod stored;
mod weights;

pub use fit::EpochStats;
pub use router::ControllerConfig;
pub use stored::blobs;

/// What encoding new items needs besides the weights: input sizes and the
/// training catalogue's N_norm range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Width of each content modality.
    pub content_dims: Vec<usize>,
    /// Width of the behavior embedding.
    pub behavior_dim: usize,
    /// Source of N_norm.
    pub source: NormSource,
    /// Smallest raw signal (norm, or log(1 + count)) in the training catalogue.
    pub min: f32,
    /// Largest raw signal in the training catalogue.
    pub max: f32,
    /// Router offsets `b` at the end of training.
    pub router_offsets: Vec<f32>,
}

/// A trained ADA-SID tokenizer.
pub struct AdaSid {
    cfg: AdaSidConfig,
    meta: ModelMeta,
    net: AdaSidNet,
}

/// Raw N_norm signal per item: behavior norm, or log(1 + count).
fn raw_signal(data: &Dataset, source: NormSource) -> Result<Vec<f32>> {
    match source {
        NormSource::Norm => Ok(data.behavior_norms()),
        NormSource::Popularity => data
            .popularity
            .as_ref()
            .map(|p| p.iter().map(|c| c.ln_1p()).collect())
            .ok_or_else(|| {
                Error::InvalidArgument(
                    "n_norm_source = \"popularity\" needs the popularity file in the data folder"
                        .into(),
                )
            }),
    }
}

impl AdaSid {
    /// Its name in the `tokenizer` blob and on the command line.
    pub const NAME: &'static str = "adasid";

    fn build(cfg: AdaSidConfig, meta: ModelMeta, device: Device) -> Result<Self> {
        let shape = NetShape {
            content_dims: meta.content_dims.clone(),
            behavior_dim: meta.behavior_dim,
            hidden: cfg.hidden,
            width: cfg.width,
            code_dim: cfg.code_dim,
            k: cfg.codebook_size,
            shared: cfg.shared_experts,
            per_content: cfg.content_experts,
            behavior: cfg.behavior_experts,
        };
        let params = ParamStore::new(device, ChaCha8Rng::seed_from_u64(cfg.seed));
        Ok(AdaSid {
            net: AdaSidNet::new(shape, params)?,
            cfg,
            meta,
        })
    }

    /// The configuration trained with.
    pub fn config(&self) -> &AdaSidConfig {
        &self.cfg
    }

    /// Input sizes and N_norm range.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// The SID layout this tokenizer produces.
    pub fn layout(&self) -> SidLayout {
        SidLayout::new(
            self.net.shape().experts() as u32,
            self.cfg.codebook_size as u32,
            self.cfg.behavior_experts as u32,
        )
        .expect("validated config")
    }

    /// N_norm of every item of `data`, with this model's stored range.
    pub fn n_norms(&self, data: &Dataset) -> Result<Vec<f32>> {
        Ok(raw_signal(data, self.meta.source)?
            .into_iter()
            .map(|x| n_norm(x, self.meta.min, self.meta.max))
            .collect())
    }

    fn check_dims(&self, data: &Dataset) -> Result<()> {
        let dims: Vec<usize> = data.content.iter().map(|t| t.dim).collect();
        if dims != self.meta.content_dims || data.behavior.dim != self.meta.behavior_dim {
            return Err(Error::InvalidArgument(format!(
                "the model was trained on content widths {:?} and behavior width {}, the data has {:?} and {}",
                self.meta.content_dims, self.meta.behavior_dim, dims, data.behavior.dim
            )));
        }
        Ok(())
    }

    fn batch(
        &self,
        data: &Dataset,
        idx: &[usize],
        norms: &[f32],
        offsets: &[f32],
    ) -> Result<Batch> {
        let dev = self.net.device();
        let table = |t: &crate::data::embeddings::Table| {
            Tensor::from_vec(t.gather(idx).data, (idx.len(), t.dim), dev).map_err(ml)
        };
        let n: Vec<f32> = idx.iter().map(|&i| norms[i]).collect();
        Ok(Batch {
            content: data.content.iter().map(table).collect::<Result<_>>()?,
            behavior: table(&data.behavior)?,
            n_norm: Tensor::from_vec(n, (idx.len(), 1), dev).map_err(ml)?,
            router_offset: Tensor::from_slice(offsets, (1, offsets.len()), dev).map_err(ml)?,
        })
    }

    /// SIDs (semantic tokens) and routing weights of every item of `data`, in
    /// row order. A behavior SID whose routing weight is exactly 0 is [`EMPTY`].
    pub fn encode(&self, data: &Dataset) -> Result<Vec<NewItem>> {
        self.check_dims(data)?;
        let norms = self.n_norms(data)?;
        let plain = PlainEncoder::new(&self.net)?;
        let idx: Vec<usize> = (0..data.len()).collect();
        let chunks: Vec<Vec<NewItem>> = idx
            .par_chunks(ENCODE_ROWS)
            .map(|chunk| self.encode_rows(&plain, data, chunk, &norms))
            .collect();
        Ok(chunks.into_iter().flatten().collect())
    }

    /// The items of rows `idx` of `data`.
    fn encode_rows(
        &self,
        plain: &PlainEncoder,
        data: &Dataset,
        idx: &[usize],
        norms: &[f32],
    ) -> Vec<NewItem> {
        let content: Vec<Vec<f32>> = data.content.iter().map(|t| t.gather(idx).data).collect();
        let rows = Rows {
            content: &content,
            behavior: &data.behavior.gather(idx).data,
            n_norm: &idx.iter().map(|&i| norms[i]).collect::<Vec<_>>(),
        };
        let equal = self.cfg.ablation.no_behavior_routing;
        let (tokens, routing) = plain.encode(&rows, &self.meta.router_offsets, equal);
        let (e, nb) = (self.net.shape().experts(), self.cfg.behavior_experts);
        idx.iter()
            .enumerate()
            .map(|(r, &i)| {
                let weights = routing[r * nb..(r + 1) * nb].to_vec();
                let sid = (0..e)
                    .map(|j| match j.checked_sub(e - nb) {
                        Some(b) if weights[b] == 0.0 => EMPTY,
                        _ => tokens[r * e + j] as Token,
                    })
                    .collect();
                NewItem {
                    key: data.keys[i].clone(),
                    tokens: sid,
                    weights,
                }
            })
            .collect()
    }

    /// The decoder's output from every item's SID, split into modalities
    /// (content tables, then behavior).
    pub fn reconstruct(&self, data: &Dataset) -> Result<Reconstruction> {
        self.check_dims(data)?;
        let norms = self.n_norms(data)?;
        let equal = self.cfg.ablation.no_behavior_routing;
        let mut widths = self.meta.content_dims.clone();
        widths.push(self.meta.behavior_dim);
        let idx: Vec<usize> = (0..data.len()).collect();
        let mut rows = Vec::with_capacity(data.len() * widths.iter().sum::<usize>());
        for chunk in idx.chunks(8192) {
            let batch = self.batch(data, chunk, &norms, &self.meta.router_offsets)?;
            let xhat = self.net.reconstruct(&batch, equal)?;
            rows.extend(
                xhat.flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(ml)?,
            );
        }
        Ok(Reconstruction::from_tables(
            super::inputs::split(&rows, &widths),
            data.content.len(),
        ))
    }
}
