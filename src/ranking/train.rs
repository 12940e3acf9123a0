//! Training the DIN-style ranker on the protocol's training impressions,
//! early stopping on validation AUC, and its AUC/GAUC on the test step,
//! overall and by the popularity quartile of the user's test target.

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::features::{FeatureSet, ItemFeatures};
use super::metrics::{AucReport, Impression, auc_report};
use super::net::{DinNet, DinShape};
use super::protocol::{Example, Part, Protocol};
use crate::error::{Error, Result};
use crate::eval::{Split, popularity_quartiles, sequences};
use crate::nn::losses::bce_with_logits;
use crate::nn::params::ml;
use crate::nn::{EarlyStop, ParamStore};

/// Settings of a ranking run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RankConfig {
    /// Item representation.
    pub features: FeatureSet,
    /// The impressions.
    pub protocol: Protocol,
    /// Embedding width.
    pub d: usize,
    /// Epochs at most.
    pub epochs: usize,
    /// Impressions per step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Epochs without a better validation AUC before training stops.
    pub patience: usize,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
}

impl RankConfig {
    /// Defaults for `features` and the protocol: 1 negative per positive,
    /// the last 20 items, d = 64, ≤ 10 epochs, patience 2, seed 42.
    pub fn new(features: FeatureSet, negatives: usize) -> Self {
        RankConfig {
            features,
            protocol: Protocol {
                negatives,
                history: 20,
                seed: 42,
            },
            d: 64,
            epochs: 10,
            batch_size: 512,
            lr: 1e-3,
            weight_decay: 0.0,
            patience: 2,
            seed: 42,
        }
    }
}

/// Figures of one training epoch.
#[derive(Clone, Debug, Serialize)]
pub struct RankEpoch {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean binary cross-entropy.
    pub loss: f64,
    /// AUC on the validation impressions after the epoch.
    pub valid_auc: f64,
    /// Wall time.
    pub seconds: f64,
}

/// AUC and GAUC on the test step.
#[derive(Clone, Debug, Serialize)]
pub struct RankReport {
    /// Every test impression.
    pub overall: AucReport,
    /// By the popularity quartile (training interactions) of the user's
    /// test target, head (0) to tail (3); each user's negatives go with it.
    pub quartiles: Vec<AucReport>,
    /// The training epochs run (the best one's weights were scored).
    pub history: Vec<RankEpoch>,
    /// Training wall time.
    pub train_seconds: f64,
}

