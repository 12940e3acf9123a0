//! Helpers shared by the benchmark examples.

use std::time::Instant;

/// Median over `reps` runs of `f` (which performs `ops` operations), in ns per operation.
pub fn median_ns(reps: usize, ops: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_nanos() as f64 / ops as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[reps / 2]
}
