//! Snapshots: every query on a snapshot equals the same query on the index it
//! was written from (model-based, after random inserts, updates and removals);
//! corrupt or truncated bytes never panic; writes are atomic.

use std::collections::BTreeSet;

use adasid::ReadView;
use adasid::decode::BeamSearch;
use adasid::keymap::KeyMap;
use adasid::snapshot::{self, Snapshot};
use adasid::{CandidateMode, CandidateQuery, EMPTY, Error, Index, SidIndex, SidLayout, Token};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::HashScorer;

/// An index and key map after a random history of writes.
pub(crate) fn random_index(seed: u64, layout: SidLayout, ops: usize) -> (Index, KeyMap) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut index = Index::new(layout);
    let mut keys = KeyMap::default();
    // A wide first level makes nodes with many children (the dense kind).
    let vocab = |pos: usize| {
        if pos == 0 && layout.k() > 20 {
            20
        } else if layout.is_disambiguation(pos) {
            // Counters past K = 4 and 8: nodes that must stay sparse.
            12
        } else {
            (layout.k() as u16).min(4)
        }
    };
    let mut next_id = 0u32;
    let first_behavior = layout.first_behavior();
    let random_sid = |rng: &mut ChaCha8Rng| {
        let mut full: Vec<Token> = (0..layout.full_len())
            .map(|pos| rng.gen_range(0..vocab(pos)))
            .collect();
        let mut weights = Vec::new();
        if layout.behavior > 0 && rng.gen_bool(0.7) {
            for b in 0..layout.behavior as usize {
                let w: f32 = if rng.gen_bool(0.3) {
                    0.0
                } else {
                    rng.gen_range(0.1..1.5)
                };
                if w == 0.0 {
                    full[first_behavior + b] = EMPTY;
                }
                weights.push(w);
            }
        }
        (full, weights)
    };
    for _ in 0..ops {
        let live: Vec<u32> = index.items(&[]).map_or(Vec::new(), |p| p.to_sorted_vec());
        match rng.gen_range(0..10) {
            0..=5 => {
                let (full, weights) = random_sid(&mut rng);
                if index.insert(next_id, &full, &weights).is_ok() {
                    assert!(keys.insert(&format!("item-{next_id:05}"), next_id));
                }
                next_id += rng.gen_range(1..3);
            }
            6..=7 if !live.is_empty() => {
                let id = live[rng.gen_range(0..live.len())];
                let (full, weights) = random_sid(&mut rng);
                let _ = index.update(id, &full, &weights);
            }
            _ if !live.is_empty() => {
                let id = live[rng.gen_range(0..live.len())];
                index.remove(id).unwrap();
                keys.remove(id);
            }
            _ => {}
        }
    }
    (index, keys)
}

/// Every prefix of every item's SID, plus random (mostly invalid) ones.
fn prefixes(index: &Index, rng: &mut ChaCha8Rng) -> Vec<Vec<Token>> {
    let layout = *index.layout();
    let mut out = BTreeSet::new();
    out.insert(Vec::new());
    for id in index.items(&[]).map_or(Vec::new(), |p| p.to_sorted_vec()) {
        let sid = index.sid(id).unwrap().0;
        for len in 1..=sid.len() {
            out.insert(sid[..len].to_vec());
        }
    }
    for _ in 0..50 {
        let len = rng.gen_range(0..=layout.full_len() + 1);
        out.insert(
            (0..len)
                .map(|_| match rng.gen_range(0..20) {
                    0 => EMPTY,
                    1 => layout.k() as Token,
                    _ => rng.gen_range(0..6),
                })
                .collect(),
        );
    }
    out.into_iter().collect()
}

