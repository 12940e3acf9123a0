//! The parallel retriever's forward pass for one history, in plain Rust
//! over fixed weights: what `recommend` runs. The candle graph of
//! [`super::ParallelNet`] costs a few microseconds per operation however
//! small the tensors, and one request's pass is dozens of operations on
//! `history × d` matrices; here each product is one `gemm` call on the
//! calling thread and the rest are loops. Only the last item's state is
//! needed, so the last block computes its query, attention and
//! feed-forward for that row alone. A hybrid's pass reads item ids as well
//! and scores every item id against its unit-length item table. Tests hold
//! both to the candle pass.

use super::net::{ParallelNet, ParallelShape};
use candle_core::Tensor;

use crate::error::{Error, Result};
use crate::kmeans::dot;
use crate::nn::ParamStore;
use crate::nn::dense::Dense;
use crate::nn::gemv::rows_dot;
use crate::nn::params::ml;
use crate::nn::softmax::log_softmax_in_place;

/// A layer norm's gain and bias.
struct Norm {
    gain: Vec<f32>,
    bias: Vec<f32>,
}

impl Norm {
    fn load(params: &ParamStore, name: &str) -> Result<Self> {
        Ok(Norm {
            gain: params.flat(&format!("{name}.gain"))?,
            bias: params.flat(&format!("{name}.bias"))?,
        })
    }

    /// Each row normalised (ε = 1e-5, as `layers::LayerNorm`).
    fn apply(&self, x: &[f32]) -> Vec<f32> {
        let d = self.gain.len();
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks(d) {
            let mean = row.iter().sum::<f32>() / d as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
            let scale = 1.0 / (var + 1e-5).sqrt();
            out.extend(
                row.iter()
                    .zip(self.gain.iter().zip(&self.bias))
                    .map(|(v, (g, b))| (v - mean) * scale * g + b),
            );
        }
        out
    }
}

/// One pre-norm block: causal self-attention, then a ReLU feed-forward.
struct Block {
    norm1: Norm,
    q: Dense,
    k: Dense,
    v: Dense,
    o: Dense,
    norm2: Norm,
    up: Dense,
    down: Dense,
}

/// What the last state is scored against.
enum Head {
    /// One cosine head per semantic position over that position's
    /// unit-length token embeddings (`unit`: `positions × vocab × d`).
    Tokens { heads: Vec<Dense>, unit: Vec<f32> },
    /// A hybrid's one head over its unit-length item table (`unit`:
    /// `items × d`), and its id embeddings for the input side.
    Items {
        head: Dense,
        unit: Vec<f32>,
        ids: Vec<f32>,
    },
}

/// The fixed weights of a parallel retriever.
pub(crate) struct PlainNet {
    shape: ParallelShape,
    tokens: Vec<f32>,
    position: Vec<f32>,
    blocks: Vec<Block>,
    norm: Norm,
    head: Head,
    /// The repeat bias per [`super::net::Seen`] bias as a logit (empty
    /// without one).
    repeat: Vec<f32>,
}

