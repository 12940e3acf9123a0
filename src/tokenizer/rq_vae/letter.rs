//! LETTER's two regularisers on top of the RQ-VAE (Wang et al., CIKM 2024;
//! as its public code computes them):
//!
//! - **Collaborative**: InfoNCE over the batch between each item's
//!   quantised latent (the straight-through sum of its codes, so the
//!   gradient reaches the encoder) and its behavior embedding, dot-product
//!   logits at temperature 1, the other items of the batch as negatives.
//!   LETTER's latent and CF widths are equal (32); here a learned linear map
//!   takes the latent to the behavior width first, used in training only.
//! - **Diversity**: at the start of every epoch each level's codes are
//!   clustered (k-means, 10 clusters; LETTER uses size-constrained
//!   k-means); each item's chosen code at each level is then pulled towards
//!   a random other code of its cluster and pushed from every other code
//!   (cross-entropy over the level's codes, dot products, itself masked),
//!   averaged over levels.
//!
//! LETTER's Sinkhorn assignment on the last level (its collision remedy) is
//! not adopted: adasid's disambiguation token tells colliding items apart.

use candle_core::{Device, Tensor, Var};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::config::RqVaeConfig;
use super::net::{Net, Quantized};
use crate::data::embeddings::Dataset;
use crate::error::{Error, Result};
use crate::kmeans::{EuclideanParams, nearest, train_euclidean};
use crate::nn::ParamStore;
use crate::nn::params::{Linear, ml};

/// Clusters each level's codes form for the diversity loss (LETTER's).
const CLUSTERS: usize = 10;

/// The regularisers' state while training.
pub(super) struct Letter {
    collaborative: f64,
    diversity: f64,
    /// Latent → behavior width (training only, never stored).
    project: Linear,
    projection: ParamStore,
    behavior: (Vec<f32>, usize),
    /// Per level: the cluster of every code, and every cluster's codes.
    clusters: Vec<(Vec<u32>, Vec<Vec<u32>>)>,
}

impl Letter {
    /// The regularisers `cfg` asks for (none when both weights are 0).
    pub(super) fn new(cfg: &RqVaeConfig, data: &Dataset, device: Device) -> Result<Option<Self>> {
        if cfg.collaborative == 0.0 && cfg.diversity == 0.0 {
            return Ok(None);
        }
        let b = &data.behavior;
        if b.rows != data.len() || b.dim == 0 {
            return Err(Error::InvalidArgument(
                "LETTER's collaborative loss needs a behavior embedding per item".into(),
            ));
        }
        let mut projection = ParamStore::new(device, ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x1e77));
        let project = Linear::new(&mut projection, "letter.project", cfg.latent, b.dim)?;
        Ok(Some(Letter {
            collaborative: cfg.collaborative,
            diversity: cfg.diversity,
            project,
            projection,
            behavior: (b.data.clone(), b.dim),
            clusters: Vec::new(),
        }))
    }

    /// Its trainable parameters (the projection).
    pub(super) fn vars(&self) -> Vec<Var> {
        self.projection.vars()
    }

    /// Clusters every level's current codes (once per epoch).
    pub(super) fn recluster(&mut self, net: &Net, rng: &mut ChaCha8Rng) -> Result<()> {
        self.clusters.clear();
        for codes in &net.codebooks {
            let (k, d) = codes.as_tensor().dims2().map_err(ml)?;
            let flat: Vec<f32> = codes
                .as_tensor()
                .flatten_all()
                .and_then(|t| t.to_vec1())
                .map_err(ml)?;
            let params = EuclideanParams {
                k: CLUSTERS.min(k),
                ..Default::default()
            };
            let centroids = train_euclidean(&flat, d, &params, rng);
            let of: Vec<u32> = nearest(&flat, d, &centroids, params.k)
                .into_iter()
                .map(|(c, _)| c)
                .collect();
            let mut members = vec![Vec::new(); params.k];
            for (code, &c) in of.iter().enumerate() {
                members[c as usize].push(code as u32);
            }
            self.clusters.push((of, members));
        }
        Ok(())
    }

    /// `α · collaborative + β · diversity` for the batch `idx` quantised as `q`.
    pub(super) fn loss(
        &self,
        net: &Net,
        q: &Quantized,
        idx: &[usize],
        rng: &mut ChaCha8Rng,
    ) -> Result<Tensor> {
        let cf = (self.collaborative_loss(net, q, idx)? * self.collaborative).map_err(ml)?;
        let div = (self.diversity_loss(net, q, rng)? * self.diversity).map_err(ml)?;
        (cf + div).map_err(ml)
    }

    fn collaborative_loss(&self, net: &Net, q: &Quantized, idx: &[usize]) -> Result<Tensor> {
        let (table, d) = (&self.behavior.0, self.behavior.1);
        let cf = net.rows(table, d, idx)?;
        let z = self.project.forward(&q.straight_through)?;
        let logits = z.matmul(&cf.t().map_err(ml)?).map_err(ml)?;
        let n = idx.len();
        let diagonal = Tensor::from_vec((0..n as u32).collect(), n, net.device()).map_err(ml)?;
        crate::nn::cross_entropy(&logits, &diagonal)
    }

    fn diversity_loss(&self, net: &Net, q: &Quantized, rng: &mut ChaCha8Rng) -> Result<Tensor> {
        let mut total: Option<Tensor> = None;
        for ((codes, tokens), (of, members)) in
            net.codebooks.iter().zip(&q.tokens).zip(&self.clusters)
        {
            let chosen: Vec<u32> = tokens.to_vec1().map_err(ml)?;
            let k = of.len();
            // A positive for each row whose cluster has another code.
            let (mut rows, mut targets, mut mask) = (Vec::new(), Vec::new(), Vec::new());
            for (row, &c) in chosen.iter().enumerate() {
                let peers = &members[of[c as usize] as usize];
                if peers.len() < 2 {
                    continue;
                }
                let other = loop {
                    let p = peers[rng.gen_range(0..peers.len())];
                    if p != c {
                        break p;
                    }
                };
                rows.push(row as u32);
                targets.push(other);
                mask.extend((0..k as u32).map(|j| if j == c { -1e12f32 } else { 0.0 }));
            }
            if rows.is_empty() {
                continue;
            }
            let dev = net.device();
            let n = rows.len();
            let rows = Tensor::from_vec(rows, n, dev).map_err(ml)?;
            let picked = tokens.index_select(&rows, 0).map_err(ml)?;
            let e = codes.as_tensor().index_select(&picked, 0).map_err(ml)?;
            let mask = Tensor::from_vec(mask, (n, k), dev).map_err(ml)?;
            let logits = e
                .matmul(&codes.as_tensor().t().map_err(ml)?)
                .and_then(|l| l + mask)
                .map_err(ml)?;
            let targets = Tensor::from_vec(targets, n, dev).map_err(ml)?;
            let ce = crate::nn::cross_entropy(&logits, &targets)?;
            total = Some(match total {
                Some(t) => (t + ce).map_err(ml)?,
                None => ce,
            });
        }
        let levels = net.codebooks.len() as f64;
        match total {
            Some(t) => (t / levels).map_err(ml),
            None => Tensor::zeros((), candle_core::DType::F32, net.device()).map_err(ml),
        }
    }
}