fn assert_same(index: &Index, keys: &KeyMap, snap: &Snapshot<Vec<u8>>, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 1);
    assert_eq!(SidIndex::len(snap), index.len());
    assert_eq!(snap.layout(), index.layout());
    // `stats` reads either: prefix counts, trie nodes, codebook use.
    assert_eq!(
        adasid::stats::index_stats(snap),
        adasid::stats::index_stats(index)
    );
    let bound = index
        .items(&[])
        .map_or(0, |p| p.to_sorted_vec().last().map_or(0, |&l| l + 1));
    for id in 0..bound + 3 {
        assert_eq!(
            SidIndex::contains(snap, id),
            index.contains(id),
            "contains {id}"
        );
        assert_eq!(SidIndex::sid(snap, id), index.sid(id), "sid {id}");
        assert_eq!(
            snap.key(id),
            keys.key(id).filter(|_| index.contains(id)),
            "key {id}"
        );
        if let Some(k) = keys.key(id) {
            assert_eq!(snap.id(k).ok(), Some(id));
        }
    }
    assert_eq!(snap.id("no such key").ok(), None);
    let words = index.mask_words();
    for p in prefixes(index, &mut rng) {
        let want = index.items(&p).map(|x| x.to_sorted_vec());
        assert_eq!(
            SidIndex::items(snap, &p).map(|x| x.to_sorted_vec()),
            want,
            "items {p:?}"
        );
        assert_eq!(
            SidIndex::next_tokens(snap, &p).as_deref(),
            index.next_tokens(&p),
            "next {p:?}"
        );
        assert_eq!(SidIndex::count(snap, &p), index.count(&p));
        let (mut a, mut b) = (vec![7u64; words], vec![9u64; words]);
        SidIndex::write_mask(snap, &p, &mut a);
        SidIndex::write_mask(index, &p, &mut b);
        assert_eq!(a, b, "mask {p:?}");
        for mode in [CandidateMode::Prefix, CandidateMode::Overlap] {
            for k in [1, 3, 1000] {
                let weights: Vec<f32> = (0..index.layout().behavior)
                    .map(|_| rng.gen_range(0.0..1.0))
                    .collect();
                let exclude = rng.gen_bool(0.5).then(|| rng.gen_range(0..bound.max(1)));
                let q = CandidateQuery {
                    tokens: &p,
                    weights: &weights,
                    k,
                    mode,
                    exclude,
                };
                assert_eq!(
                    SidIndex::candidates(snap, &q),
                    index.candidates(&q),
                    "{mode:?} k {k} {p:?}"
                );
            }
        }
    }
    let layout = *index.layout();
    for width in [1, 4, 64] {
        let mut beam = BeamSearch::new(layout, width).unwrap();
        let a = beam
            .search(
                index,
                &mut HashScorer {
                    seed,
                    vocab: layout.mask_bits(),
                },
            )
            .unwrap();
        let b = beam
            .search(
                snap,
                &mut HashScorer {
                    seed,
                    vocab: layout.mask_bits(),
                },
            )
            .unwrap();
        assert_eq!(a, b, "beam width {width}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn snapshot_answers_like_the_index(
        seed in any::<u64>(),
        levels in 1u32..5,
        k in prop::sample::select(vec![4u32, 8, 300]),
        behavior in 0u32..3,
        ops in 0usize..120,
    ) {
        let layout = SidLayout::new(levels, k, behavior.min(levels)).unwrap();
        let (index, keys) = random_index(seed, layout, ops);
        let snap = Snapshot::new(snapshot::to_bytes(&index, &keys).unwrap()).unwrap();
        snap.verify().unwrap();
        assert_same(&index, &keys, &snap, seed);
    }
}

fn small() -> (Index, KeyMap) {
    random_index(7, SidLayout::new(2, 4, 1).unwrap(), 12)
}