impl PlainNet {
    /// Copies the weights of `net`; a hybrid's scores compare with
    /// `item_table`, its [`ParallelNet::unit_item_table`] (computed once by
    /// the caller, which keeps it for batched scoring as well).
    pub(crate) fn new(net: &ParallelNet, item_table: Option<&Tensor>) -> Result<Self> {
        let (shape, params) = (*net.shape(), net.params());
        let d = shape.d;
        let blocks = (0..shape.layers)
            .map(|i| {
                let n = |part: &str| format!("block.{i}.{part}");
                Ok(Block {
                    norm1: Norm::load(params, &n("norm1"))?,
                    q: Dense::load(params, &n("attn.q"))?,
                    k: Dense::load(params, &n("attn.k"))?,
                    v: Dense::load(params, &n("attn.v"))?,
                    o: Dense::load(params, &n("attn.o"))?,
                    norm2: Norm::load(params, &n("norm2"))?,
                    up: Dense::load(params, &n("ff.up"))?,
                    down: Dense::load(params, &n("ff.down"))?,
                })
            })
            .collect::<Result<_>>()?;
        let tokens = params.flat("token_embedding")?;
        let head = match (net.is_hybrid(), item_table) {
            (true, Some(table)) => Head::Items {
                head: Dense::load(params, "head.item")?,
                // The net's own table, so the rule that builds it (id
                // alone, or id and SID part) has one definition.
                unit: table.flatten_all().and_then(|t| t.to_vec1()).map_err(ml)?,
                ids: params.flat("item_embedding")?,
            },
            (true, None) => {
                return Err(Error::InvalidArgument(
                    "a hybrid's plain pass needs its item table".into(),
                ));
            }
            (false, _) => {
                let mut unit = tokens.clone();
                unit.chunks_mut(d).for_each(unit_length);
                let heads = (0..shape.positions)
                    .map(|p| Dense::load(params, &format!("head.{p}")))
                    .collect::<Result<_>>()?;
                Head::Tokens { heads, unit }
            }
        };
        Ok(PlainNet {
            shape,
            tokens,
            position: params.flat("position")?,
            blocks,
            norm: Norm::load(params, "norm")?,
            head,
            repeat: match shape.repeat_bias {
                true => super::repeat::as_logits(params.flat("repeat_bias")?, shape.temperature),
                false => Vec::new(),
            },
        })
    }

    /// Log-probabilities of the next item after a history given as `len ×
    /// positions` mask columns (and, for a hybrid, the `len` items' ids):
    /// per position and token (`positions × vocab`), or a hybrid's per
    /// item id.
    pub(crate) fn next_scores(&self, columns: &[u32], items: &[u32]) -> Vec<f32> {
        let d = self.shape.d;
        let len = columns.len() / self.shape.positions;
        let mut x = self.inputs(columns, items);
        for (i, block) in self.blocks.iter().enumerate() {
            let last_only = i + 1 == self.blocks.len();
            x = self.block(block, &x, len, last_only);
        }
        let h = self.norm.apply(&x[x.len() - d..]);
        self.score(&h, &self.shape.seen(columns, items))
    }

    /// The input rows (`len × d`): each item's SID part (its tokens' sum
    /// over √positions), for a hybrid `(id + SID part) / √2` (no id part
    /// for an id past its table), plus the position embedding.
    fn inputs(&self, columns: &[u32], items: &[u32]) -> Vec<f32> {
        let s = &self.shape;
        let (p, v, d) = (s.positions, s.vocab, s.d);
        let len = columns.len() / p;
        let start = s.history - len;
        let scale = 1.0 / (p as f32).sqrt();
        let mut x = vec![0f32; len * d];
        for (t, row) in x.chunks_mut(d).enumerate() {
            for (pos, &c) in columns[t * p..(t + 1) * p].iter().enumerate() {
                let e = &self.tokens[(pos * v + c as usize) * d..][..d];
                row.iter_mut().zip(e).for_each(|(r, e)| *r += e * scale);
            }
            if let Head::Items { ids, .. } = &self.head {
                let id = items[t] as usize;
                if let Some(e) = ids.get(id * d..(id + 1) * d) {
                    add(row, e);
                }
                row.iter_mut()
                    .for_each(|r| *r *= std::f32::consts::FRAC_1_SQRT_2);
            }
            add(row, &self.position[(start + t) * d..][..d]);
        }
        x
    }
    /// One block over `x` (`len × d`); with `last_only`, the new state of
    /// the last row alone (the rest only feed its keys and values).
    fn block(&self, b: &Block, x: &[f32], len: usize, last_only: bool) -> Vec<f32> {
        let (d, heads) = (self.shape.d, self.shape.heads);
        let h = b.norm1.apply(x);
        let (k, v) = (b.k.apply(&h, len), b.v.apply(&h, len));
        let first = if last_only { len - 1 } else { 0 };
        let rows = len - first;
        let q = b.q.apply(&h[first * d..], rows);
        let dh = d / heads;
        let scale = 1.0 / (dh as f32).sqrt();
        let mut att = vec![0f32; rows * d];
        let mut w = vec![0f32; len];
        for r in 0..rows {
            let t = first + r;
            for hd in 0..heads {
                let qh = &q[r * d + hd * dh..][..dh];
                let w = &mut w[..=t];
                for (s, ws) in w.iter_mut().enumerate() {
                    *ws = dot(qh, &k[s * d + hd * dh..][..dh]) * scale;
                }
                softmax(w);
                let out = &mut att[r * d + hd * dh..][..dh];
                for (s, &ws) in w.iter().enumerate() {
                    let vs = &v[s * d + hd * dh..][..dh];
                    out.iter_mut().zip(vs).for_each(|(o, v)| *o += ws * v);
                }
            }
        }
        let mut x: Vec<f32> = x[first * d..].to_vec();
        add(&mut x, &b.o.apply(&att, rows));
        let mut hidden = b.up.apply(&b.norm2.apply(&x), rows);
        hidden.iter_mut().for_each(|v| *v = v.max(0.0));
        add(&mut x, &b.down.apply(&hidden, rows));
        x
    }

