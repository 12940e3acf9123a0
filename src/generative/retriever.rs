//! The generative retriever: training on user sequences and storage as
//! blobs (its evaluation is in `evaluate`).

use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::config::GenConfig;
use super::corpus::Corpus;
use super::net::{GenNet, token_id};
use super::stored::Stored;
use crate::blobs::BlobSource;
use crate::error::{Error, Result};
use crate::eval::Split;
use crate::nn::params::ml;
use crate::nn::{EarlyStop, ParamStore};
use crate::sid::{SidLayout, Token};
use crate::view::ReadView;

/// Blob names of a stored retriever.
pub mod blobs {
    /// Its configuration (TOML).
    pub const CONFIG: &str = "generative/config";
    /// Its weights (safetensors).
    pub const WEIGHTS: &str = "generative/weights";
}

const STORED: Stored = Stored {
    config: blobs::CONFIG,
    weights: blobs::WEIGHTS,
    what: "generative retriever",
    trained_by: "adasid gen-train",
    older: &[],
};

/// Beam width of the per-epoch validation (enough for NDCG@10).
const VALID_BEAMS: usize = 20;

/// Figures of one training epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenEpoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean cross-entropy per SID token.
    pub loss: f64,
    /// NDCG@10 of the validation users after the epoch (none without validation).
    pub valid_ndcg10: Option<f64>,
    /// Wall time.
    pub seconds: f64,
}

/// A trained generative retriever for one SID layout.
pub struct GenRetriever {
    pub(super) cfg: GenConfig,
    /// The SID layout it was trained for.
    pub(super) layout: SidLayout,
    pub(super) net: GenNet,
}

/// A token's output column in a vocabulary of `vocab = K + 1` columns.
pub(super) fn column(vocab: usize, t: Token) -> usize {
    crate::sid::token_column(vocab - 1, t)
}

impl GenRetriever {
    fn build(cfg: GenConfig, layout: &SidLayout, device: Device) -> Result<GenRetriever> {
        cfg.validate()?;
        let params = ParamStore::new(device, ChaCha8Rng::seed_from_u64(cfg.seed));
        let net = GenNet::new(cfg.shape(layout), params)?;
        Ok(GenRetriever {
            cfg,
            layout: *layout,
            net,
        })
    }

    /// The configuration trained with.
    pub fn config(&self) -> &GenConfig {
        &self.cfg
    }

    /// Encoder inputs for a batch of histories (each a list of full SIDs,
    /// oldest first), left-padded to the longest.
    pub(super) fn histories(&self, batch: &[Vec<&[Token]>]) -> (Vec<u32>, Vec<bool>, usize) {
        let shape = self.net.shape();
        let len = batch.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let mut ids = Vec::with_capacity(batch.len() * len * shape.steps);
        let mut valid = Vec::with_capacity(batch.len() * len);
        for h in batch {
            let pad = len - h.len();
            ids.extend(std::iter::repeat_n(0, pad * shape.steps));
            valid.extend(std::iter::repeat_n(false, pad));
            for sid in h {
                ids.extend(
                    sid.iter()
                        .enumerate()
                        .map(|(s, &t)| token_id(shape, s, column(shape.vocab, t))),
                );
                valid.push(true);
            }
        }
        (ids, valid, len)
    }

    /// Decoder inputs (start token, then the SID's tokens but the last) and
    /// the target columns, for full SIDs.
    fn targets(&self, sids: &[&[Token]]) -> (Vec<u32>, Vec<Vec<u32>>) {
        let shape = self.net.shape();
        let mut inputs = Vec::with_capacity(sids.len() * shape.steps);
        let mut columns = vec![Vec::with_capacity(sids.len()); shape.steps];
        for sid in sids {
            inputs.push(self.net.start_id());
            for (s, &t) in sid.iter().enumerate() {
                let c = column(shape.vocab, t);
                if s + 1 < shape.steps {
                    inputs.push(token_id(shape, s, c));
                }
                columns[s].push(c as u32);
            }
        }
        (inputs, columns)
    }

