//! Early stopping on a validation score: the weights of the best epoch so
//! far, and when to stop — after `patience` epochs in a row none of which
//! reached the best score (an epoch that ties the best does not count
//! against it).

use super::ParamStore;
use crate::error::Result;

/// The best epoch's weights and the epochs since.
pub struct EarlyStop {
    patience: usize,
    best: Option<(f64, Vec<u8>)>,
    stale: usize,
}

impl EarlyStop {
    /// Stops after `patience` (at least 1) epochs without a better score.
    pub fn new(patience: usize) -> Self {
        EarlyStop {
            patience: patience.max(1),
            best: None,
            stale: 0,
        }
    }

    /// Records an epoch's validation `score`, keeping `params`' weights when
    /// it is the best so far; whether training should stop now.
    pub fn record(&mut self, score: f64, params: &ParamStore) -> Result<bool> {
        match &self.best {
            Some((b, _)) if score < *b => self.stale += 1,
            Some((b, _)) if score == *b => self.stale = 0,
            _ => {
                self.best = Some((score, params.to_bytes()?));
                self.stale = 0;
            }
        }
        Ok(self.stale >= self.patience)
    }

    /// The best epoch's weights (none before the first record).
    pub fn into_weights(self) -> Option<Vec<u8>> {
        self.best.map(|b| b.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};
    use rand::SeedableRng;

    #[test]
    fn keeps_the_first_best_epoch_and_stops_after_patience_worse_ones() {
        let mut params = ParamStore::new(Device::Cpu, rand_chacha::ChaCha8Rng::seed_from_u64(1));
        let w = params.constant("w", &[1], 0.0).unwrap();
        let mut stop = EarlyStop::new(2);
        let scores = [0.1, 0.3, 0.2, 0.3, 0.25, 0.2];
        let mut stopped = Vec::new();
        for (epoch, &s) in scores.iter().enumerate() {
            w.set(&Tensor::new(&[epoch as f32 + 1.0], &Device::Cpu).unwrap())
                .unwrap();
            stopped.push(stop.record(s, &params).unwrap());
        }
        // A tie with the best (epoch 4) resets the count but keeps epoch 2.
        assert_eq!(stopped, [false, false, false, false, false, true]);
        params.load_bytes(&stop.into_weights().unwrap()).unwrap();
        assert_eq!(w.as_tensor().to_vec1::<f32>().unwrap(), [2.0]);
    }
}
