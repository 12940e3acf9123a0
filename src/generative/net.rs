//! The generative retriever's network: an encoder over the user's recent
//! items (each item the sum of its SID tokens' embeddings) and a decoder
//! that writes the next item's SID one token at a time, cross-attending to
//! the encoder's output.

use candle_core::{D, Device, Tensor, Var};

use super::layers::{DecoderBlock, Dropout, EncoderBlock, LayerNorm, MASKED};
use crate::error::Result;
use crate::model::ParamStore;
use crate::model::params::{Linear, ml};

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
        let encoder = (0..shape.encoder_layers)
            .map(|i| {
                EncoderBlock::new(
                    &mut params,
                    &format!("encoder.{i}"),
                    d,
                    shape.heads,
                    shape.ff,
                )
            })
            .collect::<Result<_>>()?;
        let encoder_norm = LayerNorm::new(&mut params, "encoder.norm", d)?;
        let decoder = (0..shape.decoder_layers)
            .map(|i| {
                DecoderBlock::new(
                    &mut params,
                    &format!("decoder.{i}"),
                    d,
                    shape.heads,
                    shape.ff,
                )
            })
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
        let idx = Tensor::from_slice(ids, ids.len(), dev).map_err(ml)?;
        let mut y = self
            .decoder_embedding
            .as_tensor()
            .index_select(&idx, 0)
            .and_then(|e| e.reshape((batch, len, self.shape.d)))
            .and_then(|e| e.broadcast_add(&self.step_position.as_tensor().narrow(0, 0, len)?))
            .map_err(ml)?;
        y = self.dropout.apply(y)?;
        let causal: Vec<f32> = (0..len * len)
            .map(|i| if i % len > i / len { MASKED } else { 0.0 })
            .collect();
        let causal = Tensor::from_vec(causal, (1, 1, len, len), dev).map_err(ml)?;
        for block in &self.decoder {
            y = block.forward(&y, &causal, memory, memory_mask, group, &self.dropout)?;
        }
        self.decoder_norm.forward(&y)
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
