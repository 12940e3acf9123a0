//! The repeat bias: one learned logit added to whatever a history already
//! holds (`repeat_bias = true`). A hybrid's (and an item-ID layout's) seen
//! items get it, or per position the tokens of the history's items. It is
//! stored in the cosine's units, as the logits are before `1 / τ`, so
//! Adam's step moves it as fast as any logit rather than τ times slower.

use candle_core::{Tensor, Var};

use super::net::ParallelShape;
use crate::error::Result;
use crate::nn::params::ml;

/// What a history already holds, as `(bias, column)` pairs: a hybrid's
/// item ids (bias 0, ids inside its table), otherwise each position's
/// token columns (bias = position). Distinct, so a seen item or token
/// gets the bias once however often it was seen.
pub type Seen = Vec<(u32, u32)>;

impl ParallelShape {
    /// [`Seen`] of items given as `columns` (`positions` per item) and,
    /// for a hybrid, their `ids`; empty without a repeat bias.
    pub fn seen(&self, columns: &[u32], ids: &[u32]) -> Seen {
        let mut out: Seen = match (self.repeat_bias, self.items) {
            (false, _) => return Vec::new(),
            (true, 0) => columns
                .iter()
                .enumerate()
                .map(|(i, &c)| ((i % self.positions) as u32, c))
                .collect(),
            (true, n) => ids
                .iter()
                .filter(|&&i| (i as usize) < n)
                .map(|&i| (0, i))
                .collect(),
        };
        out.sort_unstable();
        out.dedup();
        out
    }

    /// How many values the bias has: one per head.
    pub(super) fn repeat_biases(&self) -> usize {
        if self.items > 0 { 1 } else { self.positions }
    }
}

/// The pairs of bias `b` among `seen` (sorted, so two binary searches
/// rather than a pass over every head's pairs for each head).
pub(super) fn of_head(seen: &[(u32, u32)], b: usize) -> &[(u32, u32)] {
    let b = b as u32;
    let start = seen.partition_point(|&(x, _)| x < b);
    let end = seen.partition_point(|&(x, _)| x <= b);
    &seen[start..end]
}

/// Stored values as the logits they add.
pub(super) fn as_logits(values: Vec<f32>, temperature: f64) -> Vec<f32> {
    values
        .into_iter()
        .map(|b| (b as f64 / temperature) as f32)
        .collect()
}

/// `logits` `[rows, width]` with `bias` (its value / τ) added at each row's
/// `seen` pairs: all of them when `position` is `None` (a hybrid's item
/// logits, or every position's side by side, `vocab` columns each), else
/// those of that position alone (its own `[rows, vocab]` logits).
pub(super) fn add(
    bias: &Var,
    shape: &ParallelShape,
    logits: Tensor,
    seen: &[Seen],
    position: Option<usize>,
) -> Result<Tensor> {
    let (rows, width) = logits.dims2().map_err(ml)?;
    let vocab = shape.vocab as u32;
    let (mut at, mut which) = (Vec::new(), Vec::new());
    for (r, pairs) in seen.iter().enumerate().take(rows) {
        let pairs = match position {
            Some(p) => of_head(pairs, p),
            None => pairs,
        };
        for &(b, c) in pairs {
            let col = match position {
                Some(_) => c,
                None if shape.items > 0 => c,
                None => b * vocab + c,
            };
            at.push((r * width) as u32 + col);
            which.push(b);
        }
    }
    if at.is_empty() {
        return Ok(logits);
    }
    let n = at.len();
    let dev = logits.device().clone();
    let at = Tensor::from_vec(at, n, &dev).map_err(ml)?;
    let which = Tensor::from_vec(which, n, &dev).map_err(ml)?;
    let add = bias
        .as_tensor()
        .index_select(&which, 0)
        .and_then(|b| b / shape.temperature)
        .map_err(ml)?;
    logits
        .flatten_all()
        .and_then(|l| l.index_add(&at, &add, 0))
        .and_then(|l| l.reshape((rows, width)))
        .map_err(ml)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    fn shape(items: usize) -> ParallelShape {
        ParallelShape {
            positions: 2,
            vocab: 3,
            d: 4,
            heads: 1,
            layers: 1,
            ff: 4,
            history: 4,
            dropout: 0.0,
            temperature: 0.1,
            items,
            sid_output: false,
            repeat_bias: true,
        }
    }

    #[test]
    fn seen_is_distinct_per_head_and_inside_the_id_table() {
        let s = shape(0);
        let seen = s.seen(&[2, 0, 2, 1, 2, 0], &[]);
        assert_eq!(seen, vec![(0, 2), (1, 0), (1, 1)]);
        assert_eq!(of_head(&seen, 0), &[(0, 2)]);
        assert_eq!(of_head(&seen, 1), &[(1, 0), (1, 1)]);
        assert!(of_head(&seen, 2).is_empty());
        assert_eq!(shape(5).seen(&[], &[4, 7, 1, 4]), vec![(0, 1), (0, 4)]);
        let off = ParallelShape {
            repeat_bias: false,
            ..s
        };
        assert!(off.seen(&[1, 1], &[]).is_empty());
    }

    /// Every position side by side gets what each position alone gets, and
    /// the bias's gradient is the sum of the gradient at its places / τ.
    #[test]
    fn adds_at_the_seen_places_and_learns_from_them() {
        let dev = Device::Cpu;
        let s = shape(0);
        let bias = Var::from_vec(vec![0.1f32, -0.2], 2, &dev).unwrap();
        let seen = vec![vec![(0, 1), (1, 2)], vec![(1, 0)]];
        let zeros = || Tensor::zeros((2, 6), candle_core::DType::F32, &dev).unwrap();
        let all = add(&bias, &s, zeros(), &seen, None).unwrap();
        let want = vec![
            vec![0.0, 1.0, 0.0, 0.0, 0.0, -2.0],
            vec![0.0, 0.0, 0.0, -2.0, 0.0, 0.0],
        ];
        let got = all.to_vec2::<f32>().unwrap();
        for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
        for p in 0..2 {
            let alone = Tensor::zeros((2, 3), candle_core::DType::F32, &dev).unwrap();
            let alone = add(&bias, &s, alone, &seen, Some(p)).unwrap();
            let part = all.narrow(1, p * 3, 3).unwrap();
            assert_eq!(
                alone.to_vec2::<f32>().unwrap(),
                part.to_vec2::<f32>().unwrap()
            );
        }
        let weights: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let weights = Tensor::from_vec(weights, (2, 6), &dev).unwrap();
        let loss = (all * weights).unwrap().sum_all().unwrap();
        let grad = loss.backward().unwrap();
        let g = grad
            .get(bias.as_tensor())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // Bias 0 sits at (0, 1); bias 1 at (0, 5) and (1, 3) = 5 + 9.
        assert!((g[0] - 1.0 / 0.1).abs() < 1e-4, "{g:?}");
        assert!((g[1] - 14.0 / 0.1).abs() < 1e-3, "{g:?}");
        let hybrid = shape(3);
        let h = Tensor::zeros((1, 3), candle_core::DType::F32, &dev).unwrap();
        let one = Var::from_vec(vec![0.3f32], 1, &dev).unwrap();
        let h = add(&one, &hybrid, h, &[vec![(0, 2)]], None).unwrap();
        let h = h.to_vec2::<f32>().unwrap();
        assert!((h[0][2] - 3.0).abs() < 1e-5 && h[0][0] == 0.0, "{h:?}");
    }
}
