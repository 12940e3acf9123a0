//! Spherical k-means (cosine similarity), used to initialise codebooks.
//!
//! Iterates until no assignment changes or `max_iter` rounds, never on a
//! float tolerance: stopping on rounding leaves clusters half-formed and
//! inflates SID collisions. Seeded k-means++ start; an emptied cluster is
//! re-seeded with the point farthest from its centroid.

use candle_core::{D, Device, Tensor};
use rand::Rng;
use rayon::prelude::*;

use super::seeding::plus_plus;

/// Result of a clustering run.
#[derive(Clone, Debug)]
pub struct Clustering {
    /// `k × d` unit-norm centroids, row-major.
    pub centroids: Vec<f32>,
    /// Cluster of each point.
    pub assignments: Vec<u32>,
    /// Rounds run (assignment passes after the initial one).
    pub iterations: usize,
    /// Whether assignments stopped changing before `max_iter`.
    pub converged: bool,
}

/// Scales each `d`-wide row of `data` to unit L2 norm (zero rows stay zero).
pub fn normalize_rows(data: &mut [f32], d: usize) {
    data.par_chunks_mut(d).for_each(|row| {
        let n = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        if n > 0.0 {
            row.iter_mut().for_each(|x| *x /= n);
        }
    });
}

/// Dot product with eight independent accumulators, so the compiler can use
/// SIMD lanes (a single running float sum has a fixed order and cannot).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Best centroid (highest cosine) of each point, with that similarity: one
/// matrix product (gemm) and a row-wise argmax.
fn assign(points: &Tensor, centroids: &[f32], k: usize, d: usize) -> Vec<(u32, f32)> {
    let c = Tensor::from_slice(centroids, (k, d), &Device::Cpu).expect("centroid shape");
    let sims = points
        .matmul(&c.t().expect("2-D"))
        .expect("matching shapes");
    let best: Vec<u32> = sims
        .argmax(D::Minus1)
        .and_then(|t| t.to_vec1())
        .expect("argmax");
    let top: Vec<f32> = sims.max(D::Minus1).and_then(|t| t.to_vec1()).expect("max");
    best.into_iter().zip(top).collect()
}

/// Clusters the `n = points.len() / d` unit-norm rows into `k` clusters.
/// With fewer points than clusters, the surplus centroids repeat points.
pub fn spherical_kmeans<R: Rng>(
    points: &[f32],
    d: usize,
    k: usize,
    max_iter: usize,
    rng: &mut R,
) -> Clustering {
    let n = points.len() / d;
    assert!(
        n > 0 && k > 0 && d > 0,
        "k-means needs points, clusters and a dimension"
    );
    let mut centroids = plus_plus(points, d, k.min(n), rng, |p, c| (1.0 - dot(p, c)).max(0.0));
    while centroids.len() < k * d {
        let p = rng.gen_range(0..n);
        centroids.extend_from_slice(&points[p * d..(p + 1) * d]);
    }
    let matrix = Tensor::from_slice(points, (n, d), &Device::Cpu).expect("point shape");
    let mut best = assign(&matrix, &centroids, k, d);
    let mut assignments: Vec<u32> = best.iter().map(|(c, _)| *c).collect();
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iter {
        iterations += 1;
        let mut sums = vec![0f32; k * d];
        let mut counts = vec![0usize; k];
        for (p, &c) in points.chunks(d).zip(&assignments) {
            counts[c as usize] += 1;
            sums[c as usize * d..(c as usize + 1) * d]
                .iter_mut()
                .zip(p)
                .for_each(|(s, x)| *s += x);
        }
        normalize_rows(&mut sums, d);
        let mut taken = vec![false; n];
        for c in (0..k).filter(|&c| counts[c] == 0) {
            // The point least like its centroid (not yet used) starts the empty cluster.
            let far = (0..n)
                .filter(|&i| !taken[i])
                .min_by(|&a, &b| best[a].1.total_cmp(&best[b].1));
            match far {
                Some(f) if n >= k => {
                    taken[f] = true;
                    sums[c * d..(c + 1) * d].copy_from_slice(&points[f * d..(f + 1) * d]);
                }
                _ => sums[c * d..(c + 1) * d].copy_from_slice(&centroids[c * d..(c + 1) * d]),
            }
        }
        centroids = sums;
        best = assign(&matrix, &centroids, k, d);
        let next: Vec<u32> = best.iter().map(|(c, _)| *c).collect();
        let changed = next != assignments;
        assignments = next;
        if !changed {
            converged = true;
            break;
        }
    }
    Clustering {
        centroids,
        assignments,
        iterations,
        converged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn separates_clear_clusters_and_stops_on_stable_assignments() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let centers = [[1.0f32, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let mut pts = Vec::new();
        for i in 0..300 {
            let c = centers[i % 3];
            pts.extend(c.iter().map(|x| x + rng.gen_range(-0.1..0.1)));
        }
        normalize_rows(&mut pts, 3);
        let r = spherical_kmeans(&pts, 3, 3, 100, &mut rng);
        assert!(r.converged && r.iterations < 100);
        for i in 0..300 {
            assert_eq!(r.assignments[i], r.assignments[i % 3], "point {i}");
        }
        let distinct: std::collections::HashSet<u32> = r.assignments.iter().copied().collect();
        assert_eq!(distinct.len(), 3);
    }

    #[test]
    fn more_clusters_than_points() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let pts = vec![1.0, 0.0, 0.0, 1.0];
        let r = spherical_kmeans(&pts, 2, 5, 10, &mut rng);
        assert_eq!(r.centroids.len(), 10);
    }
}
