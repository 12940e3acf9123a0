//! The parallel retriever's network (RPG-style): a causal transformer over
//! the user's items, each item the sum of its SID tokens' embeddings over
//! √positions (so an item's input keeps one embedding's scale however long
//! its SID: with RPG's plain mean, 32 independent tokens start √32 ≈ 5.7× weaker than the
//! position embedding they are added to), and
//! one head per semantic position that scores every token of that position
//! at once by temperature-scaled cosine similarity to the same (tied) token
//! embeddings.
//!
//! A hybrid adds item ids: each input item also gets its own learned
//! embedding (`(id + SID part) / √2`, the same scale again), and the only
//! head is a softmax over item ids tied to those embeddings (SASRec's
//! output, SID tokens only on the input side). Ids at or past `items` (not
//! in the catalogue it was trained on) read their SID part alone. With
//! `sid_output` the head is tied to the whole input embedding instead, id
//! and SID part alike, so an item seldom seen as a target still gets the
//! output direction its tokens learned from other items; the SIDs it
//! trained with are kept among its parameters (`item_sids`, never updated),
//! so a stored hybrid scores exactly as it trained.

use candle_core::{D, DType, Device, Tensor, Var};

use crate::error::Result;
use crate::generative::layers::{BlockDims, Dropout, EncoderBlock, LayerNorm, MASKED};
use crate::nn::ParamStore;
use crate::nn::losses::l2_normalize;
use crate::nn::params::{Linear, ml};

pub use super::repeat::Seen;

/// Sizes of the network.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParallelShape {
    /// Semantic positions predicted (the disambiguation token is not).
    pub positions: usize,
    /// Columns per position: K tokens and the empty token.
    pub vocab: usize,
    /// Model width.
    pub d: usize,
    /// Attention heads.
    pub heads: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Feed-forward width.
    pub ff: usize,
    /// Items read at most.
    pub history: usize,
    /// Dropout of embeddings and sublayer outputs while training.
    pub dropout: f32,
    /// Softmax temperature of the cosine logits.
    pub temperature: f64,
    /// Item-id rows of a hybrid (ids `0..items`); 0 for SIDs alone.
    pub items: usize,
    /// A hybrid's output embedding of an item is its input embedding (id
    /// and SID part), not its id's alone.
    pub sid_output: bool,
    /// A learned logit for what the history already holds
    /// ([`super::ParallelConfig::repeat_bias`]).
    pub repeat_bias: bool,
}

/// The network and its parameters.
pub struct ParallelNet {
    shape: ParallelShape,
    tokens: Var,
    position: Var,
    blocks: Vec<EncoderBlock>,
    norm: LayerNorm,
    heads: Vec<Linear>,
    /// A hybrid's item-id table and its head.
    ids: Option<(Var, Linear)>,
    /// With `sid_output`: each id's rows of the token table, `[items,
    /// positions]` (whole numbers in f32, so they are stored with the
    /// weights; no gradient reaches them).
    item_sids: Option<Var>,
    /// With `repeat_bias`: one value per bias of [`Seen`]
    /// ([`super::repeat`]).
    repeat: Option<Var>,
    params: ParamStore,
    dropout: Dropout,
}

impl ParallelNet {
    /// A freshly initialised network.
    pub fn new(shape: ParallelShape, mut params: ParamStore) -> Result<ParallelNet> {
        let d = shape.d;
        let emb = 1.0 / (d as f32).sqrt();
        let tokens = params.uniform("token_embedding", &[shape.positions * shape.vocab, d], emb)?;
        let position = params.uniform("position", &[shape.history, d], emb)?;
        let dims = BlockDims {
            d,
            heads: shape.heads,
            ff: shape.ff,
        };
        let blocks = (0..shape.layers)
            .map(|i| EncoderBlock::new(&mut params, &format!("block.{i}"), dims))
            .collect::<Result<_>>()?;
        let norm = LayerNorm::new(&mut params, "norm", d)?;
        let semantic = if shape.items == 0 { shape.positions } else { 0 };
        let heads = (0..semantic)
            .map(|p| Linear::new(&mut params, &format!("head.{p}"), d, d))
            .collect::<Result<_>>()?;
        let ids = match shape.items {
            0 => None,
            n => Some((
                params.uniform("item_embedding", &[n, d], emb)?,
                Linear::new(&mut params, "head.item", d, d)?,
            )),
        };
        let item_sids = match shape.items > 0 && shape.sid_output {
            true => Some(params.constant("item_sids", &[shape.items, shape.positions], 0.0)?),
            false => None,
        };
        let repeat = match shape.repeat_bias {
            true => Some(params.constant("repeat_bias", &[shape.repeat_biases()], 0.0)?),
            false => None,
        };
        Ok(ParallelNet {
            shape,
            tokens,
            position,
            blocks,
            norm,
            heads,
            ids,
            item_sids,
            repeat,
            params,
            dropout: Dropout::new(shape.dropout),
        })
    }

