"""FAISS reference for `examples/bench_rqkmeans.rs`: the same residual k-means
(L successive faiss.Kmeans, 20 rounds, FAISS's default 256 points per
centroid) on the same vectors, printing the same JSON fields.

    cargo run --release --example bench_rqkmeans -- --threads 1 --write /tmp/mix.npy
    python3 benches/faiss_rqkmeans.py --input /tmp/mix.npy --threads 1
"""
import argparse
import json
import time

import faiss
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("--input", required=True)
p.add_argument("--k", type=int, default=256)
p.add_argument("--levels", type=int, default=3)
p.add_argument("--iterations", type=int, default=20)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--seed", type=int, default=1)
a = p.parse_args()
faiss.omp_set_num_threads(a.threads)
x = np.ascontiguousarray(np.load(a.input).astype(np.float32))
n, d = x.shape

t = time.perf_counter()
residual = x.copy()
codebooks = []
for level in range(a.levels):
    km = faiss.Kmeans(d, a.k, niter=a.iterations, seed=a.seed + level)
    km.train(residual)
    _, assign = km.index.search(residual, 1)
    residual -= km.centroids[assign[:, 0]]
    codebooks.append(km.centroids.copy())
train_s = time.perf_counter() - t

t = time.perf_counter()
residual = x.copy()
for c in codebooks:
    index = faiss.IndexFlatL2(d)
    index.add(c)
    _, assign = index.search(residual, 1)
    residual -= c[assign[:, 0]]
encode_s = time.perf_counter() - t
mse = float((residual ** 2).sum(axis=1).mean())
print(json.dumps({"n": n, "d": d, "k": a.k, "levels": a.levels, "threads": a.threads,
                  "train_s": train_s, "encode_vec_per_s": n / encode_s, "mse": mse,
                  "faiss": faiss.__version__}))
