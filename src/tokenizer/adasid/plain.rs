//! ADA-SID's encoder over fixed weights in plain Rust: what `encode` runs.
//! Batches of a few hundred items go to every core at once, each product
//! one serial `gemm`; candle's graph would cost a few microseconds per
//! operation and allocate every intermediate. A test holds it to the
//! candle pass (`AdaSidNet::encode`).

use super::net::{AdaSidNet, Input};
use crate::error::Result;
use crate::kmeans::{View, matmul_serial};
use crate::nn::dense::DenseMlp;

/// Layers per projection, expert and router MLP.
const LAYERS: usize = 2;

/// Copied weights of a trained network.
pub(super) struct PlainEncoder {
    /// Each content modality's projection, then the behavior projection.
    projections: Vec<DenseMlp>,
    experts: Vec<(Input, DenseMlp)>,
    /// Each expert's unit-length codes, `K × code_dim`.
    codes: Vec<Vec<f32>>,
    router: DenseMlp,
    k: usize,
}

/// One batch of inputs: each content table's rows, the behavior rows, and
/// each row's N_norm.
pub(super) struct Rows<'a> {
    pub content: &'a [Vec<f32>],
    pub behavior: &'a [f32],
    pub n_norm: &'a [f32],
}

impl PlainEncoder {
    /// Copies `net`'s weights.
    pub(super) fn new(net: &AdaSidNet) -> Result<Self> {
        let (params, shape) = (net.params(), net.shape());
        let mut projections = (0..shape.content_dims.len())
            .map(|m| DenseMlp::load(params, &format!("proj.content{m}"), LAYERS))
            .collect::<Result<Vec<_>>>()?;
        projections.push(DenseMlp::load(params, "proj.behavior", LAYERS)?);
        let experts = shape
            .inputs()
            .into_iter()
            .enumerate()
            .map(|(i, input)| {
                Ok((
                    input,
                    DenseMlp::load(params, &format!("expert{i}"), LAYERS)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let codes = (0..experts.len())
            .map(|i| net.codebook(i).rows())
            .collect::<Result<_>>()?;
        Ok(PlainEncoder {
            projections,
            experts,
            codes,
            router: DenseMlp::load(params, "router", LAYERS)?,
            k: shape.k,
        })
    }

    /// Each row's token per expert (`rows × experts`) and routing weights
    /// (`rows × behavior experts`): `σ(N_norm) · ReLU(router + offsets)`,
    /// or all ones with `equal_routing`.
    pub(super) fn encode(
        &self,
        x: &Rows<'_>,
        offsets: &[f32],
        equal_routing: bool,
    ) -> (Vec<u32>, Vec<f32>) {
        let rows = x.n_norm.len();
        let mut projected: Vec<Vec<f32>> = x
            .content
            .iter()
            .zip(&self.projections)
            .map(|(t, p)| p.apply(t, rows))
            .collect();
        projected.push(
            self.projections
                .last()
                .expect("behavior")
                .apply(x.behavior, rows),
        );
        let shared = concat_rows(&projected, rows);
        let e = self.experts.len();
        let mut tokens = vec![0u32; rows * e];
        for (j, ((input, mlp), codes)) in self.experts.iter().zip(&self.codes).enumerate() {
            let input = match *input {
                Input::Shared => &shared,
                Input::Content(m) => &projected[m],
                Input::Behavior => projected.last().expect("behavior"),
            };
            let z = mlp.apply(input, rows);
            let c = mlp.out();
            // z is not normalised: a positive scale does not move the argmax.
            let sims = matmul_serial(View::new(&z, rows, c), View::new(codes, self.k, c).t(), 1.0);
            for (r, row) in sims.chunks(self.k).enumerate() {
                tokens[r * e + j] = first_max(row);
            }
        }
        let nb = offsets.len();
        let routing = match equal_routing {
            true => vec![1.0; rows * nb],
            false => {
                let mut pre = self.router.apply(x.behavior, rows);
                for (r, row) in pre.chunks_mut(nb).enumerate() {
                    let gate = 1.0 / (1.0 + (-x.n_norm[r]).exp());
                    for (v, o) in row.iter_mut().zip(offsets) {
                        *v = (*v + o).max(0.0) * gate;
                    }
                }
                pre
            }
        };
        (tokens, routing)
    }
}

/// Index of the first largest value.
fn first_max(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Tables of `rows` rows each, side by side.
fn concat_rows(tables: &[Vec<f32>], rows: usize) -> Vec<f32> {
    let width: usize = tables.iter().map(|t| t.len() / rows.max(1)).sum();
    let mut out = Vec::with_capacity(rows * width);
    for r in 0..rows {
        for t in tables {
            let w = t.len() / rows;
            out.extend_from_slice(&t[r * w..(r + 1) * w]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::data::catalog::{CatalogSpec, generate};
    use crate::nn::params::ml;
    use crate::tokenizer::adasid::AdaSid;
    use crate::tokenizer::config::AdaSidConfig;

    fn check(cfg: AdaSidConfig) {
        let data = generate(&CatalogSpec {
            items: 700,
            topics: 30,
            content_dims: vec![24, 16],
            behavior_dim: 12,
            seed: 3,
        });
        let (model, _) = AdaSid::train(cfg, &data, Device::Cpu, |_| {}).unwrap();
        let idx: Vec<usize> = (0..data.len()).collect();
        let norms = model.n_norms(&data).unwrap();
        let offsets = &model.meta.router_offsets;
        let equal = model.cfg.ablation.no_behavior_routing;
        let batch = model.batch(&data, &idx, &norms, offsets).unwrap();
        let (want_tokens, want_routing) = model.net.encode(&batch, equal).unwrap();
        let content: Vec<Vec<f32>> = data.content.iter().map(|t| t.data.clone()).collect();
        let rows = Rows {
            content: &content,
            behavior: &data.behavior.data,
            n_norm: &norms,
        };
        let plain = PlainEncoder::new(&model.net).unwrap();
        let (tokens, routing) = plain.encode(&rows, offsets, equal);
        let e = want_tokens.len();
        for (j, t) in want_tokens.iter().enumerate() {
            let t: Vec<u32> = t.to_vec1().map_err(ml).unwrap();
            let got: Vec<u32> = (0..data.len()).map(|r| tokens[r * e + j]).collect();
            assert_eq!(got, t, "expert {j}");
        }
        let want: Vec<f32> = want_routing.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(routing.len(), want.len());
        for (a, b) in routing.iter().zip(&want) {
            assert!(
                (a - b).abs() < 1e-5 && (*a == 0.0) == (*b == 0.0),
                "{a} {b}"
            );
        }
        assert!(routing.iter().any(|&w| w == 0.0) != equal);
    }

    fn small() -> AdaSidConfig {
        AdaSidConfig {
            codebook_size: 16,
            hidden: 32,
            width: 16,
            code_dim: 8,
            epochs: 3,
            batch_size: 128,
            kmeans_sample: 512,
            ..AdaSidConfig::default()
        }
    }

    #[test]
    fn matches_the_candle_encoder() {
        check(small());
        let mut equal = small();
        equal.ablation.no_behavior_routing = true;
        check(equal);
    }
}
