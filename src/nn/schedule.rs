//! Learning-rate schedules.

/// The learning rate of 1-based `step` under a linear warm-up over
/// `warmup` steps to `lr` (`warmup` 0: `lr` from the first step).
pub fn warmup_lr(lr: f64, step: usize, warmup: usize) -> f64 {
    match warmup {
        0 => lr,
        w => lr * (step.min(w) as f64 / w as f64),
    }
}

/// The learning rate of 1-based `step` of `total`: [`warmup_lr`]'s warm-up,
/// then half a cosine from `lr` down to 0 at `total` (held at 0 past it).
/// Annealing lets the last epochs settle where a constant rate keeps
/// stepping over the optimum.
pub fn cosine_lr(lr: f64, step: usize, warmup: usize, total: usize) -> f64 {
    if step <= warmup {
        return warmup_lr(lr, step, warmup);
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let done = ((step - warmup) as f64 / span).min(1.0);
    lr * 0.5 * (1.0 + (std::f64::consts::PI * done).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rises_linearly_then_holds() {
        assert_eq!(warmup_lr(1e-3, 1, 0), 1e-3);
        assert!((warmup_lr(1e-3, 1, 4) - 2.5e-4).abs() < 1e-12);
        assert!((warmup_lr(1e-3, 3, 4) - 7.5e-4).abs() < 1e-12);
        assert_eq!(warmup_lr(1e-3, 4, 4), 1e-3);
        assert_eq!(warmup_lr(1e-3, 400, 4), 1e-3);
    }

    #[test]
    fn cosine_warms_up_then_anneals_to_zero() {
        assert!((cosine_lr(1e-3, 2, 4, 104) - 5e-4).abs() < 1e-12);
        assert_eq!(cosine_lr(1e-3, 4, 4, 104), 1e-3);
        assert!((cosine_lr(1e-3, 54, 4, 104) - 5e-4).abs() < 1e-12);
        assert!(cosine_lr(1e-3, 30, 4, 104) > cosine_lr(1e-3, 31, 4, 104));
        assert!(cosine_lr(1e-3, 104, 4, 104).abs() < 1e-15);
        assert!(cosine_lr(1e-3, 500, 4, 104).abs() < 1e-15);
        // No warm-up: the first step already anneals.
        let first = cosine_lr(1e-3, 1, 0, 100);
        assert!(first < 1e-3 && first > 0.999e-3);
    }
}
