//! Ranking metrics for leave-one-out evaluation (one target per user):
//! Recall@K is a hit within the first K, NDCG@K is `1 / log2(rank + 2)` for a
//! hit at 0-based `rank < K`. Pure functions, no I/O.

use serde::Serialize;

/// The cutoffs reported by `adasid eval` and `adasid compare`.
pub const CUTOFFS: [usize; 3] = [10, 50, 100];

/// Recall and NDCG at each cutoff over a set of users.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RankMetrics {
    /// Users counted.
    pub users: usize,
    /// The cutoffs K.
    pub cutoffs: Vec<usize>,
    /// Recall@K per cutoff.
    pub recall: Vec<f64>,
    /// NDCG@K per cutoff.
    pub ndcg: Vec<f64>,
}

impl RankMetrics {
    /// Recall at cutoff `k`, if reported.
    pub fn recall_at(&self, k: usize) -> Option<f64> {
        self.cutoffs
            .iter()
            .position(|&c| c == k)
            .map(|i| self.recall[i])
    }

    /// NDCG at cutoff `k`, if reported.
    pub fn ndcg_at(&self, k: usize) -> Option<f64> {
        self.cutoffs
            .iter()
            .position(|&c| c == k)
            .map(|i| self.ndcg[i])
    }
}

/// Sums hits and discounted gains as users are added.
#[derive(Clone, Debug)]
pub struct Accumulator {
    cutoffs: Vec<usize>,
    hits: Vec<f64>,
    gains: Vec<f64>,
    users: usize,
}

impl Accumulator {
    /// An empty sum over `cutoffs`.
    pub fn new(cutoffs: &[usize]) -> Self {
        Accumulator {
            cutoffs: cutoffs.to_vec(),
            hits: vec![0.0; cutoffs.len()],
            gains: vec![0.0; cutoffs.len()],
            users: 0,
        }
    }

    /// One user whose target sits at 0-based `rank` of the ranking (`None`: absent).
    pub fn add(&mut self, rank: Option<usize>) {
        self.users += 1;
        if let Some(r) = rank {
            let gain = 1.0 / ((r + 2) as f64).log2();
            for (i, &k) in self.cutoffs.iter().enumerate() {
                if r < k {
                    self.hits[i] += 1.0;
                    self.gains[i] += gain;
                }
            }
        }
    }

    /// Adds another accumulator's users.
    pub fn merge(&mut self, other: &Accumulator) {
        self.users += other.users;
        self.hits
            .iter_mut()
            .zip(&other.hits)
            .for_each(|(a, b)| *a += b);
        self.gains
            .iter_mut()
            .zip(&other.gains)
            .for_each(|(a, b)| *a += b);
    }

    /// Means over the users added (zeros when there are none).
    pub fn finish(&self) -> RankMetrics {
        let n = self.users.max(1) as f64;
        RankMetrics {
            users: self.users,
            cutoffs: self.cutoffs.clone(),
            recall: self.hits.iter().map(|h| h / n).collect(),
            ndcg: self.gains.iter().map(|g| g / n).collect(),
        }
    }
}

/// 0-based position of `target` in `ranking` (its first occurrence).
pub fn rank_of<T: PartialEq>(ranking: &[T], target: &T) -> Option<usize> {
    ranking.iter().position(|x| x == target)
}

/// Popularity quartile of every item, 0 = head … 3 = tail: items sorted by
/// count (highest first, ties by lower index) and cut into four equal parts,
/// so each quartile holds a quarter of the catalogue even when counts tie.
pub fn popularity_quartiles(counts: &[u32]) -> Vec<u8> {
    let n = counts.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| counts[b].cmp(&counts[a]).then(a.cmp(&b)));
    let mut q = vec![0u8; n];
    for (pos, &i) in order.iter().enumerate() {
        q[i] = (pos * 4 / n.max(1)) as u8;
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn perfect_ranking_scores_one_everywhere() {
        let mut acc = Accumulator::new(&CUTOFFS);
        for _ in 0..5 {
            acc.add(rank_of(&[7u32, 1, 2], &7));
        }
        let m = acc.finish();
        assert_eq!(m.users, 5);
        assert!(
            m.recall.iter().chain(&m.ndcg).all(|&x| close(x, 1.0)),
            "{m:?}"
        );
    }

    #[test]
    fn empty_ranking_and_no_users_score_zero() {
        let mut acc = Accumulator::new(&CUTOFFS);
        assert!(acc.finish().recall.iter().all(|&x| x == 0.0));
        acc.add(rank_of::<u32>(&[], &3));
        let m = acc.finish();
        assert_eq!(m.users, 1);
        assert!(m.recall.iter().chain(&m.ndcg).all(|&x| x == 0.0));
    }

    #[test]
    fn hand_computed_mixture() {
        // Targets at ranks 0, 3, 20 and absent: R@10 = 2/4, R@50 = 3/4;
        // NDCG@10 = (1 + 1/log2 5) / 4, NDCG@50 adds 1/log2 22.
        let mut acc = Accumulator::new(&[10, 50]);
        for r in [Some(0), Some(3), Some(20), None] {
            acc.add(r);
        }
        let m = acc.finish();
        assert!(close(m.recall[0], 0.5) && close(m.recall[1], 0.75));
        let g10 = 1.0 + 1.0 / 5f64.log2();
        assert!(close(m.ndcg[0], g10 / 4.0));
        assert!(close(m.ndcg[1], (g10 + 1.0 / 22f64.log2()) / 4.0));
        assert_eq!(m.recall_at(50), Some(m.recall[1]));
        // Splitting the users and merging gives the same figures.
        let (mut a, mut b) = (Accumulator::new(&[10, 50]), Accumulator::new(&[10, 50]));
        a.add(Some(0));
        a.add(Some(3));
        b.add(Some(20));
        b.add(None);
        a.merge(&b);
        assert_eq!(a.finish(), m);
    }

    #[test]
    fn ties_in_a_ranking_count_the_first_position() {
        // Equal-scored candidates keep their listed order; a duplicate counts once.
        assert_eq!(rank_of(&[4u32, 9, 9, 2], &9), Some(1));
    }

    #[test]
    fn quartiles_split_tied_counts_into_equal_parts() {
        // Eight items, all tied but one: two per quartile, ties by index.
        let q = popularity_quartiles(&[5, 5, 5, 9, 5, 5, 5, 5]);
        assert_eq!(q, vec![0, 1, 1, 0, 2, 2, 3, 3]);
        assert_eq!(popularity_quartiles(&[]), Vec::<u8>::new());
    }
}
