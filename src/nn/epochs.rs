//! The epoch loop every trained tokenizer runs: a freshly shuffled order cut
//! into batches, per-codebook usage counts, and re-seeding of the codes no
//! batch chose.
//!
//! Invariant: for a seed the loop draws from its generator in one fixed order
//! (shuffle, then whatever the epoch body draws), so a tokenizer trained
//! through it is reproducible on CPU.

use std::time::Instant;

use candle_core::{Tensor, Var};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::params::ml;
use crate::error::{Error, Result};

/// Contrastive and batch-statistics losses need two rows; so does training.
const MIN_ROWS: usize = 2;

/// The error for a catalogue too small to train on.
pub fn check_trainable(rows: usize) -> Result<()> {
    if rows < MIN_ROWS {
        return Err(Error::InvalidArgument(format!(
            "training needs at least {MIN_ROWS} items"
        )));
    }
    Ok(())
}

/// The size of a training run.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Rows of the training table.
    pub rows: usize,
    /// Rows per step; a last batch under two rows is skipped.
    pub batch_size: usize,
    /// Epochs to run.
    pub epochs: usize,
    /// Codebooks whose usage is counted.
    pub codebooks: usize,
    /// Codes per codebook.
    pub k: usize,
}

/// How often each code of each codebook was chosen during an epoch.
pub struct Usage {
    counts: Vec<Vec<u32>>,
}

impl Usage {
    fn new(codebooks: usize, k: usize) -> Self {
        Usage {
            counts: vec![vec![0; k]; codebooks],
        }
    }

    /// Counts one batch's tokens, one `[batch]` u32 tensor per codebook.
    pub fn record(&mut self, tokens: &[Tensor]) -> Result<()> {
        for (counts, t) in self.counts.iter_mut().zip(tokens) {
            for tok in t.to_vec1::<u32>().map_err(ml)? {
                counts[tok as usize] += 1;
            }
        }
        Ok(())
    }

    /// Share of codes chosen at least once, per codebook.
    pub fn utilisation(&self) -> Vec<f64> {
        self.counts
            .iter()
            .map(|c| c.iter().filter(|&&n| n > 0).count() as f64 / c.len() as f64)
            .collect()
    }

    /// Codes of `codebook` no batch chose.
    pub fn dead(&self, codebook: usize) -> Vec<usize> {
        let counts = &self.counts[codebook];
        (0..counts.len()).filter(|&c| counts[c] == 0).collect()
    }
}

/// One epoch in progress.
pub struct Epoch<'a> {
    /// 1-based epoch number.
    pub number: usize,
    /// Codes chosen so far this epoch.
    pub usage: Usage,
    order: &'a [usize],
    plan: Plan,
    start: Instant,
}

impl<'a> Epoch<'a> {
    /// This epoch's batches of row indices, in shuffled order.
    pub fn batches(&self) -> impl Iterator<Item = &'a [usize]> + 'a {
        self.order
            .chunks(self.plan.batch_size)
            .filter(|c| c.len() >= MIN_ROWS)
    }

    /// Whether dead codes are re-seeded after this epoch: always but in the
    /// last tenth of the run, so the codebooks settle before it ends.
    pub fn reseeds(&self) -> bool {
        self.number * 10 <= self.plan.epochs * 9
    }

