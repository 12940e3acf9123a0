//! The generative retriever's network: an encoder over the user's recent
//! items (each item the sum of its SID tokens' embeddings) and a decoder
//! that writes the next item's SID one token at a time, cross-attending to
//! the encoder's output.

use candle_core::{D, Device, Tensor, Var};

use super::layers::{BlockDims, DecoderBlock, Dropout, EncoderBlock, LayerNorm, MASKED};
use crate::error::Result;
use crate::nn::ParamStore;
use crate::nn::params::{Linear, ml};

/// Sizes of the network.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GenShape {
    /// Tokens per full SID (semantic levels + disambiguation).
    pub steps: usize,
    /// Columns per step: K tokens and the empty token.
    pub vocab: usize,
    /// Model width.
    pub d: usize,
    /// Attention heads.
    pub heads: usize,
    /// Encoder blocks.
    pub encoder_layers: usize,
    /// Decoder blocks.
    pub decoder_layers: usize,
    /// Feed-forward width.
    pub ff: usize,
    /// History length (items) the encoder reads at most.
    pub history: usize,
    /// Dropout rate of embeddings and sublayer outputs while training.
    pub dropout: f32,
}

/// Token id of step `step`, column `column` in the shared embedding tables.
pub(crate) fn token_id(shape: &GenShape, step: usize, column: usize) -> u32 {
    (step * shape.vocab + column) as u32
}

/// Keys and values kept between steps of incremental decoding.
pub struct DecodeCache {
    /// Per decoder block: self-attention keys and values of the positions so far.
    own: Vec<Option<(Tensor, Tensor)>>,
    /// Per decoder block: cross-attention keys and values of the memory.
    memory: Vec<(Tensor, Tensor)>,
}

impl DecodeCache {
    /// Keeps row `rows[i]` as row `i` (beams follow their parents).
    pub fn reorder(&mut self, rows: &[u32]) -> Result<()> {
        let Some(Some((k, _))) = self.own.first() else {
            return Ok(());
        };
        let idx = Tensor::from_slice(rows, rows.len(), k.device()).map_err(ml)?;
        for slot in self.own.iter_mut() {
            if let Some((k, v)) = slot.take() {
                *slot = Some((
                    k.index_select(&idx, 0).map_err(ml)?,
                    v.index_select(&idx, 0).map_err(ml)?,
                ));
            }
        }
        Ok(())
    }
}

/// The encoder–decoder network and its parameters.
pub struct GenNet {
    shape: GenShape,
    item_embedding: Var,
    history_position: Var,
    decoder_embedding: Var,
    step_position: Var,
    encoder: Vec<EncoderBlock>,
    encoder_norm: LayerNorm,
    decoder: Vec<DecoderBlock>,
    decoder_norm: LayerNorm,
    heads: Vec<Linear>,
    params: ParamStore,
    dropout: Dropout,
}

impl GenNet {
    /// A freshly initialised network.
    pub fn new(shape: GenShape, mut params: ParamStore) -> Result<GenNet> {
        let (d, tokens) = (shape.d, shape.steps * shape.vocab);
        let emb = 1.0 / (d as f32).sqrt();
        let item_embedding = params.uniform("item_embedding", &[tokens, d], emb)?;
        let history_position = params.uniform("history_position", &[shape.history, d], emb)?;
        // One extra row: the start-of-SID token.
        let decoder_embedding = params.uniform("decoder_embedding", &[tokens + 1, d], emb)?;
        let step_position = params.uniform("step_position", &[shape.steps, d], emb)?;
        let dims = BlockDims {
            d,
            heads: shape.heads,
            ff: shape.ff,
        };
        let encoder = (0..shape.encoder_layers)
            .map(|i| EncoderBlock::new(&mut params, &format!("encoder.{i}"), dims))
            .collect::<Result<_>>()?;
        let encoder_norm = LayerNorm::new(&mut params, "encoder.norm", d)?;
        let decoder = (0..shape.decoder_layers)
            .map(|i| DecoderBlock::new(&mut params, &format!("decoder.{i}"), dims))
            .collect::<Result<_>>()?;
        let decoder_norm = LayerNorm::new(&mut params, "decoder.norm", d)?;
        let heads = (0..shape.steps)
            .map(|s| Linear::new(&mut params, &format!("head.{s}"), d, shape.vocab))
            .collect::<Result<_>>()?;
        Ok(GenNet {
            shape,
            item_embedding,
            history_position,
            decoder_embedding,
            step_position,
            encoder,
            encoder_norm,
            decoder,
            decoder_norm,
            heads,
            params,
            dropout: Dropout::new(shape.dropout),
        })
    }

