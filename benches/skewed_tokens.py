"""Writes a token file of skewed synthetic SIDs for ingest benchmarks:
8 levels, K = 300, each token Zipf(1.3)-distributed over a shuffled
codebook, the last 2 positions behavior SIDs masked for 30% of items.

    python benches/skewed_tokens.py --items 1000000 --seed 0 --out t1m.tsv
    adasid ingest-tokens --db db --tokens t1m.tsv --k 300 --behavior 2 --json
"""

import argparse

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    n, k = a.items, 300
    ranks = np.minimum(rng.zipf(1.3, size=(n, 8)) - 1, k - 1)
    tokens = rng.permutation(k)[ranks]
    masked = rng.random((n, 2)) < 0.3
    weights = np.round(rng.random((n, 2)) * 0.9 + 0.1, 3)
    weights[masked] = 0
    with open(a.out, "w") as f:
        for i in range(n):
            t = [str(x) for x in tokens[i, :6]]
            t += ["-" if masked[i, j] else str(tokens[i, 6 + j]) for j in range(2)]
            f.write(f"item{i}\t{','.join(t)}\t{weights[i, 0]},{weights[i, 1]}\n")


if __name__ == "__main__":
    main()