    /// Every position's log-softmax of `cos(h + gelu(W_p h), e_p,c) / τ`,
    /// or a hybrid's over its items, with the repeat bias at what the
    /// history holds (`seen`).
    fn score(&self, h: &[f32], seen: &[(u32, u32)]) -> Vec<f32> {
        let (v, d) = (self.shape.vocab, self.shape.d);
        let repeats = |p: usize, logits: &mut [f32]| {
            for &(_, c) in super::repeat::of_head(seen, p) {
                logits[c as usize] += self.repeat[p];
            }
        };
        match &self.head {
            Head::Tokens { heads, unit } => {
                let mut out = Vec::with_capacity(heads.len() * v);
                for (p, head) in heads.iter().enumerate() {
                    let unit = &unit[p * v * d..(p + 1) * v * d];
                    out.extend(self.cosine(h, head, unit, |l| repeats(p, l)));
                }
                out
            }
            Head::Items { head, unit, .. } => self.cosine(h, head, unit, |l| repeats(0, l)),
        }
    }

    /// The log-softmax of `cos(h + gelu(W h), row) / τ` over the rows of
    /// `unit`, a table of unit-length rows, after `adjust` has seen the
    /// logits.
    fn cosine(
        &self,
        h: &[f32],
        head: &Dense,
        unit: &[f32],
        adjust: impl Fn(&mut [f32]),
    ) -> Vec<f32> {
        let d = self.shape.d;
        let inv_t = (1.0 / self.shape.temperature) as f32;
        let mut q = head.apply(h, 1);
        q.iter_mut().zip(h).for_each(|(q, h)| *q = h + gelu(*q));
        unit_length(&mut q);
        q.iter_mut().for_each(|v| *v *= inv_t);
        let mut logits = vec![0f32; unit.len() / d];
        rows_dot(&q, unit, &mut logits);
        adjust(&mut logits);
        log_softmax_in_place(&mut logits);
        logits
    }
}

fn add(x: &mut [f32], y: &[f32]) {
    x.iter_mut().zip(y).for_each(|(x, y)| *x += y);
}

/// `x / (‖x‖ + 1e-8)`, as `nn::losses::l2_normalize`.
fn unit_length(x: &mut [f32]) {
    let n = x.iter().map(|v| v * v).sum::<f32>().sqrt() + 1e-8;
    x.iter_mut().for_each(|v| *v /= n);
}

/// candle's `gelu` (the tanh approximation).
fn gelu(x: f32) -> f32 {
    let c = (2.0 / std::f32::consts::PI).sqrt();
    0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
}