    /// Turns dropout on with a seed (training) or off (`None`).
    pub fn set_training(&self, seed: Option<u64>) {
        self.dropout.arm(seed);
    }

    /// The sizes.
    pub fn shape(&self) -> &GenShape {
        &self.shape
    }

    /// The parameters.
    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    fn device(&self) -> &Device {
        self.params.device()
    }

    /// Id of the start-of-SID token in the decoder table.
    pub(crate) fn start_id(&self) -> u32 {
        (self.shape.steps * self.shape.vocab) as u32
    }

    /// Encodes `batch` histories of `len` items each (left-padded):
    /// `ids` holds `batch × len × steps` token ids, `valid` whether each
    /// position holds an item. Returns the memory `[batch, len, d]` and the
    /// additive key mask for cross-attention (None without padding).
    pub fn encode(
        &self,
        ids: &[u32],
        valid: &[bool],
        batch: usize,
        len: usize,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (d, steps) = (self.shape.d, self.shape.steps);
        let dev = self.device();
        let idx = Tensor::from_slice(ids, ids.len(), dev).map_err(ml)?;
        let items = self
            .item_embedding
            .as_tensor()
            .index_select(&idx, 0)
            .and_then(|e| e.reshape((batch, len, steps, d)))
            .and_then(|e| e.sum(2))
            .map_err(ml)?;
        let positions = self
            .history_position
            .as_tensor()
            .narrow(0, self.shape.history - len, len)
            .map_err(ml)?;
        let mut x = self
            .dropout
            .apply(items.broadcast_add(&positions).map_err(ml)?)?;
        let mask = if valid.iter().all(|&v| v) {
            None
        } else {
            let m: Vec<f32> = valid
                .iter()
                .map(|&v| if v { 0.0 } else { MASKED })
                .collect();
            Some(Tensor::from_vec(m, (batch, 1, 1, len), dev).map_err(ml)?)
        };
        for block in &self.encoder {
            x = block.forward(&x, mask.as_ref(), &self.dropout)?;
        }
        Ok((self.encoder_norm.forward(&x)?, mask))
    }

    /// Decoder states `[batch, len, d]` for decoder inputs `ids`
    /// (`batch × len`: the start token, then the SID's first `len − 1`
    /// tokens). Memory row `i` serves decoder rows `i·group .. (i+1)·group`.
    pub fn decode(
        &self,
        memory: &Tensor,
        memory_mask: Option<&Tensor>,
        ids: &[u32],
        (batch, len, group): (usize, usize, usize),
    ) -> Result<Tensor> {
        let dev = self.device();
        let mut y = self
            .dropout
            .apply(self.decoder_inputs(ids, (batch, len), 0)?)?;
        let causal: Vec<f32> = (0..len * len)
            .map(|i| if i % len > i / len { MASKED } else { 0.0 })
            .collect();
        let causal = Tensor::from_vec(causal, (1, 1, len, len), dev).map_err(ml)?;
        for block in &self.decoder {
            y = block.forward(&y, &causal, memory, memory_mask, group, &self.dropout)?;
        }
        self.decoder_norm.forward(&y)
    }

    /// Token embeddings of `ids` (`rows × len`, row-major) plus the
    /// position embeddings of steps `first..first + len`: `[rows, len, d]`.
    fn decoder_inputs(
        &self,
        ids: &[u32],
        (rows, len): (usize, usize),
        first: usize,
    ) -> Result<Tensor> {
        let idx = Tensor::from_slice(ids, ids.len(), self.device()).map_err(ml)?;
        self.decoder_embedding
            .as_tensor()
            .index_select(&idx, 0)
            .and_then(|e| e.reshape((rows, len, self.shape.d)))
            .and_then(|e| e.broadcast_add(&self.step_position.as_tensor().narrow(0, first, len)?))
            .map_err(ml)
    }

    /// Starts incremental decoding against `memory` (`[users, T, d]`): the
    /// cross-attention keys and values are projected once here.
    pub fn start_decoding(&self, memory: &Tensor) -> Result<DecodeCache> {
        Ok(DecodeCache {
            own: vec![None; self.decoder.len()],
            memory: self
                .decoder
                .iter()
                .map(|b| b.memory_kv(memory))
                .collect::<Result<_>>()?,
        })
    }