    /// Its sizes.
    pub fn shape(&self) -> &ParallelShape {
        &self.shape
    }

    /// Its parameters.
    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    /// Arms dropout for training with `seed`, or disarms it (`None`).
    pub fn set_training(&self, seed: Option<u64>) {
        self.dropout.arm(seed);
    }

    fn device(&self) -> &Device {
        self.params.device()
    }

    /// Whether it is a hybrid (item ids in and out).
    pub fn is_hybrid(&self) -> bool {
        self.ids.is_some()
    }

    /// Hidden states `[batch, len, d]` of `batch` item sequences of `len`
    /// items each; `columns` holds `batch × len × positions` mask columns
    /// (the items' semantic tokens) and, for a hybrid, `items` their
    /// `batch × len` ids. Position `t` sees items `0..=t` only.
    pub fn states(
        &self,
        columns: &[u32],
        items: &[u32],
        batch: usize,
        len: usize,
    ) -> Result<Tensor> {
        let d = self.shape.d;
        let idx = self.token_rows(columns)?;
        let sid_part = self.sid_part(&idx)?.reshape((batch, len, d)).map_err(ml)?;
        let items = match &self.ids {
            Some((table, _)) => {
                let ids = self.id_inputs(table, items)?.reshape((batch, len, d));
                combined(&ids.map_err(ml)?, &sid_part)?
            }
            None => sid_part,
        };
        let start = self.shape.history - len;
        let positions = self
            .position
            .as_tensor()
            .narrow(0, start, len)
            .map_err(ml)?;
        let mut x = self
            .dropout
            .apply(items.broadcast_add(&positions).map_err(ml)?)?;
        let causal: Vec<f32> = (0..len * len)
            .map(|i| if i % len > i / len { MASKED } else { 0.0 })
            .collect();
        let causal = Tensor::from_vec(causal, (1, 1, len, len), self.device()).map_err(ml)?;
        for block in &self.blocks {
            x = block.forward(&x, Some(&causal), &self.dropout)?;
        }
        self.norm.forward(&x)
    }

    /// Rows of the token table of mask `columns`, `positions` per item.
    fn token_rows(&self, columns: &[u32]) -> Result<Tensor> {
        let (p, v) = (self.shape.positions, self.shape.vocab);
        let rows: Vec<u32> = columns
            .iter()
            .enumerate()
            .map(|(i, &c)| ((i % p) * v) as u32 + c)
            .collect();
        Tensor::from_vec(rows, columns.len(), self.device()).map_err(ml)
    }

    /// Items' SID parts `[items, d]`: the sum of their token embeddings
    /// (`rows` from [`ParallelNet::token_rows`]) over √positions.
    ///
    /// One gather and one sum of `[items, d]` rows per position: summing a
    /// gathered `[items, positions, d]` block over its middle axis instead
    /// (a strided reduction, and a broadcast of that size on the way back)
    /// cost a hybrid's d = 128 training epoch an eighth of its CPU time.
    fn sid_part(&self, rows: &Tensor) -> Result<Tensor> {
        let p = self.shape.positions;
        let n = rows.dim(0).map_err(ml)? / p;
        let rows = rows.reshape((n, p)).map_err(ml)?;
        let table = self.tokens.as_tensor();
        let mut sum: Option<Tensor> = None;
        for pos in 0..p {
            let e = rows
                .narrow(1, pos, 1)
                .and_then(|r| r.flatten_all())
                .and_then(|r| r.contiguous())
                .and_then(|r| table.index_select(&r, 0))
                .map_err(ml)?;
            sum = Some(match sum {
                Some(s) => (s + e).map_err(ml)?,
                None => e,
            });
        }
        (sum.expect("at least one position") / (p as f64).sqrt()).map_err(ml)
    }