/// Runs every kind of query; the answers do not matter, only that nothing panics.
fn exercise<D: AsRef<[u8]>>(s: &Snapshot<D>) {
    let layout = *s.layout();
    let mut mask = vec![0u64; layout.mask_words()];
    for a in (0..5).chain([EMPTY]) {
        for b in (0..5).chain([EMPTY]) {
            for p in [vec![], vec![a], vec![a, b], vec![a, b, 0], vec![a, b, 1, 2]] {
                if let Some(items) = s.items(&p) {
                    items.iter().for_each(drop);
                }
                let _ = s.next_tokens(&p);
                s.write_mask(&p, &mut mask);
                for mode in [CandidateMode::Prefix, CandidateMode::Overlap] {
                    let q = CandidateQuery {
                        tokens: &p,
                        weights: &[0.5],
                        k: 5,
                        mode,
                        exclude: Some(1),
                    };
                    let _ = s.candidates(&q);
                }
            }
        }
    }
    for id in 0..40 {
        let _ = (s.sid(id), s.key(id), s.contains(id));
    }
    let _ = s.id("item-00003");
    let _ = BeamSearch::new(layout, 8).map(|mut b| {
        b.search(
            s,
            &mut HashScorer {
                seed: 1,
                vocab: layout.mask_bits(),
            },
        )
    });
}

#[test]
fn every_flipped_byte_is_caught_by_verify_and_never_panics() {
    let (index, keys) = small();
    let bytes = snapshot::to_bytes(&index, &keys).unwrap();
    assert!(bytes.len() > 300, "a snapshot with every section");
    for i in 0..bytes.len() {
        for flip in [0xFFu8, 0x01] {
            let mut bad = bytes.clone();
            bad[i] ^= flip;
            match Snapshot::new(bad) {
                Err(e) => assert!(
                    matches!(
                        e,
                        Error::DataCorruption { .. } | Error::VersionMismatch { .. }
                    ),
                    "byte {i}: {e}"
                ),
                Ok(s) => {
                    assert!(s.verify().is_err(), "byte {i} ^ {flip:#x} went unnoticed");
                    exercise(&s);
                }
            }
        }
    }
}

#[test]
fn truncated_or_extended_files_are_refused() {
    let (index, keys) = small();
    let bytes = snapshot::to_bytes(&index, &keys).unwrap();
    for len in 0..bytes.len() {
        let err = Snapshot::new(bytes[..len].to_vec()).unwrap_err();
        assert!(matches!(err, Error::DataCorruption { .. }), "{len}: {err}");
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 8]);
    assert!(Snapshot::new(longer).is_err());
}

#[test]
fn a_newer_version_is_refused_by_name() {
    let (index, keys) = small();
    let mut bytes = snapshot::to_bytes(&index, &keys).unwrap();
    let newer = snapshot::VERSION + 1;
    bytes[8..10].copy_from_slice(&newer.to_le_bytes());
    let err = Snapshot::new(bytes).unwrap_err();
    assert!(
        matches!(err, Error::VersionMismatch { found, .. } if found == newer as u32),
        "{err}"
    );
}

#[test]
fn write_replaces_the_file_atomically_and_open_maps_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.snap");
    let (index, keys) = small();
    snapshot::write(&index, &keys, &path).unwrap();
    let first = Snapshot::open(&path).unwrap();
    first.verify().unwrap();
    let (bigger, more_keys) = random_index(8, SidLayout::new(2, 4, 1).unwrap(), 40);
    snapshot::write(&bigger, &more_keys, &path).unwrap();
    // The old mapping still reads the old file; a new open reads the new one.
    assert_eq!(SidIndex::len(&first), index.len());
    let second = Snapshot::open(&path).unwrap();
    assert_eq!(SidIndex::len(&second), bigger.len());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["index.snap"], "no temporary file left behind");
    let err = Snapshot::open(&dir.path().join("missing.snap")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

/// This process's umask, from /proc (Linux), without changing it.
#[cfg(target_os = "linux")]
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line.split_whitespace().nth(1).unwrap(), 8).unwrap()
}

