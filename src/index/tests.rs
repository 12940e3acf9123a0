use super::*;
use crate::sid::EMPTY;

fn layout() -> SidLayout {
    SidLayout::new(3, 8, 1).unwrap()
}

fn tokens(p: Option<Postings<'_>>) -> Vec<u32> {
    p.map(|p| p.iter().collect()).unwrap_or_default()
}

#[test]
fn insert_split_and_collapse() {
    let mut ix = Index::new(layout());
    ix.insert(0, &[1, 2, 3, 0], &[]).unwrap();
    assert_eq!(ix.node_count(), 1);
    assert_eq!(ix.next_tokens(&[1]).unwrap(), &[2]);
    assert_eq!(ix.next_tokens(&[1, 2, 3, 0]).unwrap(), &[] as &[Token]);
    ix.insert(1, &[1, 2, 4, 0], &[]).unwrap();
    assert_eq!(ix.node_count(), 3);
    assert_eq!(ix.next_tokens(&[1, 2]).unwrap(), &[3, 4]);
    assert_eq!(tokens(ix.items(&[1])), vec![0, 1]);
    assert_eq!(tokens(ix.items(&[1, 2, 4])), vec![1]);
    assert!(ix.items(&[1, 3]).is_none());
    ix.remove(0).unwrap();
    assert_eq!(ix.node_count(), 1);
    assert_eq!(tokens(ix.items(&[1, 2])), vec![1]);
    assert!(!ix.is_valid(&[1, 2, 3]));
    assert_eq!(ix.next_tokens(&[1, 2]).unwrap(), &[4]);
}

#[test]
fn empty_token_and_masks() {
    let mut ix = Index::new(layout());
    ix.insert(5, &[1, 2, EMPTY, 0], &[0.0]).unwrap();
    ix.insert(6, &[1, 2, 7, 0], &[0.5]).unwrap();
    assert_eq!(ix.next_tokens(&[1, 2]).unwrap(), &[7, EMPTY]);
    let mut out = vec![0u64; 3 * ix.mask_words()];
    ix.allowed_mask(&[vec![1u16, 2], vec![1, 3], vec![]], &mut out)
        .unwrap();
    assert_eq!(out[0], (1 << 7) | (1 << 8));
    assert_eq!(out[1], 0);
    assert_eq!(out[2], 1 << 1);
    assert!(ix.allowed_mask(&[vec![1u16]], &mut out).is_err());
}

#[test]
fn rejects_bad_sids() {
    let mut ix = Index::new(layout());
    assert!(ix.insert(0, &[1, 2, 3], &[]).is_err());
    assert!(ix.insert(0, &[8, 2, 3, 0], &[]).is_err());
    assert!(ix.insert(0, &[EMPTY, 2, 3, 0], &[]).is_err());
    assert!(
        ix.insert(0, &[1, 2, 3, 0], &[0.0]).is_err(),
        "zero weight needs EMPTY"
    );
    ix.insert(0, &[1, 2, 3, 0], &[]).unwrap();
    assert!(
        ix.insert(1, &[1, 2, 3, 0], &[]).is_err(),
        "duplicate full SID"
    );
    assert!(ix.insert(0, &[1, 2, 4, 0], &[]).is_err(), "duplicate item");
    assert_eq!(ix.len(), 1);
}

#[test]
fn disambiguators_list_items() {
    let mut ix = Index::new(layout());
    assert!(ix.disambiguators(&[1, 2, 3]).is_empty());
    ix.insert(0, &[1, 2, 3, 0], &[]).unwrap();
    assert_eq!(ix.disambiguators(&[1, 2, 3]), vec![(0, 0)]);
    ix.insert(1, &[1, 2, 3, 1], &[]).unwrap();
    ix.insert(2, &[1, 2, 3, 4], &[]).unwrap();
    ix.remove(1).unwrap();
    assert_eq!(ix.disambiguators(&[1, 2, 3]), vec![(0, 0), (4, 2)]);
}