    /// Sets the items' SIDs a `sid_output` hybrid ties its head to: mask
    /// columns of ids `0..items`, `positions` each (ignored otherwise).
    pub fn set_item_sids(&self, columns: &[u32]) -> Result<()> {
        let Some(var) = &self.item_sids else {
            return Ok(());
        };
        self.token_rows(columns)
            .and_then(|rows| rows.to_dtype(DType::F32).map_err(ml))
            .and_then(|rows| rows.reshape(var.shape()).map_err(ml))
            .and_then(|rows| var.set(&rows).map_err(ml))
    }

    /// What a hybrid's head compares with, `[items, d]`: the id table, or
    /// with `sid_output` each id's whole input embedding.
    pub fn item_table(&self) -> Result<Tensor> {
        let (table, _) = self.hybrid_parts()?;
        let Some(sids) = &self.item_sids else {
            return Ok(table.as_tensor().clone());
        };
        // Rows of the token table already: no trip through host memory on
        // every training step.
        let rows = sids
            .as_tensor()
            .flatten_all()
            .and_then(|t| t.to_dtype(DType::U32))
            .map_err(ml)?;
        combined(table.as_tensor(), &self.sid_part(&rows)?)
    }

    /// [`ParallelNet::item_table`] with every row scaled to unit length:
    /// what the head compares with, fixed while the weights are.
    pub fn unit_item_table(&self) -> Result<Tensor> {
        l2_normalize(&self.item_table()?)
    }

    fn hybrid_parts(&self) -> Result<&(Var, Linear)> {
        self.ids
            .as_ref()
            .ok_or_else(|| crate::error::Error::InvalidArgument("not a hybrid retriever".into()))
    }

    /// The id embeddings of `items` (zero for ids the table lacks).
    fn id_inputs(&self, table: &Var, items: &[u32]) -> Result<Tensor> {
        let n = self.shape.items as u32;
        let dev = self.device();
        let rows: Vec<u32> = items.iter().map(|&i| if i < n { i } else { 0 }).collect();
        let known: Vec<f32> = items.iter().map(|&i| f32::from(u8::from(i < n))).collect();
        let rows = Tensor::from_vec(rows, items.len(), dev).map_err(ml)?;
        let known = Tensor::from_vec(known, (items.len(), 1), dev).map_err(ml)?;
        table
            .as_tensor()
            .index_select(&rows, 0)
            .and_then(|e| e.broadcast_mul(&known))
            .map_err(ml)
    }

    /// A hybrid's logits `[rows, items]` over item ids for hidden states
    /// `[rows, d]`: `cos(h + W h, e_i) / τ` for every row `e_i` of
    /// `table` ([`ParallelNet::unit_item_table`], computed when not given).
    pub fn item_logits(&self, h: &Tensor, table: Option<&Tensor>) -> Result<Tensor> {
        let (_, head) = self.hybrid_parts()?;
        match table {
            Some(t) => self.cosine(h, head, t),
            None => self.cosine(h, head, &self.unit_item_table()?),
        }
    }

    /// `logits` `[rows, width]` with the repeat bias added at each row's
    /// `seen` pairs ([`super::repeat::add`]); unchanged without one.
    pub fn add_repeats(
        &self,
        logits: Tensor,
        seen: &[Seen],
        position: Option<usize>,
    ) -> Result<Tensor> {
        match &self.repeat {
            Some(bias) => super::repeat::add(bias, &self.shape, logits, seen, position),
            None => Ok(logits),
        }
    }

    /// `cos(h + gelu(W h), row) / τ` against every row of `unit`, a table
    /// of unit-length rows.
    fn cosine(&self, h: &Tensor, head: &Linear, unit: &Tensor) -> Result<Tensor> {
        let q = (h + head.forward(h)?.gelu().map_err(ml)?).map_err(ml)?;
        // 1/τ scales the `[rows, d]` queries, not the `[rows, items]` logits.
        (l2_normalize(&q)? / self.shape.temperature)
            .and_then(|q| q.matmul(&unit.t()?))
            .map_err(ml)
    }