    /// Trains on `corpus`; `progress` sees each epoch's figures.
    pub fn train(
        cfg: GenConfig,
        view: &dyn ReadView,
        corpus: &Corpus,
        device: Device,
        mut progress: impl FnMut(&GenEpoch),
    ) -> Result<(GenRetriever, Vec<GenEpoch>)> {
        let model = GenRetriever::build(cfg, view.layout(), device)?;
        let examples = corpus.training_examples(model.cfg.history);
        if examples.is_empty() {
            return Err(Error::InvalidArgument(
                "no training examples: sequences need at least 4 stored items".into(),
            ));
        }
        let params = ParamsAdamW {
            lr: model.cfg.lr,
            weight_decay: model.cfg.weight_decay,
            ..Default::default()
        };
        let mut opt = AdamW::new(model.net.params().vars(), params).map_err(ml)?;
        let mut rng = ChaCha8Rng::seed_from_u64(model.cfg.seed ^ 0x5eed);
        model.net.set_training(Some(model.cfg.seed ^ 0xd209));
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut history: Vec<GenEpoch> = Vec::new();
        let mut stop = EarlyStop::new(model.cfg.patience);
        for epoch in 1..=model.cfg.epochs {
            let start = Instant::now();
            // Batches of equal history length (bucketed, like SASRec's
            // training): no padding, in a random order each epoch.
            order.shuffle(&mut rng);
            order.sort_by_key(|&i| examples[i].0.len());
            let mut batches: Vec<&[usize]> = order.chunks(model.cfg.batch_size).collect();
            batches.shuffle(&mut rng);
            let (mut total, mut steps) = (0f64, 0usize);
            for chunk in batches {
                let loss = model.loss(corpus, &examples, chunk)?;
                opt.backward_step(&loss).map_err(ml)?;
                total += loss.to_scalar::<f32>().map_err(ml)? as f64;
                steps += 1;
            }
            let valid_ndcg10 = model.validate(view, corpus, epoch)?;
            let e = GenEpoch {
                epoch,
                loss: total / steps.max(1) as f64,
                valid_ndcg10,
                seconds: start.elapsed().as_secs_f64(),
            };
            progress(&e);
            history.push(e);
            let Some(v) = valid_ndcg10 else { continue };
            if stop.record(v, model.net.params())? {
                break;
            }
        }
        model.net.set_training(None);
        if let Some(weights) = stop.into_weights() {
            model.net.params().load_bytes(&weights)?;
        }
        Ok((model, history))
    }

    /// Validation NDCG@10 of the first `valid_users` users (dropout off
    /// while decoding, then re-armed for the next epoch), or `None` when
    /// validation is off.
    fn validate(&self, view: &dyn ReadView, corpus: &Corpus, epoch: usize) -> Result<Option<f64>> {
        if self.cfg.valid_users == 0 {
            return Ok(None);
        }
        self.net.set_training(None);
        let users = Some(self.cfg.valid_users);
        let r = self.evaluate(view, corpus, Split::Validation, VALID_BEAMS, (users, false))?;
        self.net
            .set_training(Some(self.cfg.seed ^ 0xd209 ^ epoch as u64));
        Ok(Some(r.overall.ndcg[1]))
    }

    /// Mean cross-entropy over the SID tokens of a batch of examples.
    fn loss(
        &self,
        corpus: &Corpus,
        examples: &[(Vec<u32>, u32)],
        chunk: &[usize],
    ) -> Result<Tensor> {
        let shape = *self.net.shape();
        let hist: Vec<Vec<&[Token]>> = chunk
            .iter()
            .map(|&i| corpus.history_sids(&examples[i].0))
            .collect();
        let (ids, valid, len) = self.histories(&hist);
        let (memory, mask) = self.net.encode(&ids, &valid, chunk.len(), len)?;
        let sids: Vec<&[Token]> = chunk
            .iter()
            .map(|&i| {
                &corpus.sids[examples[i].1 as usize]
                    .as_ref()
                    .expect("stored item")[..]
            })
            .collect();
        let (inputs, columns) = self.targets(&sids);
        let states = self.net.decode(
            &memory,
            mask.as_ref(),
            &inputs,
            (chunk.len(), shape.steps, 1),
        )?;
        let mut total: Option<Tensor> = None;
        for (s, cols) in columns.into_iter().enumerate() {
            let target = Tensor::from_vec(cols, chunk.len(), memory.device()).map_err(ml)?;
            let ce = crate::nn::cross_entropy(&self.net.logits(&states, s)?, &target)?;
            total = Some(match total {
                Some(t) => (t + ce).map_err(ml)?,
                None => ce,
            });
        }
        (total.expect("at least one step") / shape.steps as f64).map_err(ml)
    }

    /// The blobs that store it in a database.
    pub fn to_blobs(&self) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(STORED.blobs(&self.cfg, self.net.params().to_bytes()?))
    }

    /// Loads the retriever stored in `db`.
    pub fn from_blobs(
        db: &(impl BlobSource + ?Sized),
        layout: SidLayout,
        device: Device,
    ) -> Result<GenRetriever> {
        let (cfg, weights) = STORED.load(db, GenConfig::validate)?;
        let model = GenRetriever::build(cfg, &layout, device)?;
        model.net.params().load_bytes(&weights)?;
        Ok(model)
    }
}
