//! `counts_along` against `count` asked at every length, over snapshots of
//! random items small enough to share prefixes (K = 3, a behavior position,
//! disambiguation counters past K), for held SIDs and others.

use proptest::prelude::*;

use super::Snapshot;
use crate::index::{Index, SidIndex};
use crate::keymap::KeyMap;
use crate::sid::{EMPTY, SidLayout, Token};

fn full_sid() -> impl Strategy<Value = [Token; 3]> {
    (0..3u16, prop_oneof![0..3u16, Just(EMPTY)], 0..6u16).prop_map(|(a, b, c)| [a, b, c])
}

proptest! {
    #[test]
    fn counts_along_is_count_at_every_length(
        held in proptest::collection::btree_set(full_sid(), 0..30),
        asked in proptest::collection::vec(full_sid(), 1..10),
    ) {
        let layout = SidLayout::new(2, 3, 1).unwrap();
        let mut index = Index::new(layout);
        let mut keys = KeyMap::sparse();
        for (id, sid) in held.iter().enumerate() {
            let w = if sid[1] == EMPTY { 0.0 } else { 1.0 };
            index.insert(id as u32, sid, &[w]).unwrap();
            keys.insert(&format!("k{id}"), id as u32);
        }
        let snap = Snapshot::new(super::to_bytes(&index, &keys).unwrap()).unwrap();
        for sid in held.iter().chain(&asked) {
            let along = snap.counts_along(sid);
            for len in 0..=sid.len() {
                prop_assert_eq!(along[len], snap.count(&sid[..len]), "{:?} at {}", sid, len);
            }
        }
    }
}
