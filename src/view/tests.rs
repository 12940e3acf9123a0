//! Model test: a [`State`] over a base snapshot with changes answers every
//! query exactly as one in-memory index of the same items, through
//! upserts, removals and re-basing on a snapshot of itself.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{BaseBytes, State};
use crate::index::{CandidateMode, CandidateQuery, Index, ItemId, SidIndex};
use crate::keymap::KeyMap;
use crate::sid::{EMPTY, SidLayout, Token};
use crate::snapshot::Snapshot;

/// Two semantic positions (the second a behavior one) of K = 3, plus the
/// disambiguation token: small enough that items share prefixes.
fn layout() -> SidLayout {
    SidLayout::new(2, 3, 1).unwrap()
}

#[derive(Clone, Debug)]
enum Op {
    /// Key number and full SID (taken as given when free).
    Upsert(u8, [Token; 3]),
    Remove(u8),
    /// Writes a snapshot of the state and continues from it.
    Rebase,
}

fn op() -> impl Strategy<Value = Op> {
    // Counters past K = 3 share mask column K with each other.
    let sid = (0..3u16, prop_oneof![0..3u16, Just(EMPTY)], 0..6u16).prop_map(|(a, b, c)| [a, b, c]);
    prop_oneof![
        5 => (0..24u8, sid).prop_map(|(k, s)| Op::Upsert(k, s)),
        2 => (0..24u8).prop_map(Op::Remove),
        1 => Just(Op::Rebase),
    ]
}

fn weights(sid: &[Token]) -> Vec<f32> {
    vec![if sid[1] == EMPTY { 0.0 } else { 0.5 }]
}

/// What the database does on a write: take re-encoded or removed items out, then insert.
fn upsert(state: &mut State, key: &str, id: ItemId, sid: &[Token], existing: bool) {
    if existing {
        state.take(id).unwrap();
    }
    let w = weights(sid);
    let new_keys: Vec<(&str, ItemId)> = match existing {
        true => vec![],
        false => vec![(key, id)],
    };
    state.insert_with_keys(&[(id, sid, &w)], &new_keys).unwrap();
}

fn rebase(state: &State) -> State {
    let bytes = state.snapshot_bytes().unwrap();
    State::from_snapshot(Snapshot::new(BaseBytes::Vec(bytes)).unwrap())
}

/// The reference: every live item in a fresh in-memory index.
fn reference(model: &BTreeMap<String, (ItemId, [Token; 3])>) -> (Index, KeyMap) {
    let mut index = Index::new(layout());
    let mut keys = KeyMap::default();
    for (key, (id, sid)) in model {
        index.insert(*id, sid, &weights(sid)).unwrap();
        keys.insert(key, *id);
    }
    (index, keys)
}