    /// Logits `[rows, vocab]` of position `p` for hidden states `[rows, d]`:
    /// `cos(h + W_p h, e_{p,c}) / τ` for every column `c`.
    pub fn logits(&self, h: &Tensor, p: usize) -> Result<Tensor> {
        let v = self.shape.vocab;
        let table = self.tokens.as_tensor().narrow(0, p * v, v).map_err(ml)?;
        self.cosine(h, &self.heads[p], &l2_normalize(&table)?)
    }

    /// Log-probabilities `[rows, positions × vocab]` (each position's own
    /// softmax), ready for [`crate::decode::PositionScores`]; a hybrid's
    /// are `[rows, items]`, one per item id. `table` is
    /// [`ParallelNet::score_table`] (a hybrid's
    /// [`ParallelNet::unit_item_table`]) of the current weights, when kept;
    /// `seen` is each row's history ([`ParallelNet::add_repeats`]).
    pub fn log_probs(&self, h: &Tensor, table: Option<&Tensor>, seen: &[Seen]) -> Result<Tensor> {
        if self.is_hybrid() {
            let logits = self.add_repeats(self.item_logits(h, table)?, seen, None)?;
            return candle_nn::ops::log_softmax(&logits, D::Minus1).map_err(ml);
        }
        let (p, v) = (self.shape.positions, self.shape.vocab);
        let rows = h.dim(0).map_err(ml)?;
        let fresh;
        let table = match table {
            Some(t) => t,
            None => {
                fresh = self.score_table()?;
                &fresh
            }
        };
        let logits = self
            .all_logits(h, table)?
            .reshape((rows, p * v))
            .map_err(ml)?;
        self.add_repeats(logits, seen, None)?
            .reshape((rows, p, v))
            .and_then(|l| candle_nn::ops::log_softmax(&l, D::Minus1))
            .and_then(|l| l.reshape((rows, p * v)))
            .map_err(ml)
    }

    /// The unit-length token embeddings of every position, `[positions, d,
    /// vocab]`: what every position's cosine head compares with. Fixed
    /// while the weights are, so a trained retriever keeps it.
    pub fn score_table(&self) -> Result<Tensor> {
        let (p, v, d) = (self.shape.positions, self.shape.vocab, self.shape.d);
        let table = self.tokens.as_tensor().reshape((p, v, d)).map_err(ml)?;
        l2_normalize(&table)?
            .transpose(1, 2)
            .and_then(|t| t.contiguous())
            .map_err(ml)
    }

    /// Every position's [`ParallelNet::logits`] at once, `[rows, positions,
    /// vocab]`: the heads stacked into one product and the cosines as one
    /// batched product against `table`, a constant number of tensor
    /// operations however long the SID (serving one history is dominated
    /// by their count).
    fn all_logits(&self, h: &Tensor, table: &Tensor) -> Result<Tensor> {
        let (p, d) = (self.shape.positions, self.shape.d);
        let rows = h.dim(0).map_err(ml)?;
        let (w, b): (Vec<&Tensor>, Vec<&Tensor>) = self.heads.iter().map(Linear::parts).unzip();
        let (w, b) = (
            Tensor::cat(&w, 0).map_err(ml)?,
            Tensor::cat(&b, 0).map_err(ml)?,
        );
        let q = h
            .matmul(&w.t().map_err(ml)?)
            .and_then(|q| q.broadcast_add(&b))
            .and_then(|q| q.gelu())
            .and_then(|q| q.reshape((rows, p, d)))
            .and_then(|q| q.broadcast_add(&h.unsqueeze(1)?))
            .map_err(ml)?;
        (l2_normalize(&q)? / self.shape.temperature)
            .and_then(|q| q.transpose(0, 1))
            .and_then(|q| q.contiguous())
            .and_then(|q| q.matmul(table))
            .and_then(|s| s.transpose(0, 1))
            .map_err(ml)
    }
}

/// A hybrid item's embedding from its id and SID parts, `(id + sid) / √2`:
/// the scale of one embedding, on the input side and (with `sid_output`)
/// the output side alike.
fn combined(id: &Tensor, sid: &Tensor) -> Result<Tensor> {
    ((id + sid).and_then(|e| e / 2f64.sqrt())).map_err(ml)
}

#[cfg(test)]
mod tests;
