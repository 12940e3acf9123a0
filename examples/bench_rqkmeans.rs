//! RQ-Kmeans training and encoding speed, and the gemm ceiling they run against.
//!
//! ```text
//! cargo run --release --example bench_rqkmeans -- --n 100000 --d 128 --k 256 --levels 3 --threads 1 --json
//! ```
//!
//! Data: a Gaussian mixture with unit-norm rows (`--write FILE.npy` saves it),
//! or `--input FILE.npy` to run on given vectors, so the same data can go to
//! FAISS (`benches/faiss_rqkmeans.py`). Training follows FAISS's defaults:
//! 20 Lloyd rounds per level on at most 256 points per centroid.

use std::path::PathBuf;
use std::time::Instant;

use adasid::data::embeddings::read_table;
use adasid::kmeans::{EuclideanParams, ResidualQuantizer, normalize_rows};
use candle_core::{Device, Tensor};
use clap::Parser;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    #[arg(long, default_value_t = 128)]
    d: usize,
    #[arg(long, default_value_t = 256)]
    k: usize,
    #[arg(long, default_value_t = 3)]
    levels: usize,
    #[arg(long, default_value_t = 20)]
    iterations: usize,
    /// Worker threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Mixture components of the generated data.
    #[arg(long, default_value_t = 1000)]
    components: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run on these vectors (float `.npy`, rows = vectors) instead.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Save the generated vectors here (float32 `.npy`).
    #[arg(long)]
    write: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// Unit-norm rows around `components` random centres (noise 0.5 per coordinate).
fn mixture(n: usize, d: usize, components: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0f32, 1.0).expect("valid normal");
    let centres: Vec<f32> = (0..components * d)
        .map(|_| normal.sample(&mut rng))
        .collect();
    let mut out = Vec::with_capacity(n * d);
    for _ in 0..n {
        let c = rand::Rng::gen_range(&mut rng, 0..components);
        out.extend((0..d).map(|j| centres[c * d + j] + 0.5 * normal.sample(&mut rng)));
    }
    normalize_rows(&mut out, d);
    out
}

/// Raw single-thread gemm rate (GFLOP/s) for the shape k-means uses:
/// `rows × d` times `d × k`, best of three.
fn gemm_gflops(rows: usize, d: usize, k: usize) -> f64 {
    let a = vec![0.5f32; rows * d];
    let c = vec![0.25f32; k * d];
    let mut dst = vec![0f32; rows * k];
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        // SAFETY: dst rows×k, a rows×d, c k×d (read transposed), all row-major and live.
        unsafe {
            gemm::gemm(
                rows,
                k,
                d,
                dst.as_mut_ptr(),
                1,
                k as isize,
                false,
                a.as_ptr(),
                1,
                d as isize,
                c.as_ptr(),
                d as isize,
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        best = best.min(t.elapsed().as_secs_f64());
        std::hint::black_box(&dst);
    }
    2.0 * (rows * d * k) as f64 / best / 1e9
}

fn main() -> adasid::Result<()> {
    let a = Args::parse();
    let (points, d) = match &a.input {
        Some(path) => {
            let dir = path.parent().unwrap_or(std::path::Path::new("."));
            let name = path
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default();
            let t = read_table(dir, name)?;
            (t.data, t.dim)
        }
        None => (mixture(a.n, a.d, a.components, a.seed), a.d),
    };
    if let Some(path) = &a.write {
        Tensor::from_slice(&points, (points.len() / d, d), &Device::Cpu)
            .and_then(|t| t.write_npy(path))
            .map_err(|e| adasid::Error::InvalidArgument(format!("{}: {e}", path.display())))?;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()
        .expect("thread pool");
    let n = points.len() / d;
    let params = EuclideanParams {
        k: a.k,
        iterations: a.iterations,
        ..Default::default()
    };
    let value = pool.install(|| {
        let t = Instant::now();
        let rq = ResidualQuantizer::train(
            &points,
            d,
            a.levels,
            &params,
            &mut ChaCha8Rng::seed_from_u64(a.seed),
            |_, _| {},
        );
        let train_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let (_, errors) = rq.encode(&points);
        let encode_s = t.elapsed().as_secs_f64();
        let mse = errors.iter().map(|&e| e as f64).sum::<f64>() / n as f64;
        let gflops = gemm_gflops(16384, d, a.k);
        let encode_flops = 2.0 * (n * d * a.k * a.levels) as f64;
        // Lloyd rounds on the training sample plus one full assignment per level.
        let sample = n.min(a.k * params.max_points_per_centroid);
        let train_flops = encode_flops + 2.0 * (sample * d * a.k * a.levels * a.iterations) as f64;
        json!({
            "n": n, "d": d, "k": a.k, "levels": a.levels, "threads": pool.current_num_threads(),
            "train_s": train_s,
            "encode_vec_per_s": n as f64 / encode_s,
            "mse": mse,
            "gemm_gflops": gflops,
            "encode_gflops": encode_flops / encode_s / 1e9,
            "train_gflops": train_flops / train_s / 1e9,
        })
    });
    if a.json {
        println!("{value}")
    } else {
        println!("{}", serde_json::to_string_pretty(&value).expect("json"))
    }
    Ok(())
}
