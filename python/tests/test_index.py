"""The binding against a brute-force reference over the same SIDs."""

import numpy as np
import pytest

import adasid


def full_sids(view, keys):
    return {key: tuple(view.sid(key)) for key in keys}


def reference_next(sids, prefix):
    n = len(prefix)
    under = [s for s in sids.values() if s[:n] == tuple(prefix)]
    if not under and prefix:
        return None
    return sorted({s[n] for s in under if len(s) > n})


def test_layout_and_size(catalogue):
    view, keys, _ = catalogue
    assert (view.levels, view.k, view.behavior, view.full_len) == (3, 16, 1, 4)
    assert len(view) == len(keys)
    assert not view.lagging


def test_prefix_queries_match_brute_force(catalogue):
    view, keys, _ = catalogue
    sids = full_sids(view, keys)
    ids = {key: view.id(key) for key in keys}
    rng = np.random.default_rng(1)
    prefixes = [[]] + [list(s[: rng.integers(0, 5)]) for s in list(sids.values())[:200]]
    prefixes += [[1, 2, 3], [15, 15], [0, 0, 16], [0, 0, 0, 40]]
    for prefix in prefixes:
        want = sorted(ids[k] for k, s in sids.items() if s[: len(prefix)] == tuple(prefix))
        got = view.items(prefix)
        assert got.dtype == np.uint32
        assert list(got) == want, prefix
        assert view.count(prefix) == len(want)
        assert view.next_tokens(prefix) == reference_next(sids, prefix), prefix


def test_masks_for_a_whole_beam_step_in_one_call(catalogue):
    view, keys, _ = catalogue
    sids = full_sids(view, keys)
    for depth in range(view.full_len):
        rows = np.array([list(s[:depth]) for s in list(sids.values())[:64]], dtype=np.int64)
        rows = rows.reshape(64, depth)
        if depth:
            rows[5] = 11  # possibly no item: then an all-false row
        mask = view.allowed_mask(rows)
        assert mask.shape == (64, view.k + 1) and mask.dtype == np.bool_
        offsets, tokens = view.next_tokens_batch(rows)
        for b, row in enumerate(rows):
            nxt = reference_next(sids, list(row)) or []
            assert list(np.nonzero(mask[b])[0]) == sorted({min(t, view.k) for t in nxt})
            assert list(tokens[offsets[b]:offsets[b + 1]]) == nxt


def test_keys_ids_and_sids_round_trip(catalogue):
    view, keys, _ = catalogue
    for key in keys[:50]:
        sid = view.sid(key)
        assert view.lookup(sid) == key
        assert view.key(view.id(key)) == key
    assert view.lookup([0, 0, 0, 999]) is None
    with pytest.raises(KeyError):
        view.id("no such key")
    with pytest.raises(ValueError, match="out of range"):
        view.items([17])
    with pytest.raises(ValueError, match="prefix has 5 tokens"):
        view.items([1, 1, 1, 1, 1])
    near = view.candidates(keys[0], k=5)
    assert len(near) == 5 and keys[0] not in [k for k, _ in near]
    assert [s for _, s in near] == sorted((s for _, s in near), reverse=True)
    with pytest.raises(ValueError, match="mode"):
        view.candidates(keys[0], mode="nearest")


def test_missing_paths_are_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        adasid.open(tmp_path / "nothing.db")
    with pytest.raises(FileNotFoundError):
        adasid.open_snapshot(tmp_path / "nothing.snap")


def test_a_database_is_read_through_its_publication_and_holds_no_lock(tmp_path):
    import shutil
    path = tmp_path / "p.db"
    sids = np.array([[1, 2], [1, 3], [2, 0]], dtype=np.int64)
    view = adasid.create(path, ["a", "b", "c"], sids, k=4)
    assert view.source == "published" and not view.lagging
    del view
    # A database without a current publication (an older version's, or one
    # a crash left unpublished) is published on open and read from there.
    shutil.rmtree(path / "published")
    view = adasid.open(path)
    assert view.source == "published" and (path / "published").is_dir()
    assert len(view) == 3 and view.items([1]).tolist() == [0, 1]
    assert adasid.open(path).source == "published"
    assert adasid.open_snapshot(next((path / "published").glob("*/index.snap"))).source == "snapshot"


def test_counters_run_past_k(tmp_path):
    sids = np.array([[3, 1]] * 20 + [[3, 2]], dtype=np.int64)
    view = adasid.create(tmp_path / "c.db", [f"c{i}" for i in range(21)], sids, k=4)
    assert view.max_counter() == 19
    assert view.next_tokens([3, 1]) == list(range(20))
    # Counters of K or more share the overflow column K.
    assert list(np.nonzero(view.allowed_mask(np.array([[3, 1]]))[0])[0]) == [0, 1, 2, 3, 4]
    assert view.lookup([3, 1, 17]) == "c17"


def test_bad_creation_leaves_nothing(tmp_path):
    path = tmp_path / "bad.db"
    with pytest.raises(ValueError, match="row 1"):
        adasid.create(path, ["a", "b"], np.array([[1, 2], [1, 9]]), k=4)
    assert not path.exists()
    with pytest.raises(ValueError, match="keys"):
        adasid.create(path, ["a"], np.array([[1, 2], [1, 3]]), k=4)
    adasid.create(path, ["a"], np.array([[1, 2]]), k=4)
    with pytest.raises(ValueError, match="exists"):
        adasid.create(path, ["a"], np.array([[1, 2]]), k=4)
