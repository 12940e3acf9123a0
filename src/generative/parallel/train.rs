//! Training the parallel retriever (every position of every training
//! sequence predicts the next item's semantic tokens), choosing the epoch by
//! validation NDCG@10, and leave-one-out evaluation through exact top-k.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::net::Seen;
use super::{ParallelConfig, ParallelRetriever};
use crate::error::{Error, Result};
use crate::eval::{Accumulator, Split, rank_of};
use crate::generative::corpus::{Case, Excluded};
use crate::generative::evaluate::report;
use crate::generative::{Corpus, GEN_CUTOFFS, GenReport};
use crate::index::{ItemId, SidIndex};
use crate::nn::EarlyStop;
use crate::nn::params::ml;
use crate::sid::Token;

/// Figures of one training epoch.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ParallelEpoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean cross-entropy per position and predicted item.
    pub loss: f64,
    /// NDCG@10 on the validation sample after the epoch.
    pub valid_ndcg10: f64,
    /// Wall time, validation included.
    pub seconds: f64,
}

impl ParallelRetriever {
    /// Trains on `corpus` (SIDs of `view`, whose layout it learns); after
    /// each epoch `progress` sees its figures. Returns the weights of the
    /// epoch with the best validation NDCG@10.
    pub fn train(
        cfg: ParallelConfig,
        view: &dyn SidIndex,
        corpus: &Corpus,
        device: Device,
        mut progress: impl FnMut(&ParallelEpoch),
    ) -> Result<(ParallelRetriever, Vec<ParallelEpoch>)> {
        let mut cfg = cfg;
        if cfg.hybrid {
            cfg.items = corpus
                .ids
                .iter()
                .flatten()
                .max()
                .map_or(0, |&i| i as usize + 1);
        }
        let model = ParallelRetriever::build(cfg, *view.layout(), device)?;
        if model.cfg.sid_output {
            model.net.set_item_sids(&model.id_columns(view))?;
        }
        let seqs = model.training_sequences(corpus);
        if seqs.is_empty() {
            return Err(Error::InvalidArgument(
                "no training sequences: users need at least 4 stored items".into(),
            ));
        }
        let cfg = &model.cfg;
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed);
        let (mut valid, _) = corpus.cases(Split::Validation, cfg.history);
        valid.shuffle(&mut rng);
        valid.truncate(cfg.valid_users);
        let params = ParamsAdamW {
            lr: cfg.lr,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        };
        let mut opt = AdamW::new(model.net.params().vars(), params).map_err(ml)?;
        let mut batches = batches(&seqs, cfg.batch_size);
        let (planned, mut step) = (cfg.epochs * batches.len(), 0);
        let (mut history, mut stop) = (Vec::new(), EarlyStop::new(cfg.patience));
        for epoch in 1..=cfg.epochs {
            let start = Instant::now();
            batches.shuffle(&mut rng);
            model
                .net
                .set_training(Some(cfg.seed ^ 0xd209 ^ epoch as u64));
            let (mut total, mut steps) = (0f64, 0usize);
            for batch in &batches {
                step += 1;
                opt.set_learning_rate(cfg.lr_at(step, planned));
                let loss = model.loss(corpus, &seqs, batch)?;
                opt.backward_step(&loss).map_err(ml)?;
                total += loss.to_scalar::<f32>().map_err(ml)? as f64;
                steps += 1;
            }
            model.net.set_training(None);
            let ranks = model.ranks(view, corpus, &valid, 10, false)?;
            let mut acc = Accumulator::new(&[10]);
            ranks.into_iter().for_each(|r| acc.add(r));
            let e = ParallelEpoch {
                epoch,
                loss: total / steps.max(1) as f64,
                valid_ndcg10: acc.finish().ndcg[0],
                seconds: start.elapsed().as_secs_f64(),
            };
            progress(&e);
            let done = stop.record(e.valid_ndcg10, model.net.params())?;
            history.push(e);
            if done {
                break;
            }
        }
        let best = stop.into_weights().expect("at least one epoch");
        Ok((model.with_weights(&best)?, history))
    }

    /// The semantic mask columns of ids `0..items` in `view` (an id it does
    /// not hold reads as masked at every position).
    fn id_columns(&self, view: &dyn SidIndex) -> Vec<u32> {
        let (p, k) = (self.layout.levels(), self.layout.k() as usize);
        (0..self.cfg.items as ItemId)
            .flat_map(|id| match view.sid(id) {
                Some((sid, _)) => self.columns(&[sid]),
                None => vec![k as u32; p],
            })
            .collect()
    }

    /// Each user's stored training items (all but the last two), the most
    /// recent `history + 1` of them, when there are at least two.
    fn training_sequences(&self, corpus: &Corpus) -> Vec<Vec<u32>> {
        corpus
            .sequences
            .iter()
            .filter_map(|s| {
                let known = corpus.recent(&s[..s.len().saturating_sub(2)], self.cfg.history + 1);
                (known.len() >= 2).then_some(known)
            })
            .collect()
    }

    /// Summed-over-positions cross-entropy of the next item at every step of
    /// a batch of equal-length sequences, averaged over positions and steps
    /// (a hybrid's: the cross-entropy of the next item's id).
    fn loss(&self, corpus: &Corpus, seqs: &[Vec<u32>], batch: &[usize]) -> Result<Tensor> {
        let len = seqs[batch[0]].len();
        let rows_of = |range: std::ops::Range<usize>| -> Vec<u32> {
            batch
                .iter()
                .flat_map(|&b| seqs[b][range.clone()].iter().copied())
                .collect()
        };
        let (inputs, targets) = (rows_of(0..len - 1), rows_of(1..len));
        let rows = inputs.len();
        let ids = match self.is_hybrid() {
            true => corpus.history_ids(&inputs),
            false => Vec::new(),
        };
        let columns = self.columns(&corpus.history_sids(&inputs));
        let h = self
            .net
            .states(&columns, &ids, batch.len(), len - 1)?
            .reshape((rows, self.cfg.d_model))
            .map_err(ml)?;
        let seen = self.seen_so_far(&columns, &ids, len - 1);
        if self.is_hybrid() {
            let target = self.tensor(corpus.history_ids(&targets))?;
            let logits = self.net.item_logits(&h, None)?;
            let logits = self.net.add_repeats(logits, &seen, None)?;
            return crate::nn::cross_entropy(&logits, &target);
        }
        let p = self.layout.levels();
        let cols = self.columns(&corpus.history_sids(&targets));
        let mut total: Option<Tensor> = None;
        for pos in 0..p {
            let target = self.tensor((0..rows).map(|r| cols[r * p + pos]).collect())?;
            let logits = self
                .net
                .add_repeats(self.net.logits(&h, pos)?, &seen, Some(pos))?;
            let ce = crate::nn::cross_entropy(&logits, &target)?;
            total = Some(match total {
                Some(t) => (t + ce).map_err(ml)?,
                None => ce,
            });
        }
        (total.expect("at least one position") / p as f64).map_err(ml)
    }

    /// Each training row's history so far ([`super::net::Seen`]): row `t` of
    /// a sequence has seen its items `0..=t`. `columns` (the inputs' mask
    /// columns, `positions` per item) and `ids` (a hybrid's) hold sequences
    /// of `len` items back to back; empty rows without a repeat bias.
    fn seen_so_far(&self, columns: &[u32], ids: &[ItemId], len: usize) -> Vec<Seen> {
        let shape = self.net.shape();
        if !shape.repeat_bias {
            return Vec::new();
        }
        let p = self.layout.levels();
        (0..columns.len() / p)
            .map(|r| {
                let (s, t) = (r / len * len, r % len);
                let ids = ids.get(s..=s + t).unwrap_or(&[]);
                shape.seen(&columns[s * p..(s + t + 1) * p], ids)
            })
            .collect()
    }

    /// The 1-based rank of each case's target among the top `k` (users of
    /// one history length scored in one pass); `exclude_history` leaves the
    /// user's own history items out of the ranking.
    fn ranks(
        &self,
        view: &dyn SidIndex,
        corpus: &Corpus,
        cases: &[Case],
        k: usize,
        exclude_history: bool,
    ) -> Result<Vec<Option<usize>>> {
        let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, c) in cases.iter().enumerate() {
            by_len.entry(c.history.len()).or_default().push(i);
        }
        let mut ranks = vec![None; cases.len()];
        for group in by_len.values() {
            for chunk in group.chunks(256) {
                let histories: Vec<Vec<&[Token]>> = chunk
                    .iter()
                    .map(|&i| corpus.history_sids(&cases[i].history))
                    .collect();
                let ids: Vec<Vec<ItemId>> = chunk
                    .iter()
                    .map(|&i| corpus.history_ids(&cases[i].history))
                    .collect();
                let scores = self.next_scores(&histories, &ids)?;
                for ((&i, s), history) in chunk.iter().zip(&scores).zip(&ids) {
                    let seen = Excluded::history(history, exclude_history);
                    let keep = |id: ItemId| seen.keeps(id);
                    let hits = self.best(view, s, k, Some(&keep))?;
                    let ranking: Vec<ItemId> = hits.iter().map(|h| h.item).collect();
                    ranks[i] = rank_of(&ranking, &cases[i].id);
                }
            }
        }
        Ok(ranks)
    }

    /// Leave-one-out Recall/NDCG at [`GEN_CUTOFFS`], overall and by the
    /// target's popularity quartile; `users` caps how many are scored.
    pub fn evaluate(
        &self,
        view: &dyn SidIndex,
        corpus: &Corpus,
        split: Split,
        users: Option<usize>,
        exclude_history: bool,
    ) -> Result<GenReport> {
        let start = Instant::now();
        let (mut all, skipped) = corpus.cases(split, self.cfg.history);
        all.truncate(users.unwrap_or(usize::MAX));
        let depth = *GEN_CUTOFFS.last().expect("cutoffs");
        let ranks = self.ranks(view, corpus, &all, depth, exclude_history)?;
        Ok(report(corpus, &all, &ranks, (depth, skipped), start))
    }
}

/// Batches of at most `size` sequences of one length each (no padding).
fn batches(seqs: &[Vec<u32>], size: usize) -> Vec<Vec<usize>> {
    let mut by_len: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, s) in seqs.iter().enumerate() {
        by_len.entry(s.len()).or_default().push(i);
    }
    by_len
        .values()
        .flat_map(|group| group.chunks(size).map(<[usize]>::to_vec))
        .collect()
}