fn check(state: &State, model: &BTreeMap<String, (ItemId, [Token; 3])>, next_id: ItemId) {
    let (index, keys) = reference(model);
    let want = State::new(index, keys);
    assert_eq!(state.len(), want.len());
    for id in 0..next_id + 1 {
        assert_eq!(state.contains(id), want.contains(id), "contains {id}");
        assert_eq!(state.sid(id), want.sid(id), "sid {id}");
        assert_eq!(state.key(id), want.key(id), "key {id}");
    }
    for key in (0..24).map(|k| format!("k{k}")) {
        assert_eq!(state.find(&key), want.find(&key), "id of {key}");
    }
    let mut prefixes: Vec<Vec<Token>> = vec![vec![]];
    for a in 0..3 {
        prefixes.push(vec![a]);
        for b in [0, 1, 2, EMPTY] {
            prefixes.push(vec![a, b]);
            for c in 0..7 {
                prefixes.push(vec![a, b, c]);
            }
        }
    }
    let words = state.mask_words();
    for p in &prefixes {
        let sorted = |v: &dyn SidIndex| v.items(p).map(|x| x.to_sorted_vec());
        assert_eq!(sorted(state), sorted(&want), "items {p:?}");
        assert_eq!(state.count(p), want.count(p), "count {p:?}");
        assert_eq!(state.is_valid(p), want.is_valid(p), "valid {p:?}");
        assert_eq!(state.next_tokens(p), want.next_tokens(p), "next {p:?}");
        let (mut got, mut exp) = (vec![0; words], vec![0; words]);
        state.write_mask(p, &mut got);
        want.write_mask(p, &mut exp);
        assert_eq!(got, exp, "mask {p:?}");
        if p.len() == 2 {
            let (d, w) = (state.disambiguators(p), want.disambiguators(p));
            assert_eq!(d, w, "disambiguators {p:?}");
        }
        for mode in [CandidateMode::Prefix, CandidateMode::Overlap] {
            let q = CandidateQuery {
                tokens: p,
                weights: &[0.5],
                k: 5,
                mode,
                exclude: Some(1),
            };
            assert_eq!(state.candidates(&q), want.candidates(&q), "{mode:?} {p:?}");
        }
    }
    for pos in 0..2 {
        // 3 is K (nothing), 5 stands for EMPTY, as in an index.
        for t in [0, 1, 2, 3, 5, EMPTY] {
            let got = state.position_postings(pos, t).to_sorted_vec();
            assert_eq!(
                got,
                want.position_postings(pos, t).to_sorted_vec(),
                "at {pos} {t}"
            );
        }
    }
    assert_eq!(state.prefix_counts(), want.prefix_counts());
    assert_eq!(state.node_count(), want.node_count());
    assert_eq!(state.by_sid(), want.by_sid());
    let mut seen = Vec::new();
    state.for_each_sid(&mut |i, s| seen.push((i, s.to_vec())));
    let mut expected = Vec::new();
    want.for_each_sid(&mut |i, s| expected.push((i, s.to_vec())));
    assert_eq!(seen, expected, "every item by ascending id");
    // A snapshot of the state is byte for byte the reference's.
    let bytes = state.snapshot_bytes().unwrap();
    assert_eq!(bytes, want.snapshot_bytes().unwrap());
}

fn run(ops: &[Op]) {
    let mut state = State::new(Index::new(layout()), KeyMap::default());
    let mut model: BTreeMap<String, (ItemId, [Token; 3])> = BTreeMap::new();
    let mut next_id = 0;
    for op in ops {
        match op {
            Op::Upsert(k, sid) => {
                let key = format!("k{k}");
                if model.values().any(|(_, s)| s == sid) {
                    continue; // full SIDs are unique: the planner refuses a taken one
                }
                let existing = model.get(&key).map(|&(id, _)| id);
                let id = existing.unwrap_or_else(|| {
                    next_id += 1;
                    next_id - 1
                });
                upsert(&mut state, &key, id, sid, existing.is_some());
                model.insert(key, (id, *sid));
            }
            Op::Remove(k) => {
                let key = format!("k{k}");
                if let Some((id, _)) = model.remove(&key) {
                    state.take(id).unwrap();
                    assert_eq!(state.remove_key(id).as_deref(), Some(key.as_str()));
                }
            }
            Op::Rebase => state = rebase(&state),
        }
        check(&state, &model, next_id);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn state_with_changes_matches_one_index(ops in prop::collection::vec(op(), 1..40)) {
        run(&ops);
    }
}

/// The cases the generator must reach, spelled out: a base item re-encoded
/// (its key moves to memory), one removed, and a removed key added again.
#[test]
fn re_encode_remove_and_re_add_over_a_base() {
    use Op::*;
    run(&[
        Upsert(1, [0, 0, 0]),
        Upsert(2, [0, 0, 1]),
        Upsert(3, [1, EMPTY, 0]),
        Rebase,
        Upsert(1, [2, 2, 0]),
        Remove(2),
        Upsert(2, [0, 0, 1]),
        Upsert(4, [0, 0, 2]),
        Rebase,
        Remove(4),
        Remove(3),
        // Counters past K = 3 share column K: removing one leaves it set.
        Upsert(5, [2, 1, 3]),
        Upsert(6, [2, 1, 4]),
        Upsert(7, [2, 1, 5]),
        Rebase,
        Remove(7),
        Remove(5),
        Remove(6),
    ]);
}