#[test]
fn prefix_candidates_back_off_by_depth() {
    let mut ix = Index::new(layout());
    ix.insert(0, &[1, 2, 3, 0], &[]).unwrap();
    ix.insert(1, &[1, 2, 4, 0], &[]).unwrap();
    ix.insert(2, &[1, 5, 3, 0], &[]).unwrap();
    ix.insert(3, &[6, 2, 3, 0], &[]).unwrap();
    let q = CandidateQuery {
        tokens: &[1, 2, 3],
        weights: &[],
        k: 3,
        mode: CandidateMode::Prefix,
        exclude: Some(0),
    };
    let got: Vec<(u32, u8)> = ix
        .candidates(&q)
        .iter()
        .map(|c| (c.item, c.shared_depth))
        .collect();
    assert_eq!(got, vec![(1, 2), (2, 1), (3, 0)]);
}

#[test]
fn overlap_candidates_weight_behavior_positions() {
    let mut ix = Index::new(layout());
    ix.insert(0, &[1, 2, 3, 0], &[0.9]).unwrap();
    ix.insert(1, &[1, 7, 3, 0], &[0.9]).unwrap(); // shares positions 0 and 2
    ix.insert(2, &[4, 2, 5, 0], &[0.9]).unwrap(); // shares position 1 only
    ix.insert(3, &[1, 2, 6, 0], &[0.9]).unwrap(); // shares positions 0 and 1
    let q = CandidateQuery {
        tokens: &[1, 2, 3],
        weights: &[0.25],
        k: 10,
        mode: CandidateMode::Overlap,
        exclude: Some(0),
    };
    let got: Vec<(u32, f32)> = ix
        .candidates(&q)
        .iter()
        .map(|c| (c.item, c.score))
        .collect();
    assert_eq!(got, vec![(3, 2.0), (1, 1.25), (2, 1.0)]);
}

#[test]
fn prefix_and_token_counts() {
    let mut ix = Index::new(layout());
    ix.insert(0, &[1, 2, 3, 0], &[]).unwrap();
    ix.insert(1, &[1, 2, 4, 0], &[]).unwrap();
    ix.insert(2, &[5, 2, 3, 0], &[]).unwrap();
    ix.insert(3, &[5, 2, 3, 1], &[]).unwrap();
    assert_eq!(ix.prefix_counts(), vec![2, 2, 3, 4]);
    assert_eq!(ix.token_counts(1)[2], 4);
}

#[test]
fn bulk_load_matches_inserts_and_rejects_bad_input() {
    let sids: Vec<Vec<Token>> = vec![
        vec![1, 2, 3, 0],
        vec![1, 2, 3, 1],
        vec![1, 2, EMPTY, 0],
        vec![4, 0, 0, 0],
        vec![1, 5, 3, 0],
    ];
    let weights = |s: &Vec<Token>| if s[2] == EMPTY { vec![0.0] } else { vec![0.5] };
    let mut one_by_one = Index::new(layout());
    for (i, s) in sids.iter().enumerate() {
        one_by_one.insert(i as u32 * 3, s, &weights(s)).unwrap();
    }
    let w: Vec<Vec<f32>> = sids.iter().map(weights).collect();
    let mut bulk = Index::new(layout());
    bulk.bulk_load(
        sids.iter()
            .zip(&w)
            .enumerate()
            .map(|(i, (s, w))| (i as u32 * 3, &s[..], &w[..])),
    )
    .unwrap();
    for prefix in [
        &[][..],
        &[1],
        &[1, 2],
        &[1, 2, 3],
        &[1, 2, EMPTY],
        &[4, 0, 0, 0],
        &[9],
    ] {
        assert_eq!(
            tokens(bulk.items(prefix)),
            tokens(one_by_one.items(prefix)),
            "{prefix:?}"
        );
        assert_eq!(bulk.next_tokens(prefix), one_by_one.next_tokens(prefix));
    }
    assert_eq!(bulk.node_count(), one_by_one.node_count());
    assert_eq!(
        tokens(bulk.position_items(2, EMPTY).map(Postings::Many)),
        vec![6]
    );

    let dup = [vec![1u16, 2, 3, 0], vec![1, 2, 3, 0]];
    let mut ix = Index::new(layout());
    let err = ix.bulk_load(
        dup.iter()
            .enumerate()
            .map(|(i, s)| (i as u32, &s[..], &[][..])),
    );
    assert!(err.is_err());
    assert!(
        ix.is_empty() && ix.items(&[1]).is_none(),
        "a failed bulk load leaves the index empty"
    );
    let mut ix = Index::new(layout());
    assert!(
        ix.bulk_load([(5, &sids[0][..], &[][..]), (5, &sids[3][..], &[][..])])
            .is_err()
    );
    assert!(ix.is_empty() && !ix.contains(5));
}