    /// Wall time since the epoch began.
    pub fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// Runs `plan.epochs` epochs of `body`, which trains on the epoch's batches
/// and returns its figures; `progress` sees them as each epoch ends.
pub fn run<T>(
    plan: Plan,
    rng: &mut ChaCha8Rng,
    mut body: impl FnMut(&mut Epoch<'_>, &mut ChaCha8Rng) -> Result<T>,
    progress: &mut impl FnMut(&T),
) -> Result<Vec<T>> {
    let mut order: Vec<usize> = (0..plan.rows).collect();
    let mut history = Vec::with_capacity(plan.epochs);
    for number in 1..=plan.epochs {
        let start = Instant::now();
        order.shuffle(rng);
        let mut epoch = Epoch {
            number,
            usage: Usage::new(plan.codebooks, plan.k),
            order: &order,
            plan,
            start,
        };
        let stats = body(&mut epoch, rng)?;
        progress(&stats);
        history.push(stats);
    }
    Ok(history)
}

/// Replaces each `dead` row of `codes` (`k × dim`) by a random row of
/// `samples` (`n × dim`), the live inputs of that codebook; a no-op (drawing
/// nothing) when nothing is dead or there are no samples.
pub fn reseed(codes: &Var, dead: &[usize], samples: &Tensor, rng: &mut ChaCha8Rng) -> Result<()> {
    let (k, dim) = codes.dims2().map_err(ml)?;
    let n = samples.dim(0).map_err(ml)?;
    if dead.is_empty() || n == 0 {
        return Ok(());
    }
    let samples: Vec<f32> = samples
        .flatten_all()
        .and_then(|t| t.to_vec1())
        .map_err(ml)?;
    let mut rows: Vec<f32> = codes
        .as_tensor()
        .flatten_all()
        .and_then(|t| t.to_vec1())
        .map_err(ml)?;
    for &c in dead {
        let s = rng.gen_range(0..n);
        rows[c * dim..(c + 1) * dim].copy_from_slice(&samples[s * dim..(s + 1) * dim]);
    }
    let t = Tensor::from_vec(rows, (k, dim), codes.device()).map_err(ml)?;
    codes.set(&t).map_err(ml)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use rand::SeedableRng;

    #[test]
    fn usage_counts_and_dead_codes() {
        let dev = Device::Cpu;
        let mut u = Usage::new(2, 4);
        u.record(&[
            Tensor::new(&[0u32, 0, 3], &dev).unwrap(),
            Tensor::new(&[1u32, 2, 1], &dev).unwrap(),
        ])
        .unwrap();
        assert_eq!(u.utilisation(), vec![0.5, 0.5]);
        assert_eq!(u.dead(0), vec![1, 2]);
        assert_eq!(u.dead(1), vec![0, 3]);
    }

    #[test]
    fn epochs_cover_every_row_and_stop_reseeding_in_the_last_tenth() {
        let plan = Plan {
            rows: 7,
            batch_size: 3,
            epochs: 10,
            codebooks: 1,
            k: 2,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let seen = run(
            plan,
            &mut rng,
            |e, _| {
                let mut rows: Vec<usize> = e.batches().flatten().copied().collect();
                let sizes: Vec<usize> = e.batches().map(<[usize]>::len).collect();
                rows.sort();
                Ok((rows, sizes, e.reseeds()))
            },
            &mut |_| {},
        )
        .unwrap();
        for (rows, sizes, _) in &seen {
            // 7 rows in batches of 3: the trailing single row is skipped.
            assert_eq!(sizes, &vec![3, 3]);
            assert_eq!(rows.len(), 6);
        }
        let reseeds: Vec<bool> = seen.iter().map(|s| s.2).collect();
        assert_eq!(reseeds, [vec![true; 9], vec![false]].concat());
        assert!(check_trainable(1).is_err() && check_trainable(2).is_ok());
    }

    #[test]
    fn reseed_copies_sample_rows_into_dead_codes_only() {
        let dev = Device::Cpu;
        let codes = Var::new(&[[0f32, 0.0], [1.0, 1.0], [2.0, 2.0]], &dev).unwrap();
        let samples = Tensor::new(&[[9f32, 8.0]], &dev).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        reseed(&codes, &[0, 2], &samples, &mut rng).unwrap();
        let got: Vec<Vec<f32>> = codes.as_tensor().to_vec2().unwrap();
        assert_eq!(got, vec![vec![9.0, 8.0], vec![1.0, 1.0], vec![9.0, 8.0]]);
        let none = Tensor::zeros((0, 2), candle_core::DType::F32, &dev).unwrap();
        reseed(&codes, &[1], &none, &mut rng).unwrap();
        assert_eq!(codes.as_tensor().to_vec2::<f32>().unwrap(), got);
    }
}