    /// Log-probabilities `[rows, vocab]` of the token at position `step`,
    /// given each row's token at position `step − 1` in `ids` (the start
    /// token at step 0). Equals [`GenNet::decode`] + [`GenNet::log_probs`]
    /// over the whole prefix, but computes only the new position, reusing
    /// `cache` (rows of one user are `group` consecutive rows).
    pub fn decode_next(
        &self,
        cache: &mut DecodeCache,
        memory_mask: Option<&Tensor>,
        ids: &[u32],
        step: usize,
        group: usize,
    ) -> Result<Tensor> {
        let mut y = self.decoder_inputs(ids, (ids.len(), 1), step)?;
        for ((block, own), memory) in self.decoder.iter().zip(&mut cache.own).zip(&cache.memory) {
            y = block.step(&y, own, memory, memory_mask, group, &self.dropout)?;
        }
        let states = self.decoder_norm.forward(&y)?.squeeze(1).map_err(ml)?;
        candle_nn::ops::log_softmax(&self.heads[step].forward(&states)?, D::Minus1).map_err(ml)
    }

    /// Next-token logits `[batch, vocab]` at `step` from decoder states.
    pub fn logits(&self, states: &Tensor, step: usize) -> Result<Tensor> {
        let s = states
            .narrow(1, step, 1)
            .and_then(|s| s.squeeze(1))
            .map_err(ml)?;
        self.heads[step].forward(&s)
    }

    /// Log-probabilities `[batch, vocab]` at `step`.
    pub fn log_probs(&self, states: &Tensor, step: usize) -> Result<Tensor> {
        candle_nn::ops::log_softmax(&self.logits(states, step)?, D::Minus1).map_err(ml)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Incremental decoding (with a beam reorder between steps) gives the
    /// same log-probabilities as decoding each whole prefix afresh.
    #[test]
    fn cached_decoding_equals_full_decoding() {
        let shape = GenShape {
            steps: 4,
            vocab: 9,
            d: 16,
            heads: 2,
            encoder_layers: 1,
            decoder_layers: 2,
            ff: 32,
            history: 5,
            dropout: 0.0,
        };
        let net = GenNet::new(
            shape,
            ParamStore::new(Device::Cpu, ChaCha8Rng::seed_from_u64(3)),
        )
        .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let (users, group, len) = (2, 3, 4);
        let hist: Vec<u32> = (0..users * len * shape.steps)
            .map(|i| token_id(&shape, i % shape.steps, rng.gen_range(0..shape.vocab)))
            .collect();
        let valid: Vec<bool> = (0..users * len).map(|i| i != 0).collect();
        let (memory, mask) = net.encode(&hist, &valid, users, len).unwrap();
        let rows = users * group;
        // Row r's written tokens so far; rows are shuffled within a user each step.
        let mut written: Vec<Vec<u32>> = vec![Vec::new(); rows];
        let mut cache = net.start_decoding(&memory).unwrap();
        for step in 0..shape.steps {
            let last: Vec<u32> = written
                .iter()
                .map(|w| w.last().copied().unwrap_or(net.start_id()))
                .collect();
            let cached: Vec<f32> = net
                .decode_next(&mut cache, mask.as_ref(), &last, step, group)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let full_ids: Vec<u32> = written
                .iter()
                .flat_map(|w| std::iter::once(net.start_id()).chain(w.iter().copied()))
                .collect();
            let states = net
                .decode(&memory, mask.as_ref(), &full_ids, (rows, step + 1, group))
                .unwrap();
            let full: Vec<f32> = net
                .log_probs(&states, step)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let worst = cached
                .iter()
                .zip(&full)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                worst < 1e-4,
                "step {step}: cached and full differ by {worst}"
            );
            for w in written.iter_mut() {
                w.push(token_id(&shape, step, rng.gen_range(0..shape.vocab)));
            }
            // Beams follow random parents within their user.
            let parents: Vec<u32> = (0..rows)
                .map(|r| ((r / group) * group + rng.gen_range(0..group)) as u32)
                .collect();
            let mut next = written.clone();
            for (r, &p) in parents.iter().enumerate() {
                next[r] = written[p as usize].clone();
                *next[r].last_mut().unwrap() = *written[r].last().unwrap();
            }
            written = next;
            cache.reorder(&parents).unwrap();
        }
    }
}