fn softmax(w: &mut [f32]) {
    let max = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    w.iter_mut().for_each(|v| *v = (*v - max).exp());
    let sum: f32 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= sum);
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, IndexOp};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const SHAPE: ParallelShape = ParallelShape {
        positions: 4,
        vocab: 11,
        d: 16,
        heads: 4,
        layers: 2,
        ff: 32,
        history: 6,
        dropout: 0.0,
        temperature: 0.07,
        items: 0,
        sid_output: false,
        repeat_bias: false,
    };

    /// The plain pass of a fresh network of `shape` against its candle
    /// pass, over histories of every kind of length (for a hybrid, with ids
    /// past its table among them).
    fn assert_matches_candle(shape: ParallelShape) {
        let params = ParamStore::new(Device::Cpu, ChaCha8Rng::seed_from_u64(9));
        let net = ParallelNet::new(shape, params).unwrap();
        if shape.repeat_bias {
            let n = shape.repeat_biases();
            let bias: Vec<f32> = (0..n).map(|b| 0.8 - 0.7 * b as f32).collect();
            net.params().set_flat("repeat_bias", bias).unwrap();
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let p = shape.positions;
        let sids: Vec<u32> = (0..shape.items * p).map(|_| rng.gen_range(0..11)).collect();
        net.set_item_sids(&sids).unwrap();
        let table = net.unit_item_table().ok();
        let plain = PlainNet::new(&net, table.as_ref()).unwrap();
        for len in [1, 2, 5, 6] {
            let columns: Vec<u32> = (0..len * p).map(|_| rng.gen_range(0..11)).collect();
            let items: Vec<u32> = match shape.items {
                0 => Vec::new(),
                n => (0..len).map(|_| rng.gen_range(0..n as u32 + 2)).collect(),
            };
            let h = net.states(&columns, &items, 1, len).unwrap();
            let last = h.i((.., len - 1, ..)).unwrap();
            let want = net
                .log_probs(&last, None, &[shape.seen(&columns, &items)])
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            let got = plain.next_scores(&columns, &items);
            assert_eq!(got.len(), want[0].len());
            for (g, w) in got.iter().zip(&want[0]) {
                assert!((g - w).abs() < 1e-4, "len {len}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn matches_the_candle_forward_pass() {
        assert_matches_candle(SHAPE);
    }

    /// A repeat bias moves what the history holds in both passes alike
    /// (their agreement is checked above; here that it moves at all).
    #[test]
    fn the_repeat_bias_matches_and_moves_the_history() {
        let with = ParallelShape {
            repeat_bias: true,
            ..SHAPE
        };
        assert_matches_candle(with);
        let hybrid = ParallelShape { items: 7, ..with };
        assert_matches_candle(hybrid);
        let params = |seed| ParamStore::new(Device::Cpu, ChaCha8Rng::seed_from_u64(seed));
        let (biased, plain) = (
            ParallelNet::new(hybrid, params(2)).unwrap(),
            ParallelNet::new(
                ParallelShape {
                    repeat_bias: false,
                    ..hybrid
                },
                params(2),
            )
            .unwrap(),
        );
        biased.params().set_flat("repeat_bias", vec![-0.2]).unwrap();
        let scores = |net: &ParallelNet| {
            let table = net.unit_item_table().unwrap();
            PlainNet::new(net, Some(&table))
                .unwrap()
                .next_scores(&[1, 2, 3, 4, 5, 6, 7, 8], &[2, 5])
        };
        let (b, p) = (scores(&biased), scores(&plain));
        // Unseen items all move by the same normaliser; seen ones by the
        // bias (−0.2 / τ as a logit) more.
        let lift = b[0] - p[0];
        assert!(lift > 0.0, "{lift}");
        for (id, (b, p)) in b.iter().zip(&p).enumerate() {
            let want = lift - if id == 2 || id == 5 { 0.2 / 0.07 } else { 0.0 };
            assert!((b - p - want).abs() < 1e-4, "item {id}: {b} vs {p}");
        }
    }

    #[test]
    fn a_hybrid_matches_the_candle_forward_pass() {
        let hybrid = ParallelShape { items: 7, ..SHAPE };
        assert_matches_candle(hybrid);
        assert_matches_candle(ParallelShape {
            sid_output: true,
            ..hybrid
        });
    }
}
