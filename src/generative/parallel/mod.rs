//! The parallel retriever: every semantic position of the next item's SID
//! predicted at once (RPG, Hou et al. KDD 2025), so an item's score is the
//! sum of its tokens' log-probabilities and the exact top-k comes from the
//! index's per-position postings ([`crate::decode::top_k`]). Long,
//! unordered SIDs (OPQ's 16–64 codes) are what it is for.
//!
//! Training is SASRec-style: one causal pass per user sequence predicts the
//! next item at every position; validation NDCG@10 picks the epoch and
//! stops training when it no longer improves.

mod net;
mod plain;
mod repeat;
mod train;

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use net::{ParallelNet, ParallelShape};
use plain::PlainNet;
pub use train::ParallelEpoch;

use crate::blobs::BlobSource;
use crate::decode::{PositionScores, Scored, best_of, top_k};
use crate::error::{Error, Result};
use crate::generative::corpus::held_sids;
use crate::generative::stored::Stored;
use crate::index::{ItemId, SidIndex};
use crate::nn::ParamStore;
use crate::nn::params::ml;
use crate::settings;
use crate::sid::{SidLayout, Token, token_column};

/// Blob names of a stored parallel retriever.
pub mod blobs {
    /// Its configuration (TOML).
    pub const CONFIG: &str = "parallel/config";
    /// Its weights (safetensors).
    pub const WEIGHTS: &str = "parallel/weights";
}

const STORED: Stored = Stored {
    config: blobs::CONFIG,
    weights: blobs::WEIGHTS,
    what: "parallel retriever",
    trained_by: "adasid gen-train --retriever parallel",
    // A hybrid stored before the tied head existed had an id-only head.
    older: &[("sid_output", "false")],
};

/// Settings of the parallel retriever (TOML, every field optional).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParallelConfig {
    /// Model width.
    pub d_model: usize,
    /// Attention heads.
    pub heads: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Feed-forward width.
    pub ff: usize,
    /// Most recent items read per user.
    pub history: usize,
    /// Training epochs at most.
    pub epochs: usize,
    /// Sequences per step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Learning-rate schedule over `epochs`: `constant`, or `cosine`
    /// (annealed to 0 at the last epoch; early stopping still applies, so
    /// give `patience` the epoch count to run the whole schedule).
    pub schedule: Schedule,
    /// Steps of linear warm-up from 0 to `lr`.
    pub warmup_steps: usize,
    /// Dropout of embeddings and sublayer outputs while training.
    pub dropout: f32,
    /// Softmax temperature of the cosine logits (RPG: 0.07).
    pub temperature: f64,
    /// Epochs without a better validation NDCG@10 before training stops.
    pub patience: usize,
    /// Validation users scored after each epoch (a fixed sample).
    pub valid_users: usize,
    /// Seed of initialisation, shuffling, dropout and the validation sample.
    pub seed: u64,
    /// Hybrid: item ids in and out (SASRec's item softmax), SID tokens
    /// added to each input item; `gen-train --retriever hybrid`.
    pub hybrid: bool,
    /// A hybrid's head is tied to each item's whole input embedding (id
    /// and SID part) instead of its id embedding alone (the default; a
    /// hybrid stored before this setting existed reads as `false`).
    pub sid_output: bool,
    /// Learn one logit added to whatever the history already holds: a
    /// hybrid's (and an item-ID layout's) items seen in the history, or
    /// per position the tokens of the history's items. Data without
    /// repeat purchases teach it to push seen items down, data with them
    /// to lift them; `false` scores seen items like any other.
    pub repeat_bias: bool,
    /// A hybrid's item-id rows (ids `0..items`): set by training to one past
    /// the largest id it saw; later items read their SID part alone and are
    /// never recommended.
    pub items: usize,
}

impl Default for ParallelConfig {
    fn default() -> Self {
        ParallelConfig {
            d_model: 64,
            heads: 2,
            layers: 2,
            ff: 256,
            history: 50,
            epochs: 30,
            batch_size: 128,
            lr: 1e-3,
            weight_decay: 0.0,
            schedule: Schedule::Constant,
            warmup_steps: 0,
            dropout: 0.2,
            temperature: 0.07,
            patience: 3,
            valid_users: 2000,
            seed: 42,
            hybrid: false,
            sid_output: true,
            repeat_bias: false,
            items: 0,
        }
    }
}

/// How the learning rate moves over training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// `lr` throughout (after any warm-up).
    #[default]
    Constant,
    /// Half a cosine from `lr` to 0 over the configured epochs.
    Cosine,
}

