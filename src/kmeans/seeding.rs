//! k-means++ seeding, shared by the spherical and Euclidean variants.

use rand::Rng;
use rayon::prelude::*;

/// Picks `k` of the `d`-wide rows of `points`: the first uniformly, each next
/// one with probability ∝ its `distance` to the nearest row already picked.
pub(super) fn plus_plus<R: Rng>(
    points: &[f32],
    d: usize,
    k: usize,
    rng: &mut R,
    distance: impl Fn(&[f32], &[f32]) -> f32 + Sync,
) -> Vec<f32> {
    let n = points.len() / d;
    let mut centroids = Vec::with_capacity(k * d);
    let first = rng.gen_range(0..n);
    centroids.extend_from_slice(&points[first * d..(first + 1) * d]);
    let mut dist: Vec<f32> = points
        .par_chunks_exact(d)
        .map(|p| distance(p, &centroids[..d]))
        .collect();
    for _ in 1..k {
        let total: f64 = dist.iter().map(|&x| x as f64).sum();
        let pick = if total <= 0.0 {
            rng.gen_range(0..n)
        } else {
            let mut target = rng.r#gen::<f64>() * total;
            dist.iter()
                .position(|&x| {
                    target -= x as f64;
                    target <= 0.0
                })
                .unwrap_or(n - 1)
        };
        let c = points[pick * d..(pick + 1) * d].to_vec();
        dist.par_iter_mut()
            .zip(points.par_chunks_exact(d))
            .for_each(|(best, p)| *best = best.min(distance(p, &c)));
        centroids.extend_from_slice(&c);
    }
    centroids
}