/// `n` distinct full SIDs of `layout()` (EMPTY at the behavior position now and then).
fn distinct_sids(n: usize) -> Vec<(Vec<Token>, Vec<f32>)> {
    let mut seen = std::collections::HashMap::new();
    (0..n)
        .map(|i| {
            let mut s: Vec<Token> = vec![(i % 8) as Token, (i / 8 % 8) as Token];
            let w = if i % 4 == 0 { 0.0 } else { 0.5 };
            s.push(if w == 0.0 {
                EMPTY
            } else {
                (i / 64 % 8) as Token
            });
            let d = seen.entry(s.clone()).or_insert(0);
            s.push(*d);
            *d += 1;
            (s, vec![w])
        })
        .collect()
}

/// Every observable answer of `ix` over the prefixes of `sids`.
fn answers(ix: &Index, sids: &[(Vec<Token>, Vec<f32>)]) -> Vec<(Vec<u32>, Option<Vec<Token>>)> {
    let mut out = vec![(vec![ix.len() as u32, ix.node_count() as u32], None)];
    for (s, _) in sids {
        for len in 0..=s.len() {
            out.push((
                tokens(ix.items(&s[..len])),
                ix.next_tokens(&s[..len]).map(<[Token]>::to_vec),
            ));
        }
    }
    for pos in 0..3 {
        for t in (0..8).chain([EMPTY]) {
            out.push((tokens(ix.position_items(pos, t).map(Postings::Many)), None));
        }
    }
    out
}

#[test]
fn insert_many_matches_inserts_and_changes_nothing_on_error() {
    let sids = distinct_sids(400);
    let (old, new) = sids.split_at(150);
    let mut one_by_one = Index::new(layout());
    let mut batched = Index::new(layout());
    for (i, (s, w)) in old.iter().enumerate() {
        one_by_one.insert(i as u32 * 2, s, w).unwrap();
        batched.insert(i as u32 * 2, s, w).unwrap();
    }
    // New ids interleave with the old ones and do not ascend.
    let id = |i: usize| {
        if i % 2 == 0 {
            2 * i as u32 + 1
        } else {
            1000 - i as u32
        }
    };
    for (i, (s, w)) in new.iter().enumerate() {
        one_by_one.insert(id(i), s, w).unwrap();
    }
    let batch: Vec<_> = new
        .iter()
        .enumerate()
        .map(|(i, (s, w))| (id(i), &s[..], &w[..]))
        .collect();
    let before = batched.clone();
    batched.insert_many(&batch).unwrap();
    assert_eq!(answers(&batched, &sids), answers(&one_by_one, &sids));

    // A taken full SID (another id), a repeated id, a bad token: nothing changes.
    let mut ix = before.clone();
    let mut taken = batch.clone();
    taken.push((5000, &old[3].0[..], &old[3].1[..]));
    let bad_sid = [9u16, 0, 0, 0];
    for bad in [
        taken,
        vec![batch[0], batch[0]],
        vec![batch[0], (5001, &bad_sid[..], &[0.5][..])],
    ] {
        assert!(ix.insert_many(&bad).is_err());
        assert_eq!(answers(&ix, &sids), answers(&before, &sids));
        assert!(!ix.contains(batch[0].0));
    }
}

