//! Euclidean (L2) k-means, the building block of residual quantisation.
//!
//! Follows FAISS's recipe so results are comparable: train on at most
//! `max_points_per_centroid · k` sampled points, a fixed number of Lloyd
//! rounds, and nearest-centroid search as `argmin_c ‖c‖² − 2 x·c` from one
//! gemm per block of rows. Starts from k-means++ on a small sample (cheap,
//! and steadier than FAISS's random start); an emptied cluster takes the
//! point farthest from its centroid.

use gemm::{Parallelism, gemm};
use rand::Rng;
use rand::seq::index::sample;
use rayon::prelude::*;

use super::seeding::plus_plus;
use super::spherical::dot;

/// Rows per gemm block: a block's scores (`BLOCK × k` floats) stay in L2 cache.
const BLOCK: usize = 1024;

/// Settings of one Euclidean k-means run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EuclideanParams {
    /// Clusters.
    pub k: usize,
    /// Lloyd rounds at most (stops early when no assignment changes).
    pub iterations: usize,
    /// Training sample cap per cluster (FAISS's default is 256).
    pub max_points_per_centroid: usize,
    /// Points per cluster in the k-means++ seeding sample.
    pub seed_points_per_centroid: usize,
}

impl Default for EuclideanParams {
    fn default() -> Self {
        EuclideanParams {
            k: 256,
            iterations: 20,
            max_points_per_centroid: 256,
            seed_points_per_centroid: 16,
        }
    }
}

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// `scores[i·k + j] = −2 · rows_i · centroids_j` for one block of rows.
fn block_scores(rows: &[f32], d: usize, centroids: &[f32], k: usize, scores: &mut [f32]) {
    let m = rows.len() / d;
    // Checked in release too: the gemm call below trusts these extents.
    assert!(
        d > 0 && rows.len() == m * d && scores.len() >= m * k && centroids.len() == k * d,
        "block_scores: buffers do not match m = {m}, d = {d}, k = {k}"
    );
    // SAFETY: every pointer addresses a live slice whose extent matches the
    // given sizes and strides: dst m×k row-major, lhs m×d row-major, rhs the
    // transpose of the k×d row-major centroids (row stride 1, column stride d).
    unsafe {
        gemm(
            m,
            k,
            d,
            scores.as_mut_ptr(),
            1,
            k as isize,
            false,
            rows.as_ptr(),
            1,
            d as isize,
            centroids.as_ptr(),
            d as isize,
            1,
            0.0,
            -2.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// Nearest centroid of every `d`-wide row of `points`, with the squared
/// distance to it. Runs on the current rayon pool, one gemm per block.
///
/// # Panics
/// If `d` or `k` is 0, `points` is not a whole number of rows, or
/// `centroids` does not hold exactly `k` rows of `d`.
pub fn nearest(points: &[f32], d: usize, centroids: &[f32], k: usize) -> Vec<(u32, f32)> {
    assert!(
        d > 0 && k > 0 && points.len().is_multiple_of(d) && centroids.len() == k * d,
        "nearest: {} points values and {} centroid values do not fit d = {d}, k = {k}",
        points.len(),
        centroids.len()
    );
    let norms: Vec<f32> = centroids.chunks_exact(d).map(|c| dot(c, c)).collect();
    let mut out = vec![(0u32, 0f32); points.len() / d];
    points
        .par_chunks(BLOCK * d)
        .zip(out.par_chunks_mut(BLOCK))
        .for_each_init(
            || vec![0f32; BLOCK * k],
            |scores, (rows, best)| {
                block_scores(rows, d, centroids, k, scores);
                for ((row, s), b) in rows.chunks_exact(d).zip(scores.chunks_exact(k)).zip(best) {
                    let (arg, min) = argmin_plus(s, &norms);
                    *b = (arg, (dot(row, row) + min).max(0.0));
                }
            },
        );
    out
}

/// `argmin_j s_j + n_j` and its value; lane-wise so it vectorises. Ties go
/// to the lowest index.
fn argmin_plus(s: &[f32], n: &[f32]) -> (u32, f32) {
    const LANES: usize = 16;
    let mut min = [f32::INFINITY; LANES];
    let mut arg = [0u32; LANES];
    let (cs, cn) = (s.chunks_exact(LANES), n.chunks_exact(LANES));
    let (rs, rn) = (cs.remainder(), cn.remainder());
    for (block, (x, y)) in cs.zip(cn).enumerate() {
        for l in 0..LANES {
            let v = x[l] + y[l];
            let better = v < min[l];
            min[l] = if better { v } else { min[l] };
            arg[l] = if better {
                (block * LANES + l) as u32
            } else {
                arg[l]
            };
        }
    }
    let base = s.len() - rs.len();
    let (mut best_arg, mut best) = (0u32, f32::INFINITY);
    for l in 0..LANES {
        if min[l] < best || (min[l] == best && arg[l] < best_arg) {
            (best_arg, best) = (arg[l], min[l]);
        }
    }
    for (j, (x, y)) in rs.iter().zip(rn).enumerate() {
        if x + y < best {
            (best_arg, best) = ((base + j) as u32, x + y);
        }
    }
    (best_arg, best)
}

pub(crate) fn gather(points: &[f32], d: usize, rows: impl Iterator<Item = usize>) -> Vec<f32> {
    rows.flat_map(|i| &points[i * d..(i + 1) * d])
        .copied()
        .collect()
}

/// Mean of each cluster; an empty cluster takes the farthest unused point.
fn update(points: &[f32], d: usize, k: usize, best: &[(u32, f32)]) -> Vec<f32> {
    let mut sums = vec![0f32; k * d];
    let mut counts = vec![0u32; k];
    for (p, &(c, _)) in points.chunks_exact(d).zip(best) {
        counts[c as usize] += 1;
        sums[c as usize * d..(c as usize + 1) * d]
            .iter_mut()
            .zip(p)
            .for_each(|(s, x)| *s += x);
    }
    let empty: Vec<usize> = (0..k).filter(|&c| counts[c] == 0).collect();
    if !empty.is_empty() {
        let mut far: Vec<usize> = (0..best.len()).collect();
        far.sort_unstable_by(|&a, &b| best[b].1.total_cmp(&best[a].1).then(a.cmp(&b)));
        for (&c, &p) in empty.iter().zip(&far) {
            sums[c * d..(c + 1) * d].copy_from_slice(&points[p * d..(p + 1) * d]);
            counts[c] = 1;
        }
    }
    for (s, &n) in sums.chunks_exact_mut(d).zip(&counts) {
        let inv = 1.0 / n.max(1) as f32;
        s.iter_mut().for_each(|x| *x *= inv);
    }
    sums
}

/// Trains `p.k` centroids (`k × d`, row-major) on the rows of `points`.
/// With fewer distinct points than clusters some centroids coincide.
pub fn train_euclidean<R: Rng>(
    points: &[f32],
    d: usize,
    p: &EuclideanParams,
    rng: &mut R,
) -> Vec<f32> {
    let n = points.len() / d;
    assert!(
        n > 0 && p.k > 0 && d > 0,
        "k-means needs points, clusters and a dimension"
    );
    let cap = p.k.saturating_mul(p.max_points_per_centroid.max(1));
    let owned;
    let train: &[f32] = if n > cap {
        owned = gather(points, d, sample(rng, n, cap).into_iter());
        &owned
    } else {
        points
    };
    let n_train = train.len() / d;
    let seed_n = n_train.min(p.k.saturating_mul(p.seed_points_per_centroid.max(1)));
    let seeds = gather(train, d, sample(rng, n_train, seed_n).into_iter());
    let mut centroids = plus_plus(&seeds, d, p.k.min(seed_n), rng, squared_distance);
    while centroids.len() < p.k * d {
        let i = rng.gen_range(0..n_train);
        centroids.extend_from_slice(&train[i * d..(i + 1) * d]);
    }
    refine(train, d, centroids, p.iterations)
}

/// Up to `iterations` Lloyd rounds from `centroids` (`k × d`) over every
/// row of `points`. Each round: assign, then move centroids to the means;
/// unchanged assignments mean the centroids are already those means.
pub fn refine(points: &[f32], d: usize, mut centroids: Vec<f32>, iterations: usize) -> Vec<f32> {
    let k = centroids.len() / d;
    let mut previous: Vec<u32> = Vec::new();
    for _ in 0..iterations {
        let best = nearest(points, d, &centroids, k);
        if best.iter().map(|b| b.0).eq(previous.iter().copied()) {
            break;
        }
        centroids = update(points, d, k, &best);
        previous = best.iter().map(|b| b.0).collect();
    }
    centroids
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn brute_nearest(points: &[f32], d: usize, centroids: &[f32]) -> Vec<u32> {
        points
            .chunks_exact(d)
            .map(|p| {
                let dists: Vec<f32> = centroids
                    .chunks_exact(d)
                    .map(|c| squared_distance(p, c))
                    .collect();
                (0..dists.len())
                    .min_by(|&a, &b| dists[a].total_cmp(&dists[b]))
                    .unwrap() as u32
            })
            .collect()
    }

    #[test]
    #[should_panic(expected = "do not fit")]
    fn nearest_refuses_short_centroids() {
        // One centroid value short: the gemm would read past the buffer.
        nearest(&[0.0; 8], 4, &[0.0; 7], 2);
    }

    #[test]
    fn nearest_agrees_with_brute_force_across_blocks() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (n, d, k) = (BLOCK * 2 + 37, 13, 29);
        let points: Vec<f32> = (0..n * d).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let centroids: Vec<f32> = (0..k * d).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let fast = nearest(&points, d, &centroids, k);
        let brute = brute_nearest(&points, d, &centroids);
        for (i, ((c, dist), b)) in fast.iter().zip(&brute).enumerate() {
            let row = &points[i * d..(i + 1) * d];
            let exact = squared_distance(row, &centroids[*b as usize * d..(*b as usize + 1) * d]);
            // Equal, or a float tie between two centroids at the same distance.
            assert!(c == b || (exact - dist).abs() < 1e-4, "row {i}");
            assert!((exact - dist).abs() < 1e-4, "row {i}: {dist} vs {exact}");
        }
    }

    #[test]
    fn recovers_separated_clusters() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let centers = [[5.0f32, 0.0], [0.0, 5.0], [-5.0, -5.0], [5.0, 5.0]];
        let mut pts = Vec::new();
        for i in 0..400 {
            pts.extend(centers[i % 4].iter().map(|x| x + rng.gen_range(-0.5..0.5)));
        }
        let p = EuclideanParams {
            k: 4,
            ..Default::default()
        };
        let c = train_euclidean(&pts, 2, &p, &mut rng);
        let best = nearest(&pts, 2, &c, 4);
        for i in 0..400 {
            assert_eq!(best[i].0, best[i % 4].0, "point {i}");
            assert!(best[i].1 < 0.5);
        }
    }

    #[test]
    fn empty_cluster_takes_the_farthest_point() {
        let pts = [0.0f32, 0.0, 0.1, 0.0, 10.0, 0.0];
        let best = [(0u32, 0.0f32), (0, 0.01), (0, 100.0)];
        let c = update(&pts, 2, 2, &best);
        assert_eq!(&c[2..4], &[10.0, 0.0]);
    }
}
