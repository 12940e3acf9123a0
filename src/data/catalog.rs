//! A synthetic item catalogue that behaves like real e-commerce data, for the
//! demo, tests and benchmarks:
//!
//! * **Zipf-like popularity**: item `r` (in a random order) gets about
//!   `C / (r + 1)^1.1` interactions, at least 1.
//! * **Latent topics** make the content modalities correlated: each item has a
//!   topic, a latent vector near the topic centre, and every content modality
//!   is a fixed random linear view of that latent plus noise (unit-normed).
//! * **Behavior embeddings** point along another view of the latent, with a
//!   direction that gets noisier toward the long tail, and a norm that grows
//!   with log popularity (the premise ADA-SID's alignment and routing use).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::embeddings::{Dataset, Table};
use crate::kmeans::normalize_rows;

/// Shape of a synthetic catalogue.
#[derive(Clone, Debug)]
pub struct CatalogSpec {
    /// Number of items.
    pub items: usize,
    /// Number of latent topics.
    pub topics: usize,
    /// Width of each content modality.
    pub content_dims: Vec<usize>,
    /// Width of the behavior embedding.
    pub behavior_dim: usize,
    /// Random seed.
    pub seed: u64,
}

impl Default for CatalogSpec {
    fn default() -> Self {
        CatalogSpec {
            items: 20_000,
            topics: 400,
            content_dims: vec![96, 64],
            behavior_dim: 32,
            seed: 42,
        }
    }
}

const LATENT: usize = 32;

fn gaussian(rng: &mut ChaCha8Rng) -> f32 {
    // Box–Muller.
    let u1: f32 = rng.gen_range(f32::EPSILON..1.0);
    let u2: f32 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
}

fn random_matrix(rng: &mut ChaCha8Rng, rows: usize, cols: usize) -> Vec<f32> {
    let s = 1.0 / (cols as f32).sqrt();
    (0..rows * cols).map(|_| gaussian(rng) * s).collect()
}

/// `out = m · v` for a `rows × LATENT` matrix.
fn project(m: &[f32], v: &[f32], rows: usize) -> Vec<f32> {
    (0..rows)
        .map(|r| {
            m[r * LATENT..(r + 1) * LATENT]
                .iter()
                .zip(v)
                .map(|(a, b)| a * b)
                .sum()
        })
        .collect()
}

/// Generates the catalogue (keys `item0..`).
pub fn generate(spec: &CatalogSpec) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let n = spec.items;
    let centres: Vec<Vec<f32>> = (0..spec.topics)
        .map(|_| (0..LATENT).map(|_| gaussian(&mut rng)).collect())
        .collect();
    let views: Vec<Vec<f32>> = spec
        .content_dims
        .iter()
        .map(|&d| random_matrix(&mut rng, d, LATENT))
        .collect();
    let behavior_view = random_matrix(&mut rng, spec.behavior_dim, LATENT);
    let mut rank: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        rank.swap(i, rng.gen_range(0..=i));
    }
    let popularity: Vec<f32> = rank
        .iter()
        .map(|&r| {
            (2000.0 / ((r + 1) as f32).powf(1.1) * rng.gen_range(0.7..1.3))
                .max(1.0)
                .round()
        })
        .collect();
    let max_log = popularity.iter().map(|c| c.ln_1p()).fold(0.0f32, f32::max);
    let mut content: Vec<Vec<f32>> = spec
        .content_dims
        .iter()
        .map(|&d| Vec::with_capacity(n * d))
        .collect();
    let mut behavior = Vec::with_capacity(n * spec.behavior_dim);
    for &count in &popularity {
        let topic = rng.gen_range(0..spec.topics);
        let latent: Vec<f32> = centres[topic]
            .iter()
            .map(|c| c + 0.8 * gaussian(&mut rng))
            .collect();
        for ((out, view), &d) in content.iter_mut().zip(&views).zip(&spec.content_dims) {
            out.extend(
                project(view, &latent, d)
                    .into_iter()
                    .map(|x| x + 0.15 * gaussian(&mut rng)),
            );
        }
        let evidence = count.ln_1p() / max_log;
        let mut b: Vec<f32> = project(&behavior_view, &latent, spec.behavior_dim)
            .into_iter()
            .map(|x| x + (1.5 * (1.0 - evidence) + 0.1) * gaussian(&mut rng))
            .collect();
        normalize_rows(&mut b, spec.behavior_dim);
        let norm = 0.5 + 2.5 * evidence;
        behavior.extend(b.into_iter().map(|x| x * norm));
    }
    let content = content
        .into_iter()
        .zip(&spec.content_dims)
        .enumerate()
        .map(|(m, (mut data, &d))| {
            normalize_rows(&mut data, d);
            Table {
                source: format!("synthetic content {m}"),
                rows: n,
                dim: d,
                data,
            }
        })
        .collect();
    Dataset {
        keys: (0..n).map(|i| format!("item{i}")).collect(),
        content,
        behavior: Table {
            source: "synthetic behavior".into(),
            rows: n,
            dim: spec.behavior_dim,
            data: behavior,
        },
        popularity: Some(popularity),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::spearman;

    #[test]
    fn norm_grows_with_popularity_and_modalities_correlate() {
        let d = generate(&CatalogSpec {
            items: 2000,
            ..Default::default()
        });
        assert_eq!(
            d,
            generate(&CatalogSpec {
                items: 2000,
                ..Default::default()
            })
        );
        let norms: Vec<f32> = (0..d.len())
            .map(|i| d.behavior.row(i).iter().map(|x| x * x).sum::<f32>().sqrt())
            .collect();
        let rho = spearman(&norms, d.popularity.as_ref().unwrap());
        assert!(rho > 0.5, "{rho}");
        // Same-topic structure shows up across modalities: item pairs close in
        // one content view are closer than average in the other.
        let cos = |t: &Table, a: usize, b: usize| {
            t.row(a)
                .iter()
                .zip(t.row(b))
                .map(|(x, y)| x * y)
                .sum::<f32>()
        };
        let (mut close, mut all) = (Vec::new(), Vec::new());
        for a in 0..200 {
            for b in a + 1..200 {
                let c1 = cos(&d.content[1], a, b);
                all.push(c1);
                if cos(&d.content[0], a, b) > 0.8 {
                    close.push(c1);
                }
            }
        }
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        assert!(
            !close.is_empty() && mean(&close) > mean(&all) + 0.3,
            "{} vs {}",
            mean(&close),
            mean(&all)
        );
    }
}
