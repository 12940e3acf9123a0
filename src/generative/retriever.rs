//! The generative retriever: training on user sequences, leave-one-out
//! evaluation with trie-constrained beam search, and storage as blobs.

use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::net::{GenNet, GenShape, token_id};
use crate::blobs::BlobSource;
use crate::decode::{BeamSearch, Precomputed};
use crate::error::{Error, Result};
use crate::eval::{Accumulator, RankMetrics, Split, popularity_quartiles, rank_of, sequences};
use crate::index::ItemId;
use crate::model::ParamStore;
use crate::model::params::ml;
use crate::sid::{SidLayout, Token};
use crate::view::ReadView;

/// Blob names of a stored retriever.
pub mod blobs {
    /// Its configuration (TOML).
    pub const CONFIG: &str = "generative/config";
    /// Its weights (safetensors).
    pub const WEIGHTS: &str = "generative/weights";
}

/// Settings of the generative retriever (TOML, every field optional).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenConfig {
    /// Model width.
    pub d_model: usize,
    /// Attention heads.
    pub heads: usize,
    /// Encoder blocks.
    pub encoder_layers: usize,
    /// Decoder blocks.
    pub decoder_layers: usize,
    /// Feed-forward width.
    pub ff: usize,
    /// Most recent items read per user.
    pub history: usize,
    /// Training epochs.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
    /// Dropout rate of embeddings and sublayer outputs while training.
    pub dropout: f32,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            d_model: 64,
            heads: 2,
            encoder_layers: 2,
            decoder_layers: 2,
            ff: 256,
            history: 20,
            epochs: 10,
            batch_size: 256,
            lr: 1e-3,
            weight_decay: 0.01,
            seed: 42,
            dropout: 0.0,
        }
    }
}

impl GenConfig {
    /// Reads a TOML file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Self> {
        let cfg: Self = crate::tokenizer::config::read_toml(path)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::InvalidArgument(m.into()));
        if self.d_model == 0 || self.heads == 0 || !self.d_model.is_multiple_of(self.heads) {
            return bad("d_model must be a positive multiple of heads");
        }
        if self.ff == 0 || self.history == 0 || self.epochs == 0 || self.batch_size == 0 {
            return bad("ff, history, epochs and batch_size must be positive");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout must be in [0, 1)");
        }
        if !(self.lr > 0.0) {
            return bad("lr must be positive");
        }
        Ok(())
    }

    fn shape(&self, layout: &SidLayout) -> GenShape {
        GenShape {
            steps: layout.full_len(),
            vocab: layout.mask_bits(),
            d: self.d_model,
            heads: self.heads,
            encoder_layers: self.encoder_layers,
            decoder_layers: self.decoder_layers,
            ff: self.ff,
            history: self.history,
            dropout: self.dropout,
        }
    }
}

/// Sequences expressed as full SIDs: what the retriever reads.
pub struct Corpus {
    /// Full SID of each catalogue row stored in the database.
    pub sids: Vec<Option<Vec<Token>>>,
    /// Database id of each catalogue row.
    pub ids: Vec<Option<ItemId>>,
    /// User sequences of catalogue rows.
    pub sequences: Vec<Vec<u32>>,
}

impl Corpus {
    /// Looks up every catalogue key in `state`.
    pub fn new(state: &dyn ReadView, keys: &[String], sequences: Vec<Vec<u32>>) -> Corpus {
        let ids: Vec<Option<ItemId>> = keys.iter().map(|k| state.id(k).ok()).collect();
        let sids = ids
            .iter()
            .map(|id| id.and_then(|i| state.sid(i)).map(|(s, _)| s.to_vec()))
            .collect();
        Corpus {
            sids,
            ids,
            sequences,
        }
    }

    /// Training examples: every item of every training part (all but the
    /// last two items) after the first, with up to `history` items before it.
    fn training_examples(&self, history: usize) -> Vec<(Vec<u32>, u32)> {
        let mut out = Vec::new();
        for s in &self.sequences {
            let known: Vec<u32> = s[..s.len().saturating_sub(2)]
                .iter()
                .copied()
                .filter(|&r| self.sids[r as usize].is_some())
                .collect();
            for t in 1..known.len() {
                out.push((known[t.saturating_sub(history)..t].to_vec(), known[t]));
            }
        }
        out
    }

    /// The last `history` stored items of `rows`.
    fn recent(&self, rows: &[u32], history: usize) -> Vec<u32> {
        let known: Vec<u32> = rows
            .iter()
            .copied()
            .filter(|&r| self.sids[r as usize].is_some())
            .collect();
        known[known.len().saturating_sub(history)..].to_vec()
    }
}

/// Figures of one training epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenEpoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean cross-entropy per SID token.
    pub loss: f64,
    /// Wall time.
    pub seconds: f64,
}

