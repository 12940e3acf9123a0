//! `x Wᵀ` for a few rows of `x` and a row-major `W`: what one request's
//! forward pass multiplies (a handful of history rows by small weights, one
//! query by a whole item table). A general `gemm` repacks `W` into its
//! panel layout on every call, which for so few rows costs more than the
//! products; here every output is a dot product of two contiguous rows, so
//! nothing is copied, and `W` streams through the cache once per four rows
//! of `x`.
//!
//! The build targets baseline x86-64 (SSE2), so the wide kernel is chosen
//! at run time: AVX2 with fused multiply-adds where the CPU has them, the
//! portable loop otherwise. Both sum in a different order than a serial
//! loop; results agree with it to rounding.

use crate::kmeans::dot;

/// `out[r·n + j] = x[r] · w[j]` for the rows of `x` and the `n` rows of `w`,
/// all of width `d`: `x Wᵀ`, row-major.
pub(crate) fn x_wt(x: &[f32], w: &[f32], d: usize, out: &mut [f32]) {
    if d == 0 {
        out.fill(0.0);
        return;
    }
    let (rows, n) = (x.len() / d, w.len() / d);
    assert_eq!(
        (x.len(), w.len()),
        (rows * d, n * d),
        "x_wt: rows of width d"
    );
    assert_eq!(out.len(), rows * n, "x_wt: shape of out");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA (checked just above), and the
        // shapes were checked against the slices' lengths.
        unsafe { x86::x_wt(x, d, w, out) };
        return;
    }
    for (xr, or) in x.chunks_exact(d).zip(out.chunks_exact_mut(n.max(1))) {
        for (o, wr) in or.iter_mut().zip(w.chunks_exact(d)) {
            *o = dot(xr, wr);
        }
    }
}

/// `out[j] = x · w[j]`: [`x_wt`] for one row.
pub(crate) fn rows_dot(x: &[f32], w: &[f32], out: &mut [f32]) {
    x_wt(x, w, x.len(), out);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// [`super::x_wt`] with 256-bit lanes in tiles: four rows of `x` against
    /// two of `w` (each load serves two or four products, and `w` streams
    /// through the cache once per four rows of `x`), one row of `x` against
    /// four of `w` for the last rows of `x`, and single columns for the last
    /// rows of `w`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn x_wt(x: &[f32], d: usize, w: &[f32], out: &mut [f32]) {
        let (rows, n) = (x.len() / d, w.len() / d);
        let row = |m: &'_ [f32], i: usize| -> *const f32 { m[i * d..(i + 1) * d].as_ptr() };
        let mut r = 0;
        while r < rows {
            let quad = rows - r >= 4;
            let mut j = 0;
            while j < n {
                let left = n - j;
                if quad && left >= 2 {
                    let xs = [0, 1, 2, 3].map(|i| row(x, r + i));
                    let t = unsafe { tile::<4, 2>(xs, [row(w, j), row(w, j + 1)], d) };
                    for (i, sums) in t.iter().enumerate() {
                        out[(r + i) * n + j..][..2].copy_from_slice(sums);
                    }
                    j += 2;
                } else if !quad && left >= 4 {
                    let ws = [0, 1, 2, 3].map(|i| row(w, j + i));
                    let t = unsafe { tile::<1, 4>([row(x, r)], ws, d) };
                    out[r * n + j..][..4].copy_from_slice(&t[0]);
                    j += 4;
                } else if quad {
                    let xs = [0, 1, 2, 3].map(|i| row(x, r + i));
                    let t = unsafe { tile::<4, 1>(xs, [row(w, j)], d) };
                    for (i, sum) in t.iter().enumerate() {
                        out[(r + i) * n + j] = sum[0];
                    }
                    j += 1;
                } else {
                    out[r * n + j] = unsafe { tile::<1, 1>([row(x, r)], [row(w, j)], d) }[0][0];
                    j += 1;
                }
            }
            r += if quad { 4 } else { 1 };
        }
    }

    /// `R × C` dot products of length `d`.
    ///
    /// SAFETY: every pointer addresses `d` readable floats.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const R: usize, const C: usize>(
        xs: [*const f32; R],
        ws: [*const f32; C],
        d: usize,
    ) -> [[f32; C]; R] {
        let whole = d - d % 8;
        let mut acc = [[_mm256_setzero_ps(); C]; R];
        let mut i = 0;
        while i < whole {
            // SAFETY: i + 8 <= whole <= d.
            unsafe {
                let wv = ws.map(|w| _mm256_loadu_ps(w.add(i)));
                for (a, x) in acc.iter_mut().zip(&xs) {
                    let xv = _mm256_loadu_ps(x.add(i));
                    for (a, w) in a.iter_mut().zip(&wv) {
                        *a = _mm256_fmadd_ps(xv, *w, *a);
                    }
                }
            }
            i += 8;
        }
        let mut sums = [[0f32; C]; R];
        for (r, (s, a)) in sums.iter_mut().zip(&acc).enumerate() {
            for (c, (s, a)) in s.iter_mut().zip(a).enumerate() {
                *s = unsafe { horizontal_sum(*a) };
                for t in whole..d {
                    // SAFETY: t < d.
                    *s += unsafe { *xs[r].add(t) * *ws[c].add(t) };
                }
            }
        }
        sums
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn horizontal_sum(v: __m256) -> f32 {
        let pair = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let half = _mm_add_ps(pair, _mm_movehl_ps(pair, pair));
        _mm_cvtss_f32(_mm_add_ss(half, _mm_shuffle_ps(half, half, 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Every width around the lane count, every row count of `x` and `w`
    /// around the tile sizes, against a serial f64 sum; the portable loop
    /// against the wide kernel.
    #[test]
    fn matches_a_serial_sum() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for d in [0, 1, 7, 8, 9, 16, 17, 128, 131] {
            for rows in [0, 1, 3, 4, 5, 9] {
                for n in [0, 1, 2, 3, 4, 5, 13] {
                    let x: Vec<f32> = (0..rows * d).map(|_| rng.gen_range(-1.0..1.0)).collect();
                    let w: Vec<f32> = (0..d * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
                    let mut out = vec![f32::NAN; rows * n];
                    if d == 0 {
                        x_wt(&x, &w, d, &mut out);
                        assert!(out.iter().all(|&v| v == 0.0));
                        continue;
                    }
                    x_wt(&x, &w, d, &mut out);
                    for (at, got) in out.iter().enumerate() {
                        let (r, j) = (at / n, at % n);
                        let want: f64 = (0..d)
                            .map(|i| x[r * d + i] as f64 * w[j * d + i] as f64)
                            .sum();
                        assert!(
                            (*got as f64 - want).abs() < 1e-5,
                            "d {d} rows {rows} n {n} at {at}"
                        );
                        if d > 0 {
                            let portable = dot(&x[r * d..][..d], &w[j * d..][..d]);
                            assert!((portable - got).abs() < 1e-5, "portable, d {d} at {at}");
                        }
                    }
                }
            }
        }
    }
}