#[test]
#[cfg(target_os = "linux")]
fn snapshots_honour_the_umask_and_clear_what_killed_writers_left() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // Left by a writer that no longer runs (no pid is that large), and one by a live one.
    let stale = dir.path().join(".adasid-snapshot-999999999-abc");
    let live = dir
        .path()
        .join(format!(".adasid-snapshot-{}-abc", std::process::id()));
    std::fs::write(&stale, b"half a snapshot").unwrap();
    std::fs::write(&live, b"being written").unwrap();
    let path = dir.path().join("index.snap");
    let (index, keys) = small();
    snapshot::write(&index, &keys, &path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666 & !umask(), "created as any file is");
    assert!(!stale.exists(), "a dead writer's temporary file is removed");
    assert!(live.exists(), "a running writer's temporary file is kept");
}

#[test]
fn an_empty_index_snapshots() {
    let index = Index::new(SidLayout::new(3, 16, 1).unwrap());
    let snap = Snapshot::new(snapshot::to_bytes(&index, &KeyMap::default()).unwrap()).unwrap();
    snap.verify().unwrap();
    assert_eq!(SidIndex::len(&snap), 0);
    assert_eq!(snap.items(&[]).unwrap().len(), 0);
    assert_eq!(snap.next_tokens(&[]).as_deref(), Some(&[][..]));
    assert!(snap.items(&[1]).is_none());
    assert_eq!(
        adasid::stats::index_stats(&snap),
        adasid::stats::index_stats(&index)
    );
}

#[test]
fn token_k_is_out_of_range_not_empty_in_a_wide_node() {
    // Position 0 is a behavior SID, so the root has an EMPTY child; with 12
    // children it keeps a dense slot table, where token K would alias EMPTY.
    let layout = SidLayout::new(1, 16, 1).unwrap();
    let mut index = Index::new(layout);
    let mut keys = KeyMap::default();
    for t in 0..12u16 {
        let token = if t == 11 { EMPTY } else { t };
        let weights = [if t == 11 { 0.0 } else { 0.5 }];
        index.insert(t as u32, &[token, 0], &weights).unwrap();
        keys.insert(&format!("k{t}"), t as u32);
    }
    let snap = Snapshot::new(snapshot::to_bytes(&index, &keys).unwrap()).unwrap();
    for s in [&index as &dyn SidIndex, &snap] {
        assert!(s.items(&[16]).is_none());
        assert!(s.items(&[EMPTY]).is_some());
        let q = CandidateQuery {
            tokens: &[16],
            weights: &[1.0],
            k: 5,
            mode: CandidateMode::Overlap,
            exclude: None,
        };
        assert!(s.candidates(&q).is_empty());
    }
    assert_same(&index, &keys, &snap, 3);
}

#[test]
fn padding_bits_of_a_damaged_dense_mask_never_reach_a_decoder() {
    let layout = SidLayout::new(1, 16, 0).unwrap();
    let mut index = Index::new(layout);
    let mut keys = KeyMap::default();
    for t in 0..12u16 {
        index.insert(t as u32, &[t, 0], &[]).unwrap();
        keys.insert(&format!("k{t}"), t as u32);
    }
    let mut bytes = snapshot::to_bytes(&index, &keys).unwrap();
    // Section 9 (dense masks): set every bit of the root's mask, then reseal.
    let entry = 24 + 8 * 24;
    let offset = u64::from_le_bytes(bytes[entry + 8..entry + 16].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(bytes[entry + 16..entry + 24].try_into().unwrap()) as usize;
    assert_eq!(len, 8, "the root is the one dense node");
    bytes[offset..offset + 8].fill(0xFF);
    snapshot::reseal(&mut bytes).unwrap();
    let snap = Snapshot::new(bytes).unwrap();
    snap.verify().unwrap();
    let mut mask = [0u64];
    snap.write_mask(&[], &mut mask);
    assert_eq!(mask[0], (1 << 17) - 1, "only the K + 1 real bits");
    let hits = BeamSearch::new(layout, 20).unwrap().search(
        &snap,
        &mut HashScorer {
            seed: 5,
            vocab: layout.mask_bits(),
        },
    );
    assert!(hits.is_err() || hits.unwrap().len() <= 12);
}