/// Leave-one-out figures of the retriever.
#[derive(Clone, Debug, Serialize)]
pub struct GenReport {
    /// Beam width.
    pub beams: usize,
    /// All users with a target.
    pub overall: RankMetrics,
    /// By the target's popularity quartile, head (0) to tail (3).
    pub quartiles: Vec<RankMetrics>,
    /// Users left out: no stored history item or target not stored.
    pub skipped: usize,
    /// Wall time of the evaluation.
    pub seconds: f64,
}

/// The cutoffs `gen-eval` reports.
pub const GEN_CUTOFFS: [usize; 4] = [5, 10, 50, 100];

/// A trained generative retriever for one SID layout.
pub struct GenRetriever {
    cfg: GenConfig,
    net: GenNet,
}

/// A token's output column in a vocabulary of `vocab = K + 1` columns.
fn column(vocab: usize, t: Token) -> usize {
    crate::sid::token_column(vocab - 1, t)
}

impl GenRetriever {
    fn build(cfg: GenConfig, layout: &SidLayout, device: Device) -> Result<GenRetriever> {
        cfg.validate()?;
        let params = ParamStore::new(device, ChaCha8Rng::seed_from_u64(cfg.seed));
        let net = GenNet::new(cfg.shape(layout), params)?;
        Ok(GenRetriever { cfg, net })
    }

    /// The configuration trained with.
    pub fn config(&self) -> &GenConfig {
        &self.cfg
    }

    /// Encoder inputs for a batch of histories, left-padded to the longest.
    fn histories(&self, corpus: &Corpus, batch: &[&[u32]]) -> (Vec<u32>, Vec<bool>, usize) {
        let shape = self.net.shape();
        let len = batch.iter().map(|h| h.len()).max().unwrap_or(1).max(1);
        let mut ids = Vec::with_capacity(batch.len() * len * shape.steps);
        let mut valid = Vec::with_capacity(batch.len() * len);
        for h in batch {
            for p in 0..len {
                let pad = len - h.len();
                match p.checked_sub(pad) {
                    Some(i) => {
                        let sid = corpus.sids[h[i] as usize].as_ref().expect("stored item");
                        ids.extend(
                            sid.iter()
                                .enumerate()
                                .map(|(s, &t)| token_id(shape, s, column(shape.vocab, t))),
                        );
                        valid.push(true);
                    }
                    None => {
                        ids.extend(std::iter::repeat_n(0, shape.steps));
                        valid.push(false);
                    }
                }
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
        layout: &SidLayout,
        corpus: &Corpus,
        device: Device,
        mut progress: impl FnMut(&GenEpoch),
    ) -> Result<(GenRetriever, Vec<GenEpoch>)> {
        let model = GenRetriever::build(cfg, layout, device)?;
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
        let mut history = Vec::new();
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
            let e = GenEpoch {
                epoch,
                loss: total / steps.max(1) as f64,
                seconds: start.elapsed().as_secs_f64(),
            };
            progress(&e);
            history.push(e);
        }
        model.net.set_training(None);
        Ok((model, history))
    }

    /// Mean cross-entropy over the SID tokens of a batch of examples.
    fn loss(
        &self,
        corpus: &Corpus,
        examples: &[(Vec<u32>, u32)],
        chunk: &[usize],
    ) -> Result<Tensor> {
        let shape = *self.net.shape();
        let hist: Vec<&[u32]> = chunk.iter().map(|&i| &examples[i].0[..]).collect();
        let (ids, valid, len) = self.histories(corpus, &hist);
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
            let ce = candle_nn::loss::cross_entropy(&self.net.logits(&states, s)?, &target)
                .map_err(ml)?;
            total = Some(match total {
                Some(t) => (t + ce).map_err(ml)?,
                None => ce,
            });
        }
        (total.expect("at least one step") / shape.steps as f64).map_err(ml)
    }

