//! ADA-SID's per-item weights from the behavior evidence N_norm: the
//! alignment strength and the sparsity target.

/// Min–max normalised behavior evidence: `(x − min) / (max − min)`, clamped to [0, 1].
pub fn n_norm(x: f32, min: f32, max: f32) -> f32 {
    if max > min {
        ((x - min) / (max - min)).clamp(0.0, 1.0)
    } else {
        1.0
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Adaptive alignment strength `w = σ(α·N − β) / σ(α − β)`: near 0 for
/// long-tail items (N → 0), exactly 1 for the head (N = 1).
pub fn alignment_weight(n_norm: f32, alpha: f32, beta: f32) -> f32 {
    sigmoid(alpha * n_norm - beta) / sigmoid(alpha - beta)
}

/// Target share of masked behavior SIDs for an item: `θ · (1 − N)`.
pub fn sparsity_target(n_norm: f32, theta: f32) -> f32 {
    theta * (1.0 - n_norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn n_norm_and_w_at_the_ends() {
        assert_eq!(n_norm(1.0, 1.0, 3.0), 0.0);
        assert_eq!(n_norm(3.0, 1.0, 3.0), 1.0);
        assert_eq!(n_norm(2.0, 1.0, 3.0), 0.5);
        assert_eq!(n_norm(5.0, 1.0, 3.0), 1.0, "clamped above");
        assert!((alignment_weight(1.0, 10.0, 9.0) - 1.0).abs() < 1e-6);
        // σ(−9)/σ(1) = 1.2339e-4 / 0.7311 = 1.6878e-4
        assert!((alignment_weight(0.0, 10.0, 9.0) - 1.6878e-4).abs() < 1e-7);
        assert!(alignment_weight(0.5, 10.0, 9.0) < alignment_weight(0.9, 10.0, 9.0));
        assert_eq!(sparsity_target(0.0, 0.5), 0.5);
        assert_eq!(sparsity_target(1.0, 0.5), 0.0);
    }
}
