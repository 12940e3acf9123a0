//! The ranking protocol (DIN's, on Amazon data): every next item of a
//! user's chronological sequence is a positive impression, and `negatives`
//! items the user never interacted with, drawn uniformly, are negative
//! impressions of the same step; the features are the user's previous
//! ≤ `history` items and the candidate.
//!
//! Steps whose target is in the training part (all but the last two items)
//! train; the step at the validation target validates and the one at the
//! test target tests, so no held-out item reaches training. The negatives
//! of a step depend only on the seed, the user and the step, so every
//! model and tokenizer is scored on the same impressions.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::eval::Split;

/// Which steps of each sequence a set of examples comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Every step whose target is in the training part.
    Train,
    /// The step at a held-out target.
    Held(Split),
}

/// One impression: a user's recent history and a candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Example {
    /// Index of the user's sequence.
    pub user: u32,
    /// The history is `sequence[end - len..end]` (most recent last).
    pub end: u32,
    /// History length (≤ the protocol's `history`, ≥ 1).
    pub len: u32,
    /// Catalogue row of the candidate.
    pub candidate: u32,
    /// Whether the candidate is the user's next item.
    pub positive: bool,
}

impl Example {
    /// The history rows of this example within `sequences`.
    pub fn history<'a>(&self, sequences: &'a [Vec<u32>]) -> &'a [u32] {
        let end = self.end as usize;
        &sequences[self.user as usize][end - self.len as usize..end]
    }
}

/// Settings of the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Protocol {
    /// Negatives drawn per positive (≥ 1).
    pub negatives: usize,
    /// Most recent items kept as features (≥ 1).
    pub history: usize,
    /// Seed of the negative draws.
    pub seed: u64,
}

impl Protocol {
    /// The impressions of `part` over `sequences` of a catalogue of `items`
    /// rows: for each step, the positive then its negatives.
    pub fn examples(
        &self,
        sequences: &[Vec<u32>],
        items: usize,
        part: Part,
    ) -> Result<Vec<Example>> {
        self.check(sequences, items)?;
        let mut out = Vec::new();
        for (user, s) in sequences.iter().enumerate() {
            let steps = match part {
                Part::Train => 1..s.len() - 2,
                Part::Held(split) => {
                    let (history, _) = split.cut(s).expect("checked: at least 3 items");
                    history.len()..history.len() + 1
                }
            };
            let seen: HashSet<u32> = s.iter().copied().collect();
            for t in steps {
                self.step(user, s, t, &seen, items, &mut out);
            }
        }
        Ok(out)
    }

    /// The positive at step `t` of user `user`'s sequence `s` and its negatives.
    fn step(
        &self,
        user: usize,
        s: &[u32],
        t: usize,
        seen: &HashSet<u32>,
        items: usize,
        out: &mut Vec<Example>,
    ) {
        let len = t.min(self.history);
        let at = |candidate, positive| Example {
            user: user as u32,
            end: t as u32,
            len: len as u32,
            candidate,
            positive,
        };
        out.push(at(s[t], true));
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed ^ (user as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ((t as u64) << 40),
        );
        for _ in 0..self.negatives {
            let negative = loop {
                let c = rng.gen_range(0..items as u32);
                if !seen.contains(&c) {
                    break c;
                }
            };
            out.push(at(negative, false));
        }
    }

    /// Bad input is refused before any example is built.
    fn check(&self, sequences: &[Vec<u32>], items: usize) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if self.negatives == 0 || self.history == 0 {
            return bad("negatives and history must be at least 1".into());
        }
        for (user, s) in sequences.iter().enumerate() {
            if s.len() < 3 {
                return bad(format!(
                    "sequence {user} has {} items; the ranking protocol needs at least 3 \
                     (training, validation and test targets)",
                    s.len()
                ));
            }
            let distinct: HashSet<u32> = s.iter().copied().collect();
            if distinct.len() >= items {
                return bad(format!(
                    "user {user} interacted with every item: no negative to draw"
                ));
            }
            if let Some(&row) = s.iter().find(|&&r| r as usize >= items) {
                return bad(format!(
                    "sequence {user} names item {row} of a {items}-item catalogue"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Protocol = Protocol {
        negatives: 2,
        history: 2,
        seed: 7,
    };

    #[test]
    fn steps_split_into_train_validation_and_test() {
        let seqs = vec![vec![0, 1, 2, 3, 4], vec![5, 6, 7]];
        let train = P.examples(&seqs, 20, Part::Train).unwrap();
        // User 0 trains on targets 1, 2 (items 3 and 4 are held out); user
        // 1's training part is item 5 alone, the first item, never a target.
        let positives: Vec<(u32, u32)> = train
            .iter()
            .filter(|e| e.positive)
            .map(|e| (e.user, e.candidate))
            .collect();
        assert_eq!(positives, vec![(0, 1), (0, 2)]);
        assert_eq!(train.len(), 2 * (1 + 2));
        let valid = P
            .examples(&seqs, 20, Part::Held(Split::Validation))
            .unwrap();
        let test = P.examples(&seqs, 20, Part::Held(Split::Test)).unwrap();
        let pos = |v: &[Example]| {
            v.iter()
                .filter(|e| e.positive)
                .map(|e| e.candidate)
                .collect::<Vec<_>>()
        };
        assert_eq!(pos(&valid), vec![3, 6]);
        assert_eq!(pos(&test), vec![4, 7]);
        // The test history is the last ≤ 2 items before the target.
        let t0 = test[0];
        assert_eq!(t0.history(&seqs), &[2, 3]);
        for e in train.iter().chain(&valid).chain(&test) {
            assert!(e.positive || !seqs[e.user as usize].contains(&e.candidate));
            assert!(e.candidate < 20 && e.len >= 1 && e.len <= 2);
        }
    }

    #[test]
    fn negatives_are_fixed_by_seed_user_and_step() {
        let seqs = vec![vec![0, 1, 2, 3, 4]; 3];
        let a = P.examples(&seqs, 50, Part::Held(Split::Test)).unwrap();
        assert_eq!(a, P.examples(&seqs, 50, Part::Held(Split::Test)).unwrap());
        // Another seed draws other negatives; another user too.
        let b = Protocol { seed: 8, ..P }
            .examples(&seqs, 50, Part::Held(Split::Test))
            .unwrap();
        assert_ne!(a, b);
        assert_ne!(a[1].candidate, a[4].candidate);
    }

    #[test]
    fn bad_input_is_refused() {
        let short = vec![vec![0, 1]];
        let err = P.examples(&short, 10, Part::Train).unwrap_err().to_string();
        assert!(err.contains("at least 3"), "{err}");
        let none = Protocol { negatives: 0, ..P };
        assert!(none.examples(&[vec![0, 1, 2]], 10, Part::Train).is_err());
        let all = vec![vec![0, 1, 2]];
        let err = P.examples(&all, 3, Part::Train).unwrap_err().to_string();
        assert!(err.contains("every item"), "{err}");
    }
}