    /// Leave-one-out evaluation: each user's held-out item among the
    /// `beams` SIDs decoded from the user's history. Users are decoded in
    /// groups, in lockstep: one model call per step serves every beam of
    /// every user in the group. `users` caps how many users are scored.
    pub fn evaluate(
        &self,
        state: &dyn ReadView,
        corpus: &Corpus,
        split: Split,
        beams: usize,
        users: Option<usize>,
    ) -> Result<GenReport> {
        const GROUP: usize = 8;
        let start = Instant::now();
        let counts = sequences::training_counts(&corpus.sequences, corpus.sids.len());
        let quartiles = popularity_quartiles(&counts);
        let mut overall = Accumulator::new(&GEN_CUTOFFS);
        let mut by_quartile = vec![overall.clone(); 4];
        let mut skipped = 0;
        let mut cases: Vec<(Vec<u32>, u32, ItemId)> = Vec::new();
        for s in &corpus.sequences {
            let Some((history, target)) = split.cut(s) else {
                continue;
            };
            let recent = corpus.recent(history, self.cfg.history);
            match corpus.ids[target as usize] {
                Some(id) if !recent.is_empty() => cases.push((recent, target, id)),
                _ => skipped += 1,
            }
        }
        cases.truncate(users.unwrap_or(usize::MAX));
        let layout = *state.layout();
        let mut searches: Vec<BeamSearch> = (0..GROUP)
            .map(|_| BeamSearch::new(layout, beams))
            .collect::<Result<_>>()?;
        for group in cases.chunks(GROUP) {
            let hits = self.decode_group(state, corpus, group, &mut searches[..group.len()])?;
            for ((_, target, id), hits) in group.iter().zip(hits) {
                let ranking: Vec<ItemId> = hits.iter().map(|h| h.item).collect();
                let rank = rank_of(&ranking, id);
                overall.add(rank);
                by_quartile[quartiles[*target as usize] as usize].add(rank);
            }
        }
        Ok(GenReport {
            beams,
            overall: overall.finish(),
            quartiles: by_quartile.iter().map(|q| q.finish()).collect(),
            skipped,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Beam-searches a group of users in lockstep.
    fn decode_group(
        &self,
        state: &dyn ReadView,
        corpus: &Corpus,
        group: &[(Vec<u32>, u32, ItemId)],
        searches: &mut [BeamSearch],
    ) -> Result<Vec<Vec<crate::decode::Hit>>> {
        let net = &self.net;
        let shape = *net.shape();
        let histories: Vec<&[u32]> = group.iter().map(|c| &c.0[..]).collect();
        let (ids, valid, len) = self.histories(corpus, &histories);
        let (memory, mask) = net.encode(&ids, &valid, group.len(), len)?;
        searches.iter_mut().for_each(|s| s.start());
        // Every user gets `width` decoder rows (unused ones are padding), so
        // rows of one user share one memory row.
        let width = searches.first().map_or(0, |s| s.width());
        let rows = group.len() * width;
        let mut cache = net.start_decoding(&memory)?;
        let mut tokens = Vec::with_capacity(rows);
        let mut parents = Vec::with_capacity(rows);
        for depth in 0..shape.steps {
            // Each row feeds the token its beam wrote last (padding rows: any).
            tokens.clear();
            for s in searches.iter() {
                for b in 0..width {
                    tokens.push(match depth {
                        0 => net.start_id(),
                        _ if b < s.beams() => {
                            let t = s.prefixes()[b * depth + depth - 1];
                            token_id(&shape, depth - 1, column(shape.vocab, t))
                        }
                        _ => 0,
                    });
                }
            }
            let logp: Vec<f32> = net
                .decode_next(&mut cache, mask.as_ref(), &tokens, depth, width)?
                .flatten_all()
                .and_then(|t| t.to_vec1())
                .map_err(ml)?;
            parents.clear();
            for (u, s) in searches.iter_mut().enumerate() {
                let offset = u * width * shape.vocab;
                let mut given = Precomputed(&logp[offset..offset + s.beams() * shape.vocab]);
                s.step(
                    Some(state as &dyn crate::index::SidIndex),
                    &mut given,
                    depth,
                )?;
                let base = (u * width) as u32;
                parents.extend(s.parents().map(|p| base + p as u32));
                parents.resize((u + 1) * width, base);
            }
            cache.reorder(&parents)?;
        }
        searches.iter().map(|s| s.finish(state)).collect()
    }

    /// The blobs that store it in a database.
    pub fn to_blobs(&self) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(vec![
            (
                blobs::CONFIG.to_string(),
                toml::to_string(&self.cfg)
                    .expect("config serialises")
                    .into_bytes(),
            ),
            (blobs::WEIGHTS.to_string(), self.net.params().to_bytes()?),
        ])
    }

    /// Loads the retriever stored in `db`.
    pub fn from_blobs(
        db: &(impl BlobSource + ?Sized),
        layout: SidLayout,
        device: Device,
    ) -> Result<GenRetriever> {
        let missing = |name: &str| {
            Error::InvalidArgument(format!(
                "{} holds no generative retriever (missing '{name}'); run `adasid gen-train` first",
                db.describe()
            ))
        };
        let text = db
            .blob(blobs::CONFIG)?
            .ok_or_else(|| missing(blobs::CONFIG))?;
        let text =
            String::from_utf8(text).map_err(|_| Error::corruption(blobs::CONFIG, "not UTF-8"))?;
        let cfg: GenConfig = crate::tokenizer::config::parse_toml(blobs::CONFIG, &text)?;
        let model = GenRetriever::build(cfg, &layout, device)?;
        let weights = db
            .blob(blobs::WEIGHTS)?
            .ok_or_else(|| missing(blobs::WEIGHTS))?;
        model.net.params().load_bytes(&weights)?;
        Ok(model)
    }
}