impl ParallelConfig {
    /// The learning rate of 1-based `step` of `total` planned steps.
    pub fn lr_at(&self, step: usize, total: usize) -> f64 {
        match self.schedule {
            Schedule::Constant => crate::nn::warmup_lr(self.lr, step, self.warmup_steps),
            Schedule::Cosine => crate::nn::cosine_lr(self.lr, step, self.warmup_steps, total),
        }
    }

    /// Reads a TOML file; unknown keys are errors.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        settings::read(path, Self::validate)
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidArgument(m.into()));
        if self.d_model == 0 || self.heads == 0 || !self.d_model.is_multiple_of(self.heads) {
            return bad("d_model must be a positive multiple of heads");
        }
        if self.ff == 0 || self.history < 2 || self.epochs == 0 || self.batch_size == 0 {
            return bad("ff, epochs and batch_size must be positive and history at least 2");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout must be in [0, 1)");
        }
        if !(self.lr > 0.0 && self.temperature > 0.0) {
            return bad("lr and temperature must be positive");
        }
        Ok(())
    }

    fn shape(&self, layout: &SidLayout) -> ParallelShape {
        ParallelShape {
            positions: layout.levels(),
            vocab: layout.mask_bits(),
            d: self.d_model,
            heads: self.heads,
            layers: self.layers,
            ff: self.ff,
            history: self.history,
            dropout: self.dropout,
            temperature: self.temperature,
            items: if self.hybrid { self.items.max(1) } else { 0 },
            sid_output: self.sid_output,
            repeat_bias: self.repeat_bias,
        }
    }
}

/// A trained parallel retriever for one SID layout.
pub struct ParallelRetriever {
    cfg: ParallelConfig,
    layout: SidLayout,
    net: ParallelNet,
    /// [`ParallelNet::score_table`] (a hybrid's
    /// [`ParallelNet::unit_item_table`]) of the final weights (none while
    /// training).
    table: Option<Tensor>,
    /// The final weights for one-history passes (none while training).
    plain: Option<PlainNet>,
}

impl ParallelRetriever {
    fn build(cfg: ParallelConfig, layout: SidLayout, device: Device) -> Result<Self> {
        cfg.validate()?;
        let params = ParamStore::new(device, ChaCha8Rng::seed_from_u64(cfg.seed));
        let net = ParallelNet::new(cfg.shape(&layout), params)?;
        Ok(ParallelRetriever {
            cfg,
            layout,
            net,
            table: None,
            plain: None,
        })
    }

    /// The configuration trained with.
    pub fn config(&self) -> &ParallelConfig {
        &self.cfg
    }

    /// Mask columns of the semantic tokens of each SID, back to back.
    fn columns(&self, sids: &[&[Token]]) -> Vec<u32> {
        let (p, k) = (self.layout.levels(), self.layout.k() as usize);
        sids.iter()
            .flat_map(|s| s[..p].iter().map(move |&t| token_column(k, t) as u32))
            .collect()
    }

    /// Whether it is a hybrid (item ids in and out).
    pub fn is_hybrid(&self) -> bool {
        self.net.is_hybrid()
    }

    /// The learned repeat bias as a logit (one for a hybrid, one per
    /// position otherwise; empty without `repeat_bias`).
    pub fn repeat_bias(&self) -> Result<Vec<f32>> {
        Ok(match self.cfg.repeat_bias {
            true => repeat::as_logits(self.net.params().flat("repeat_bias")?, self.cfg.temperature),
            false => Vec::new(),
        })
    }

