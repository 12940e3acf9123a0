//! The ADA-SID network: projections, shared and modality-specific experts with
//! codebooks, the behavior router, the fusion sum and the decoder.
//!
//! Expert (and SID position) order: shared experts, then each content
//! modality's experts in modality order, then behavior experts.

use candle_core::{D, Device, Tensor};

use super::codebook::Codebook;
use crate::error::Result;
use crate::nn::losses::{info_nce, info_nce_per_item, l2_normalize};
use crate::nn::params::{Mlp, ParamStore, ml};

/// Gradient slope of the router's ReLU below zero.
const ROUTER_LEAK: f64 = 0.05;

/// `ReLU(x)` in the forward pass (exact zeros, so masked behavior SIDs stay
/// masked) with slope `leak` instead of 0 in the backward pass. With a plain
/// ReLU an expert whose router output is negative for every item gets no
/// gradient at all and stays masked for good once λ has pushed it there.
pub fn leaky_gradient_relu(x: &Tensor, leak: f64) -> Result<Tensor> {
    let relu = x.relu().map_err(ml)?;
    let below = ((x - &relu).map_err(ml)? * leak).map_err(ml)?;
    (relu + (&below - below.detach()).map_err(ml)?).map_err(ml)
}

/// Sizes of the network.
#[derive(Clone, Debug, PartialEq)]
pub struct NetShape {
    /// Input width of each content modality.
    pub content_dims: Vec<usize>,
    /// Input width of the behavior embedding.
    pub behavior_dim: usize,
    /// Hidden width of every two-layer MLP.
    pub hidden: usize,
    /// Common width of the projected modalities.
    pub width: usize,
    /// Width of expert outputs and code vectors.
    pub code_dim: usize,
    /// Codebook size K.
    pub k: usize,
    /// Shared experts (read all projected modalities).
    pub shared: usize,
    /// Experts per content modality.
    pub per_content: usize,
    /// Behavior experts (routed).
    pub behavior: usize,
}

impl NetShape {
    /// Tokens per item (one per expert).
    pub fn experts(&self) -> usize {
        self.shared + self.per_content * self.content_dims.len() + self.behavior
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    #[test]
    fn router_relu_makes_exact_zeros_but_passes_gradient() {
        let x = Var::new(&[-2.0f32, -0.5, 0.0, 1.5], &Device::Cpu).unwrap();
        let y = leaky_gradient_relu(x.as_tensor(), 0.05).unwrap();
        assert_eq!(y.to_vec1::<f32>().unwrap(), vec![0.0, 0.0, 0.0, 1.5]);
        let g = y.sum_all().unwrap().backward().unwrap();
        let g = g.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        // At exactly 0 the ReLU subgradient is 1.
        assert_eq!(g, vec![0.05, 0.05, 1.0, 1.0]);
    }
}

/// What an expert reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Input {
    /// Every projected modality, concatenated.
    Shared,
    /// One content modality's projection.
    Content(usize),
    /// The behavior projection.
    Behavior,
}

impl NetShape {
    /// Each expert's input, in expert order: shared, each content
    /// modality's, behavior.
    pub(super) fn inputs(&self) -> Vec<Input> {
        let mut inputs = vec![Input::Shared; self.shared];
        for m in 0..self.content_dims.len() {
            inputs.extend(std::iter::repeat_n(Input::Content(m), self.per_content));
        }
        inputs.extend(std::iter::repeat_n(Input::Behavior, self.behavior));
        inputs
    }
}

struct Expert {
    input: Input,
    encoder: Mlp,
    codebook: Codebook,
}

/// One batch of inputs on the network's device.
pub struct Batch {
    /// `[B, d_m]` per content modality.
    pub content: Vec<Tensor>,
    /// `[B, d_b]` raw (not normalised) behavior embeddings.
    pub behavior: Tensor,
    /// `[B, 1]` behavior evidence N_norm in [0, 1].
    pub n_norm: Tensor,
    /// `[1, N_b]` the offset `b` added to the router's output before the ReLU
    /// (set by the sparsity controller, not by gradients).
    pub router_offset: Tensor,
}

/// Switches that change the forward pass (the paper's ablations).
#[derive(Clone, Copy, Debug, Default)]
pub struct ForwardOptions {
    /// Every behavior SID gets weight 1 (no router, nothing masked).
    pub equal_routing: bool,
    /// Commitment weight of the VQ loss.
    pub commitment: f64,
    /// InfoNCE temperature.
    pub tau: f64,
}

/// What one forward pass produces.
pub struct Forward {
    /// Token of each expert, `[B]` u32 each.
    pub tokens: Vec<Tensor>,
    /// Unit-norm expert outputs (before quantisation), `[B, code_dim]` each.
    pub latents: Vec<Tensor>,
    /// Behavior routing weights `[B, N_b]` (exact zeros mask).
    pub routing: Tensor,
    /// Σ over modalities of the batch-mean squared reconstruction error.
    pub recon: Tensor,
    /// Σ over experts of codebook + commitment loss.
    pub vq: Tensor,
    /// Content–content InfoNCE (mean over modality pairs; 0 with one modality).
    pub content: Tensor,
    /// Per-item behavior–content InfoNCE, `[B]`.
    pub align_per_item: Tensor,
}