#[test]
fn insert_many_into_an_empty_index_builds_it_whole_with_the_same_answers() {
    let sids = distinct_sids(300);
    let batch: Vec<_> = sids
        .iter()
        .enumerate()
        .map(|(i, (s, w))| (3 * i as u32, &s[..], &w[..]))
        .collect();
    let mut one_by_one = Index::new(layout());
    for &(id, s, w) in &batch {
        one_by_one.insert(id, s, w).unwrap();
    }
    let mut batched = Index::new(layout());
    batched.insert_many(&batch).unwrap();
    assert_eq!(answers(&batched, &sids), answers(&one_by_one, &sids));

    // Emptied by removals, it is built whole again, and then grows one by one.
    for &(id, _, _) in &batch {
        batched.remove(id).unwrap();
    }
    assert!(batched.is_empty());
    batched.insert_many(&batch[..200]).unwrap();
    batched.insert_many(&batch[200..]).unwrap();
    assert_eq!(answers(&batched, &sids), answers(&one_by_one, &sids));

    // Two items on one full SID: refused, and the index stays empty.
    let mut empty = Index::new(layout());
    let clash = [batch[0], (7, batch[0].1, batch[0].2)];
    assert!(empty.insert_many(&clash).is_err());
    assert!(empty.is_empty() && !empty.contains(0));
    empty.insert_many(&batch).unwrap();
    assert_eq!(answers(&empty, &sids), answers(&one_by_one, &sids));
}

/// An index of changes holds items of any id in memory for those items
/// only (a dense table sized by the largest id would take gigabytes here),
/// and answers as a dense one of the same items, through removals that
/// free rows and inserts that reuse them.
#[test]
fn a_changes_index_grows_with_its_items_not_their_ids() {
    let far = [2_000_000_000u32, 7, 1_500_000_000, 1_999_999_999];
    let sids: [[Token; 4]; 4] = [[1, 2, 3, 0], [1, 2, 4, 0], [2, 5, EMPTY, 0], [1, 2, 3, 1]];
    let mut changes = Index::for_changes(layout());
    let mut dense = Index::new(layout());
    for (n, (&id, sid)) in far.iter().zip(&sids).enumerate() {
        changes.insert(id, sid, &[]).unwrap();
        dense.insert(n as u32, sid, &[]).unwrap();
    }
    let rename = |v: Vec<u32>| -> Vec<u32> {
        let mut v: Vec<u32> = v
            .iter()
            .map(|i| far.iter().position(|f| f == i).unwrap() as u32)
            .collect();
        v.sort_unstable();
        v
    };
    for p in [&[][..], &[1], &[1, 2], &[1, 2, 3], &[2, 5]] {
        assert_eq!(
            rename(tokens(changes.items(p))),
            tokens(dense.items(p)),
            "{p:?}"
        );
        assert_eq!(changes.next_tokens(p), dense.next_tokens(p), "{p:?}");
    }
    changes.remove(far[0]).unwrap();
    changes.insert(11, &[3, 3, 3, 0], &[0.5]).unwrap();
    assert_eq!(changes.sid(11), Some((&[3, 3, 3, 0][..], &[0.5f32][..])));
    assert_eq!(changes.sid(far[1]).unwrap().0, &sids[1]);
    assert_eq!(changes.sid(far[3]).unwrap().0, &sids[3]);
    assert!(changes.sid(far[0]).is_none());
    assert_eq!(changes.len(), 4);
    // Memory for the blocks of 256 ids in use: 3,000 items with ids far
    // apart take 3,000 blocks (a dense table: 300M rows), 3,000 with
    // consecutive ids 12 more.
    // 3,000 distinct SIDs: three tokens of 8, then a counter from `first`.
    let sid = |i: u32, first: u32| -> [Token; 4] {
        [i % 8, i / 8 % 8, i / 64 % 8, i / 512 + first].map(|t| t as Token)
    };
    for i in 0..3000u32 {
        changes
            .insert(1_000_000 + i * 100_000, &sid(i, 2), &[])
            .unwrap();
    }
    assert_eq!(changes.len(), 3004);
    for i in 0..3000u32 {
        changes.insert(500_000_000 + i, &sid(i, 20), &[]).unwrap();
    }
    let rows = changes.items.allocated_rows();
    assert!(rows <= (4 + 3000 + 12) * 256, "{rows} rows for 6,004 items");
}
