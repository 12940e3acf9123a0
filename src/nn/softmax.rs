//! The log-softmax of one row in plain Rust, for inference paths that
//! normalise a long row per request (a hybrid's 12,101 item logits on
//! Beauty): `f32::exp` is a libm call per value that the compiler cannot
//! vectorise, and it was about a sixth of the instructions of such a
//! request's forward pass (callgrind).
//! Here `e^x` is a branch-free polynomial the compiler turns into vector
//! instructions, summed over eight lanes.

/// `e^x` for `x ≤ 0` (values below −87 give about 1.6e-38), to within
/// 3e-7 relative: `2^n · e^r` with `n = round(x log₂e)` and `r = x − n ln 2`
/// in `[−½ ln 2, ½ ln 2]` (ln 2 split in two parts, so `r` keeps its
/// precision however large `n`), `e^r` from its degree-6 Taylor polynomial.
#[inline]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    // Adding and removing 1.5 · 2^23 rounds to the nearest whole number
    // without a call to `round` (not inlined on the baseline x86-64 target).
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    scale * p
}

/// `x` replaced by its log-softmax.
pub(crate) fn log_softmax_in_place(x: &mut [f32]) {
    let log_sum = log_sum_exp(x);
    x.iter_mut().for_each(|v| *v -= log_sum);
}

/// `ln Σ e^x` of a row, shifted by its maximum so that nothing overflows.
pub(crate) fn log_sum_exp(x: &[f32]) -> f32 {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut lanes = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest: f32 = chunks
        .remainder()
        .iter()
        .map(|&v| exp_nonpositive(v - max))
        .sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += exp_nonpositive(v - max);
        }
    }
    (lanes.iter().sum::<f32>() + rest).ln() + max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_over_its_range() {
        let mut worst = 0f32;
        for i in 0..=870_000 {
            let x = -(i as f32) * 1e-4;
            let (got, want) = (exp_nonpositive(x), x.exp());
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1000.0) < 2e-38);
    }

    #[test]
    fn log_softmax_matches_the_direct_formula() {
        for n in [1, 7, 8, 9, 100, 12_101] {
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.3)
                .collect();
            let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let lse = (x.iter().map(|v| ((v - max) as f64).exp()).sum::<f64>()).ln() + max as f64;
            let mut got = x.clone();
            log_softmax_in_place(&mut got);
            for (g, v) in got.iter().zip(&x) {
                assert!((*g as f64 - (*v as f64 - lse)).abs() < 1e-5, "n {n}");
            }
        }
    }
}