/// The ADA-SID network and its parameters.
pub struct AdaSidNet {
    shape: NetShape,
    projections: Vec<Mlp>,
    experts: Vec<Expert>,
    router: Mlp,
    decoder: Mlp,
    params: ParamStore,
}

impl AdaSidNet {
    /// Builds a freshly initialised network.
    pub fn new(shape: NetShape, mut params: ParamStore) -> Result<Self> {
        let (h, w, c) = (shape.hidden, shape.width, shape.code_dim);
        let mut projections = Vec::new();
        for (m, &d) in shape.content_dims.iter().enumerate() {
            projections.push(Mlp::new(
                &mut params,
                &format!("proj.content{m}"),
                &[d, h, w],
            )?);
        }
        projections.push(Mlp::new(
            &mut params,
            "proj.behavior",
            &[shape.behavior_dim, h, w],
        )?);
        let modalities = shape.content_dims.len() + 1;
        let mut experts = Vec::new();
        for (i, input) in shape.inputs().into_iter().enumerate() {
            let fan_in = if input == Input::Shared {
                w * modalities
            } else {
                w
            };
            experts.push(Expert {
                input,
                encoder: Mlp::new(&mut params, &format!("expert{i}"), &[fan_in, h, c])?,
                codebook: Codebook::new(&mut params, &format!("codebook{i}"), shape.k, c)?,
            });
        }
        let router = Mlp::new(
            &mut params,
            "router",
            &[shape.behavior_dim, h, shape.behavior.max(1)],
        )?;
        let out: usize = shape.content_dims.iter().sum::<usize>() + shape.behavior_dim;
        let decoder = Mlp::new(&mut params, "decoder", &[c, h, out])?;
        Ok(AdaSidNet {
            shape,
            projections,
            experts,
            router,
            decoder,
            params,
        })
    }

    /// The sizes.
    pub fn shape(&self) -> &NetShape {
        &self.shape
    }

    /// The parameter registry (optimiser, save, load).
    pub fn params(&self) -> &ParamStore {
        &self.params
    }

    /// The device.
    pub fn device(&self) -> &Device {
        self.params.device()
    }

    /// Codebook of expert `i`.
    pub fn codebook(&self, i: usize) -> &Codebook {
        &self.experts[i].codebook
    }

    fn project(&self, batch: &Batch) -> Result<Vec<Tensor>> {
        let inputs = batch.content.iter().chain(std::iter::once(&batch.behavior));
        inputs
            .zip(&self.projections)
            .map(|(x, p)| p.forward(x))
            .collect()
    }

    fn latent(
        &self,
        expert: &Expert,
        projected: &[Tensor],
        shared_input: &Tensor,
    ) -> Result<Tensor> {
        let x = match expert.input {
            Input::Shared => shared_input,
            Input::Content(m) => &projected[m],
            Input::Behavior => projected.last().expect("behavior projection"),
        };
        l2_normalize(&expert.encoder.forward(x)?)
    }

    /// Routing weights `σ(N_norm) · ReLU(MLP(e_b) + b)`, or all ones.
    fn routing(&self, batch: &Batch, equal: bool) -> Result<Tensor> {
        let n = batch.behavior.dim(0).map_err(ml)?;
        if equal {
            return Tensor::ones(
                (n, self.shape.behavior),
                candle_core::DType::F32,
                self.device(),
            )
            .map_err(ml);
        }
        let gate = candle_nn::ops::sigmoid(&batch.n_norm).map_err(ml)?;
        let pre = self
            .router
            .forward(&batch.behavior)?
            .broadcast_add(&batch.router_offset)
            .map_err(ml)?;
        let r = leaky_gradient_relu(&pre, ROUTER_LEAK)?;
        r.broadcast_mul(&gate).map_err(ml)
    }

    /// Unit-norm expert outputs before quantisation (no losses).
    pub fn latents(&self, batch: &Batch) -> Result<Vec<Tensor>> {
        let projected = self.project(batch)?;
        let shared_input = Tensor::cat(&projected, D::Minus1).map_err(ml)?;
        self.experts
            .iter()
            .map(|e| self.latent(e, &projected, &shared_input))
            .collect()
    }