    /// Log-probabilities of the next item after each history (full SIDs,
    /// all of one length, most recent last, at most `history` items; a
    /// hybrid also reads the items' `ids`, one list per history): per
    /// position and token, or a hybrid's per item id.
    pub fn next_scores(
        &self,
        histories: &[Vec<&[Token]>],
        ids: &[Vec<ItemId>],
    ) -> Result<Vec<Vec<f32>>> {
        let Some(len) = histories.first().map(Vec::len) else {
            return Ok(Vec::new());
        };
        if len == 0 || len > self.cfg.history || histories.iter().any(|h| h.len() != len) {
            return Err(Error::InvalidArgument(format!(
                "histories must share one length in 1..={}",
                self.cfg.history
            )));
        }
        let flat: Vec<&[Token]> = histories.iter().flatten().copied().collect();
        let items: Vec<ItemId> = match self.is_hybrid() {
            true if ids.len() == histories.len() && ids.iter().all(|i| i.len() == len) => {
                ids.iter().flatten().copied().collect()
            }
            true => {
                return Err(Error::InvalidArgument(
                    "a hybrid needs each history's item ids".into(),
                ));
            }
            false => Vec::new(),
        };
        let columns = self.columns(&flat);
        let states = self.net.states(&columns, &items, histories.len(), len)?;
        let last = states
            .narrow(1, len - 1, 1)
            .and_then(|s| s.squeeze(1))
            .map_err(ml)?;
        let per = len * self.layout.levels();
        let seen: Vec<_> = (0..histories.len())
            .map(|i| {
                let ids = items.get(i * len..(i + 1) * len).unwrap_or(&[]);
                self.net.shape().seen(&columns[i * per..(i + 1) * per], ids)
            })
            .collect();
        self.net
            .log_probs(&last, self.table.as_ref(), &seen)?
            .to_vec2::<f32>()
            .map_err(ml)
    }

    /// The `k` best items after `history` (item ids of `view`, oldest
    /// first; the most recent `history` setting of them are read), those
    /// `keep` accepts when given. Exact: the threshold algorithm over the
    /// index's per-position postings (a hybrid scores every item id it
    /// has a row for).
    pub fn recommend(
        &self,
        view: &dyn SidIndex,
        history: &[ItemId],
        k: usize,
        keep: Option<&dyn Fn(ItemId) -> bool>,
    ) -> Result<Vec<Scored>> {
        let scores = self.history_scores(view, history)?;
        self.best(view, &scores, k, keep)
    }

    /// [`ParallelRetriever::next_scores`] of one history of items of
    /// `view` (oldest first, the most recent `history` setting read): what
    /// `recommend` ranks by. A trained retriever runs it in plain Rust on
    /// the calling thread (no tensor graph).
    pub fn history_scores(&self, view: &dyn SidIndex, history: &[ItemId]) -> Result<Vec<f32>> {
        let sids = held_sids(view, &self.layout, history, self.cfg.history)?;
        let recent = match self.is_hybrid() {
            true => history[history.len() - sids.len()..].to_vec(),
            false => Vec::new(),
        };
        Ok(match &self.plain {
            Some(plain) => plain.next_scores(&self.columns(&sids), &recent),
            None => self.next_scores(&[sids], &[recent])?.remove(0),
        })
    }

    /// The `k` best items of `view` (those `keep` accepts) by one history's
    /// [`ParallelRetriever::next_scores`].
    fn best(
        &self,
        view: &dyn SidIndex,
        scores: &[f32],
        k: usize,
        keep: Option<&dyn Fn(ItemId) -> bool>,
    ) -> Result<Vec<Scored>> {
        if self.is_hybrid() {
            let Some(held) = view.items(&[]) else {
                return Ok(Vec::new());
            };
            return Ok(best_of(scores, held, k, keep));
        }
        let scores = PositionScores::new(&self.layout, scores)?;
        Ok(top_k(view, &scores, k, keep).hits)
    }

    /// The blobs that store it in a database.
    pub fn to_blobs(&self) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(STORED.blobs(&self.cfg, self.net.params().to_bytes()?))
    }

    /// Loads the retriever stored in `db`, for SIDs of `layout`.
    pub fn from_blobs(
        db: &(impl BlobSource + ?Sized),
        layout: SidLayout,
        device: Device,
    ) -> Result<Self> {
        let (cfg, weights) = STORED.load(db, ParallelConfig::validate)?;
        Self::build(cfg, layout, device)?.with_weights(&weights)
    }

    /// Loads `weights` and keeps what scoring needs of them (the weights
    /// are fixed from here on).
    fn with_weights(mut self, weights: &[u8]) -> Result<Self> {
        self.net.params().load_bytes(weights)?;
        let table = match self.is_hybrid() {
            true => self.net.unit_item_table()?,
            false => self.net.score_table()?,
        };
        let items = Some(&table).filter(|_| self.is_hybrid());
        self.plain = Some(PlainNet::new(&self.net, items)?);
        self.table = Some(table);
        Ok(self)
    }

    fn device(&self) -> &Device {
        self.net.params().device()
    }

    /// `values` (`rows × cols`) as a tensor on the model's device.
    fn tensor(&self, values: Vec<u32>) -> Result<Tensor> {
        let n = values.len();
        Tensor::from_vec(values, n, self.device()).map_err(ml)
    }
}
