//! AUC and GAUC of a ranking model's scores on labelled impressions.
//!
//! AUC is the probability that a random positive outscores a random
//! negative, ties counting one half (the Mann–Whitney statistic from mean
//! ranks). GAUC is the per-user AUC averaged with each user's impression
//! count as its weight, over the users who have both a positive and a
//! negative; the others are skipped, since their AUC is undefined.

use serde::Serialize;

/// One scored candidate shown to a user.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Impression {
    /// Whose it is (impressions of one user are grouped for GAUC).
    pub user: u32,
    /// The model's score.
    pub score: f32,
    /// Whether it was the item the user went on to.
    pub positive: bool,
}

/// AUC and GAUC of a set of impressions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct AucReport {
    /// AUC over every impression (`None` without both classes).
    pub auc: Option<f64>,
    /// Impression-weighted mean per-user AUC (`None` when no user has both classes).
    pub gauc: Option<f64>,
    /// Impressions scored.
    pub impressions: usize,
    /// Users counted in GAUC.
    pub users: usize,
    /// Users skipped by GAUC (one class only).
    pub skipped_users: usize,
}

/// AUC of `(score, positive)` pairs, ties counting one half; `None` unless
/// there is at least one positive and one negative.
pub fn auc(pairs: &[(f32, bool)]) -> Option<f64> {
    let positives = pairs.iter().filter(|p| p.1).count();
    let negatives = pairs.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by(|&a, &b| pairs[a].0.total_cmp(&pairs[b].0));
    // Sum of the positives' 1-based ranks, tied runs sharing their mean rank.
    let mut rank_sum = 0f64;
    let mut start = 0;
    while start < order.len() {
        let score = pairs[order[start]].0;
        let end = start
            + order[start..]
                .iter()
                .take_while(|&&i| pairs[i].0.total_cmp(&score).is_eq())
                .count();
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        let tied_positives = order[start..end].iter().filter(|&&i| pairs[i].1).count();
        rank_sum += mean_rank * tied_positives as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// AUC and GAUC of `impressions`.
pub fn auc_report(impressions: &[Impression]) -> AucReport {
    let all: Vec<(f32, bool)> = impressions.iter().map(|i| (i.score, i.positive)).collect();
    let mut by_user: Vec<&Impression> = impressions.iter().collect();
    by_user.sort_by_key(|i| i.user);
    let (mut weighted, mut weight, mut users, mut skipped) = (0f64, 0f64, 0, 0);
    for group in by_user.chunk_by(|a, b| a.user == b.user) {
        let pairs: Vec<(f32, bool)> = group.iter().map(|i| (i.score, i.positive)).collect();
        match auc(&pairs) {
            Some(a) => {
                weighted += a * pairs.len() as f64;
                weight += pairs.len() as f64;
                users += 1;
            }
            None => skipped += 1,
        }
    }
    AucReport {
        auc: auc(&all),
        gauc: (users > 0).then(|| weighted / weight),
        impressions: impressions.len(),
        users,
        skipped_users: skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-12)
    }

    #[test]
    fn auc_counts_ordered_pairs_and_half_ties() {
        // Positives 0.9, 0.4; negatives 0.5, 0.1: of the 4 pairs, 3 are
        // ordered right (0.9>0.5, 0.9>0.1, 0.4>0.1), 1 wrong.
        assert!(close(
            auc(&[(0.9, true), (0.5, false), (0.4, true), (0.1, false)]),
            0.75
        ));
        // A tie between a positive and a negative counts one half:
        // pairs (0.5+, 0.5-) = ½, (0.5+, 0.2-) = 1, (0.1+, 0.5-) = 0,
        // (0.1+, 0.2-) = 0 → 1.5 / 4.
        assert!(close(
            auc(&[(0.5, true), (0.5, false), (0.2, false), (0.1, true)]),
            0.375
        ));
        // Every score equal: ½.
        assert!(close(auc(&[(1.0, true), (1.0, false), (1.0, false)]), 0.5));
        assert!(close(auc(&[(2.0, true), (1.0, false)]), 1.0));
        assert!(close(auc(&[(0.0, true), (1.0, false)]), 0.0));
        assert_eq!(auc(&[(1.0, true), (2.0, true)]), None);
        assert_eq!(auc(&[]), None);
    }

    #[test]
    fn gauc_weights_users_by_impressions_and_skips_one_class_users() {
        let imp = |user, score, positive| Impression {
            user,
            score,
            positive,
        };
        let report = auc_report(&[
            // User 1: 2 impressions, AUC 1.
            imp(1, 0.9, true),
            imp(1, 0.2, false),
            // User 2: 4 impressions; positive 0.3 beats 1 of 3 negatives → 1/3.
            imp(2, 0.3, true),
            imp(2, 0.8, false),
            imp(2, 0.1, false),
            imp(2, 0.5, false),
            // User 3: positives only, skipped.
            imp(3, 0.7, true),
        ]);
        // (2·1 + 4·⅓) / 6 = 5/9.
        assert!(close(report.gauc, 5.0 / 9.0));
        assert_eq!((report.users, report.skipped_users), (2, 1));
        assert_eq!(report.impressions, 7);
        // Pooled: positives 0.9, 0.3, 0.7 against negatives 0.2, 0.8, 0.1,
        // 0.5: 0.9 beats 4, 0.3 beats 2, 0.7 beats 3 → 9 / 12.
        assert!(close(report.auc, 0.75));
        let none = auc_report(&[imp(1, 0.5, true)]);
        assert_eq!((none.auc, none.gauc, none.users), (None, None, 0));
    }
}