/// Trains a ranker on `seqs` (catalogue rows of `items`) and scores the
/// test step; `progress` sees each epoch.
pub fn rank_eval(
    cfg: &RankConfig,
    items: &ItemFeatures,
    seqs: &[Vec<u32>],
    device: Device,
    mut progress: impl FnMut(&RankEpoch),
) -> Result<RankReport> {
    let p = &cfg.protocol;
    let train = p.examples(seqs, items.rows(), Part::Train)?;
    let valid = p.examples(seqs, items.rows(), Part::Held(Split::Validation))?;
    let test = p.examples(seqs, items.rows(), Part::Held(Split::Test))?;
    if train.is_empty() {
        return Err(Error::InvalidArgument(
            "no training impressions: sequences need at least 4 items".into(),
        ));
    }
    let shape = DinShape {
        items: items.rows(),
        positions: items.positions,
        vocab: items.vocab,
        d: cfg.d,
        attention: 36,
        hidden: [80, 40],
        features: cfg.features,
    };
    let net = DinNet::new(
        shape,
        ParamStore::new(device, ChaCha8Rng::seed_from_u64(cfg.seed)),
    )?;
    let params = ParamsAdamW {
        lr: cfg.lr,
        weight_decay: cfg.weight_decay,
        ..Default::default()
    };
    let mut opt = AdamW::new(net.params().vars(), params).map_err(ml)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed);
    let mut batches = batches(&train, cfg.batch_size);
    let start = Instant::now();
    let (mut history, mut stop) = (Vec::new(), EarlyStop::new(cfg.patience));
    for epoch in 1..=cfg.epochs {
        let t = Instant::now();
        batches.shuffle(&mut rng);
        let mut total = 0f64;
        for batch in &batches {
            let loss = batch_loss(&net, &train, batch, items, seqs)?;
            opt.backward_step(&loss).map_err(ml)?;
            total += loss.to_scalar::<f32>().map_err(ml)? as f64;
        }
        let valid_auc = auc_report(&impressions(&net, &valid, items, seqs)?)
            .auc
            .unwrap_or(0.5);
        let e = RankEpoch {
            epoch,
            loss: total / batches.len() as f64,
            valid_auc,
            seconds: t.elapsed().as_secs_f64(),
        };
        progress(&e);
        history.push(e);
        if stop.record(valid_auc, net.params())? {
            break;
        }
    }
    let train_seconds = start.elapsed().as_secs_f64();
    net.params()
        .load_bytes(&stop.into_weights().expect("at least one epoch"))?;
    let scored = impressions(&net, &test, items, seqs)?;
    let quartile = popularity_quartiles(&sequences::training_counts(seqs, items.rows()));
    let mut by_quartile = vec![Vec::new(); 4];
    for (e, i) in test.iter().zip(&scored) {
        let target = seqs[e.user as usize][e.end as usize];
        by_quartile[quartile[target as usize] as usize].push(*i);
    }
    Ok(RankReport {
        overall: auc_report(&scored),
        quartiles: by_quartile.iter().map(|q| auc_report(q)).collect(),
        history,
        train_seconds,
    })
}

/// Mean binary cross-entropy of one batch of equal-length examples.
fn batch_loss(
    net: &DinNet,
    examples: &[Example],
    batch: &[usize],
    items: &ItemFeatures,
    seqs: &[Vec<u32>],
) -> Result<Tensor> {
    let (histories, candidates, len) = inputs(examples, batch, seqs);
    let logits = net.logits(&histories, &candidates, len, items)?;
    let labels: Vec<f32> = batch
        .iter()
        .map(|&i| f32::from(u8::from(examples[i].positive)))
        .collect();
    let labels = Tensor::from_vec(labels, batch.len(), logits.device()).map_err(ml)?;
    bce_with_logits(&logits, &labels)
}

/// Every example scored (in batches of one history length), as impressions.
fn impressions(
    net: &DinNet,
    examples: &[Example],
    items: &ItemFeatures,
    seqs: &[Vec<u32>],
) -> Result<Vec<Impression>> {
    let mut scores = vec![0f32; examples.len()];
    for batch in batches(examples, 2048) {
        let (histories, candidates, len) = inputs(examples, &batch, seqs);
        let logits: Vec<f32> = net
            .logits(&histories, &candidates, len, items)?
            .to_vec1()
            .map_err(ml)?;
        for (&i, s) in batch.iter().zip(logits) {
            scores[i] = s;
        }
    }
    Ok(examples
        .iter()
        .zip(scores)
        .map(|(e, score)| Impression {
            user: e.user,
            score,
            positive: e.positive,
        })
        .collect())
}

/// History rows, candidate rows and the shared history length of a batch.
fn inputs(examples: &[Example], batch: &[usize], seqs: &[Vec<u32>]) -> (Vec<u32>, Vec<u32>, usize) {
    let len = examples[batch[0]].len as usize;
    let histories = batch
        .iter()
        .flat_map(|&i| examples[i].history(seqs).iter().copied())
        .collect();
    let candidates = batch.iter().map(|&i| examples[i].candidate).collect();
    (histories, candidates, len)
}

/// Batches of at most `size` examples of one history length each.
fn batches(examples: &[Example], size: usize) -> Vec<Vec<usize>> {
    let mut by_len: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, e) in examples.iter().enumerate() {
        by_len.entry(e.len).or_default().push(i);
    }
    by_len
        .values()
        .flat_map(|g| g.chunks(size).map(<[usize]>::to_vec))
        .collect()
}
