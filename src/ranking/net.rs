//! A compact DIN-style CTR network (Zhou et al., KDD 2018): the candidate
//! attends over the user's history through an activation unit — an MLP on
//! `[h_i, c, h_i − c, h_i ⊙ c]` giving one weight per history item,
//! softmax-normalised over the history — and an MLP on `[pooled, c, pooled
//! ⊙ c]` gives the click logit. Items are represented by an id embedding,
//! a weighted SID embedding (the weighted sum of its positions' token
//! embeddings over √positions), or both added.

use candle_core::{D, Device, Tensor, Var};

use super::features::{FeatureSet, ItemFeatures};
use crate::error::Result;
use crate::nn::ParamStore;
use crate::nn::params::{Mlp, ml};

/// Sizes of the network.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DinShape {
    /// Catalogue rows (id embeddings).
    pub items: usize,
    /// Semantic positions per item.
    pub positions: usize,
    /// Columns per position (K tokens and EMPTY).
    pub vocab: usize,
    /// Embedding width.
    pub d: usize,
    /// Hidden width of the activation unit.
    pub attention: usize,
    /// Hidden widths of the output MLP.
    pub hidden: [usize; 2],
    /// Which item representation.
    pub features: FeatureSet,
}

/// The network and its parameters.
pub struct DinNet {
    shape: DinShape,
    ids: Option<Var>,
    tokens: Option<Var>,
    unit: Mlp,
    head: Mlp,
    params: ParamStore,
}

impl DinNet {
    /// A freshly initialised network.
    pub fn new(shape: DinShape, mut params: ParamStore) -> Result<Self> {
        let d = shape.d;
        let bound = 1.0 / (d as f32).sqrt();
        let ids = match shape.features.uses_ids() {
            true => Some(params.uniform("item_embedding", &[shape.items, d], bound)?),
            false => None,
        };
        let tokens = match shape.features.uses_sids() {
            true => Some(params.uniform(
                "token_embedding",
                &[shape.positions * shape.vocab, d],
                bound,
            )?),
            false => None,
        };
        let unit = Mlp::new(&mut params, "attention", &[4 * d, shape.attention, 1])?;
        let [h1, h2] = shape.hidden;
        let head = Mlp::new(&mut params, "head", &[3 * d, h1, h2, 1])?;
        Ok(DinNet {
            shape,
            ids,
            tokens,
            unit,
            head,
            params,
        })
    }

    /// Its parameters.
    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    fn device(&self) -> &Device {
        self.params.device()
    }

    /// Embeddings `[rows.len(), d]` of catalogue `rows`.
    fn embed(&self, rows: &[u32], items: &ItemFeatures) -> Result<Tensor> {
        let (p, v, d) = (self.shape.positions, self.shape.vocab, self.shape.d);
        let n = rows.len();
        let dev = self.device();
        let mut parts = Vec::new();
        if let Some(ids) = &self.ids {
            let idx = Tensor::from_vec(rows.to_vec(), n, dev).map_err(ml)?;
            parts.push(ids.as_tensor().index_select(&idx, 0).map_err(ml)?);
        }
        if let Some(tokens) = &self.tokens {
            let (mut cols, mut weights) = (Vec::with_capacity(n * p), Vec::with_capacity(n * p));
            for &r in rows {
                let at = r as usize * p;
                for pos in 0..p {
                    cols.push((pos * v) as u32 + items.columns[at + pos]);
                    weights.push(items.weights[at + pos] / (p as f32).sqrt());
                }
            }
            let idx = Tensor::from_vec(cols, n * p, dev).map_err(ml)?;
            let w = Tensor::from_vec(weights, (n, p, 1), dev).map_err(ml)?;
            let sid = tokens
                .as_tensor()
                .index_select(&idx, 0)
                .and_then(|e| e.reshape((n, p, d)))
                .and_then(|e| e.broadcast_mul(&w))
                .and_then(|e| e.sum(1))
                .map_err(ml)?;
            parts.push(sid);
        }
        let mut sum = parts.remove(0);
        for part in parts {
            sum = (sum + part).map_err(ml)?;
        }
        Ok(sum)
    }

    /// Click logits `[batch]` of `batch` candidates, each after a history
    /// of `len` items (`histories` holds `batch × len` rows, oldest first).
    pub fn logits(
        &self,
        histories: &[u32],
        candidates: &[u32],
        len: usize,
        items: &ItemFeatures,
    ) -> Result<Tensor> {
        let (b, d) = (candidates.len(), self.shape.d);
        let h = self
            .embed(histories, items)?
            .reshape((b, len, d))
            .map_err(ml)?;
        let c = self.embed(candidates, items)?;
        let cx = c
            .unsqueeze(1)
            .and_then(|c| c.broadcast_as((b, len, d)))
            .and_then(|c| c.contiguous())
            .map_err(ml)?;
        let diff = (&h - &cx).map_err(ml)?;
        let prod = (&h * &cx).map_err(ml)?;
        let unit_in = Tensor::cat(&[&h, &cx, &diff, &prod], D::Minus1).map_err(ml)?;
        let scores = self.unit.forward(&unit_in)?;
        let weights = candle_nn::ops::softmax(&scores, 1).map_err(ml)?;
        let pooled = h
            .broadcast_mul(&weights)
            .and_then(|x| x.sum(1))
            .map_err(ml)?;
        let both = (&pooled * &c).map_err(ml)?;
        let x = Tensor::cat(&[&pooled, &c, &both], 1).map_err(ml)?;
        self.head.forward(&x)?.squeeze(1).map_err(ml)
    }
}
