//! Learning-rate schedules.

/// The learning rate of 1-based `step` under a linear warm-up over
/// `warmup` steps to `lr` (`warmup` 0: `lr` from the first step).
pub fn warmup_lr(lr: f64, step: usize, warmup: usize) -> f64 {
    match warmup {
        0 => lr,
        w => lr * (step.min(w) as f64 / w as f64),
    }
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
}