    /// Tokens and routing weights only (no losses, no graph kept by the
    /// caller): the reference `plain::PlainEncoder` is held to.
    #[cfg(test)]
    pub fn encode(&self, batch: &Batch, equal_routing: bool) -> Result<(Vec<Tensor>, Tensor)> {
        let projected = self.project(batch)?;
        let shared_input = Tensor::cat(&projected, D::Minus1).map_err(ml)?;
        let tokens = self
            .experts
            .iter()
            .map(|e| {
                e.codebook
                    .nearest(&self.latent(e, &projected, &shared_input)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((tokens, self.routing(batch, equal_routing)?.detach()))
    }

    /// Shifts the decoder's output bias so that its mean reconstruction of
    /// `batch` equals the inputs' mean. Otherwise the reconstruction error
    /// starts with a large part shared by every item (the data mean), whose
    /// gradient turns every item's latent the same way at once, and cosine
    /// matching then sends them all to one code.
    pub fn centre_decoder(&self, batch: &Batch, equal_routing: bool) -> Result<()> {
        let mut targets: Vec<&Tensor> = batch.content.iter().collect();
        targets.push(&batch.behavior);
        let target = Tensor::cat(&targets, D::Minus1).map_err(ml)?;
        let mean = |t: &Tensor| t.mean(0).map_err(ml);
        let delta =
            (mean(&self.reconstruct(batch, equal_routing)?)? - mean(&target)?).map_err(ml)?;
        self.decoder.shift_output(&delta)
    }

    /// The decoder's output from hard codes (behavior codes scaled by their
    /// routing weights): what the SIDs alone say about the inputs.
    pub fn reconstruct(&self, batch: &Batch, equal_routing: bool) -> Result<Tensor> {
        let projected = self.project(batch)?;
        let shared_input = Tensor::cat(&projected, D::Minus1).map_err(ml)?;
        let routing = self.routing(batch, equal_routing)?;
        let first_behavior = self.experts.len() - self.shape.behavior;
        let mut fused: Option<Tensor> = None;
        for (i, e) in self.experts.iter().enumerate() {
            let z = self.latent(e, &projected, &shared_input)?;
            let codes = e.codebook.normalized()?;
            let tokens = e.codebook.nearest(&z)?;
            let mut q = codes.index_select(&tokens, 0).map_err(ml)?;
            if i >= first_behavior {
                let r = routing.narrow(1, i - first_behavior, 1).map_err(ml)?;
                q = q.broadcast_mul(&r).map_err(ml)?;
            }
            fused = Some(match fused {
                Some(f) => (f + q).map_err(ml)?,
                None => q,
            });
        }
        self.decoder
            .forward(&fused.expect("at least one expert"))
            .map(|t| t.detach())
    }

    /// The training forward pass with every loss term.
    pub fn forward(&self, batch: &Batch, opts: &ForwardOptions) -> Result<Forward> {
        let projected = self.project(batch)?;
        let shared_input = Tensor::cat(&projected, D::Minus1).map_err(ml)?;
        let routing = self.routing(batch, opts.equal_routing)?;
        let first_behavior = self.experts.len() - self.shape.behavior;
        let (mut tokens, mut latents, mut vq, mut fused) =
            (Vec::new(), Vec::new(), Vec::new(), None::<Tensor>);
        for (i, e) in self.experts.iter().enumerate() {
            let z = self.latent(e, &projected, &shared_input)?;
            let q = e.codebook.quantize(&z, opts.commitment)?;
            let mut contribution = q.straight_through;
            if i >= first_behavior {
                let r = routing.narrow(1, i - first_behavior, 1).map_err(ml)?;
                contribution = contribution.broadcast_mul(&r).map_err(ml)?;
            }
            fused = Some(match fused {
                Some(f) => (f + contribution).map_err(ml)?,
                None => contribution,
            });
            tokens.push(q.tokens);
            latents.push(z.detach());
            vq.push(q.loss);
        }
        let recon_all = self.decoder.forward(&fused.expect("at least one expert"))?;
        let mut recon_terms = Vec::new();
        let mut offset = 0;
        for x in batch.content.iter().chain(std::iter::once(&batch.behavior)) {
            let d = x.dim(1).map_err(ml)?;
            let xhat = recon_all.narrow(1, offset, d).map_err(ml)?;
            offset += d;
            recon_terms.push(
                (x - xhat)
                    .and_then(|e| e.sqr())
                    .and_then(|e| e.sum(D::Minus1))
                    .and_then(|e| e.mean_all())
                    .map_err(ml)?,
            );
        }
        let sum = |ts: Vec<Tensor>| -> Result<Tensor> {
            Tensor::stack(&ts, 0).and_then(|t| t.sum_all()).map_err(ml)
        };
        let content_modalities = batch.content.len();
        let mut pairs = Vec::new();
        for a in 0..content_modalities {
            for b in a + 1..content_modalities {
                pairs.push(info_nce(&projected[a], &projected[b], opts.tau)?);
            }
        }
        let content = if pairs.is_empty() {
            Tensor::zeros((), candle_core::DType::F32, self.device()).map_err(ml)?
        } else {
            let n = pairs.len() as f64;
            (sum(pairs)? / n).map_err(ml)?
        };
        let content_sum = projected[..content_modalities]
            .iter()
            .skip(1)
            .try_fold(projected[0].clone(), |acc, h| acc + h)
            .map_err(ml)?;
        let align_per_item =
            info_nce_per_item(&content_sum, projected.last().expect("behavior"), opts.tau)?;
        Ok(Forward {
            tokens,
            latents,
            routing,
            recon: sum(recon_terms)?,
            vq: sum(vq)?,
            content,
            align_per_item,
        })
    }
}
