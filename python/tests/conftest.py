"""Shared fixtures: small databases built through the package itself."""

import numpy as np
import pytest

import adasid


def random_sids(n, levels, k, behavior, seed, spread=None):
    """Semantic SID rows (column spelling): a small alphabet per position so
    prefixes are shared and items collide; masked behavior tokens (= k) for
    about a fifth of the behavior positions."""
    rng = np.random.default_rng(seed)
    spread = spread or k
    sids = rng.integers(0, spread, size=(n, levels), dtype=np.int64)
    if behavior:
        masked = rng.random((n, behavior)) < 0.2
        sids[:, levels - behavior:][masked] = k
    return sids


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory):
    """3,000 items, 3 levels, K = 16, the last position a behavior SID."""
    path = tmp_path_factory.mktemp("db") / "items.db"
    sids = random_sids(3000, 3, 16, 1, seed=7, spread=12)
    keys = [f"item{i:05d}" for i in range(len(sids))]
    view = adasid.create(path, keys, sids, k=16, behavior=1)
    return view, keys, path
