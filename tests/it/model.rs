//! Model-based test: the database (store + index) against a plain reference
//! that answers every query by brute force over a `BTreeMap`, with random
//! inserts, re-encodes, removes and reopens.

use std::collections::{BTreeMap, BTreeSet};

use adasid::sid::MAX_DISAMBIGUATION;
use adasid::{CandidateMode, CandidateQuery, Database, EMPTY, NewItem, SidIndex, SidLayout, Token};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What the reference knows of one item.
#[derive(Clone, Debug)]
struct RefItem {
    id: u32,
    full: Vec<Token>,
    weights: Vec<f32>,
}

#[derive(Default)]
struct Reference {
    items: BTreeMap<String, RefItem>,
    next_id: u32,
}

impl Reference {
    /// Same rule as the database: unchanged semantic tokens keep their
    /// disambiguation token, the rest take the smallest free one in batch order.
    /// Returns false, changing nothing, when a disambiguation token would reach `k`.
    fn upsert(&mut self, batch: &[NewItem], levels: usize, limit: u32) -> bool {
        let before = (self.items.clone(), self.next_id);
        let moving: BTreeSet<String> = batch
            .iter()
            .filter(|n| {
                self.items
                    .get(&n.key)
                    .is_some_and(|r| r.full[..levels] != n.tokens[..])
            })
            .map(|n| n.key.clone())
            .collect();
        let mut taken: BTreeMap<Vec<Token>, BTreeSet<Token>> = BTreeMap::new();
        for (key, r) in &self.items {
            if !moving.contains(key) {
                taken
                    .entry(r.full[..levels].to_vec())
                    .or_default()
                    .insert(r.full[levels]);
            }
        }
        for n in batch {
            let existing = self.items.get(&n.key).cloned();
            let (id, full) = match existing {
                Some(r) if !moving.contains(&n.key) => (r.id, r.full.clone()),
                other => {
                    let id = other.map(|r| r.id).unwrap_or_else(|| {
                        self.next_id += 1;
                        self.next_id - 1
                    });
                    let used = taken.entry(n.tokens.clone()).or_default();
                    let d = (0..).find(|d| !used.contains(d)).unwrap();
                    if d as u32 >= limit {
                        (self.items, self.next_id) = before;
                        return false;
                    }
                    used.insert(d);
                    let mut full = n.tokens.clone();
                    full.push(d);
                    (id, full)
                }
            };
            self.items.insert(
                n.key.clone(),
                RefItem {
                    id,
                    full,
                    weights: n.weights.clone(),
                },
            );
        }
        true
    }

    fn under(&self, prefix: &[Token]) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .items
            .values()
            .filter(|r| r.full.starts_with(prefix))
            .map(|r| r.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    fn next_tokens(&self, prefix: &[Token]) -> Option<Vec<Token>> {
        let under: Vec<&RefItem> = self
            .items
            .values()
            .filter(|r| r.full.starts_with(prefix))
            .collect();
        if under.is_empty() && !prefix.is_empty() {
            return None;
        }
        let set: BTreeSet<Token> = under
            .iter()
            .filter_map(|r| r.full.get(prefix.len()).copied())
            .collect();
        Some(set.into_iter().collect())
    }

    fn by_id(&self, id: u32) -> &RefItem {
        self.items.values().find(|r| r.id == id).unwrap()
    }
}

fn random_item(rng: &mut ChaCha8Rng, layout: &SidLayout, key: String) -> NewItem {
    // A tiny alphabet (0..3) makes prefixes, splits, collisions and collapses frequent.
    let mut tokens: Vec<Token> = (0..layout.levels()).map(|_| rng.gen_range(0..3)).collect();
    let mut weights = Vec::new();
    for pos in layout.first_behavior()..layout.levels() {
        if rng.gen_bool(0.3) {
            tokens[pos] = EMPTY;
            weights.push(0.0);
        } else {
            weights.push(rng.gen_range(1..=4) as f32 / 4.0);
        }
    }
    NewItem {
        key,
        tokens,
        weights,
    }
}

fn random_prefix(rng: &mut ChaCha8Rng, reference: &Reference, layout: &SidLayout) -> Vec<Token> {
    if rng.gen_bool(0.6) && !reference.items.is_empty() {
        let i = rng.gen_range(0..reference.items.len());
        let r = reference.items.values().nth(i).unwrap();
        let len = rng.gen_range(0..=r.full.len());
        r.full[..len].to_vec()
    } else {
        let len = rng.gen_range(0..=layout.full_len());
        (0..len)
            .map(|pos| {
                if layout.is_behavior(pos) && rng.gen_bool(0.2) {
                    EMPTY
                } else if layout.is_disambiguation(pos) {
                    // Counters run past K = 4 when many items collide.
                    rng.gen_range(0..12)
                } else {
                    rng.gen_range(0..4)
                }
            })
            .collect()
    }
}

fn check(db: &Database, reference: &Reference, rng: &mut ChaCha8Rng, layout: &SidLayout) {
    let state = db.read();
    let ix = &*state;
    assert_eq!(ix.len() as usize, reference.items.len());
    for (key, r) in &reference.items {
        assert_eq!(state.find(key), Some(r.id), "key {key}");
        let (full, _) = ix.sid(r.id).expect("indexed");
        assert_eq!(full, &r.full[..], "full SID of {key}");
    }
    for _ in 0..60 {
        let prefix = random_prefix(rng, reference, layout);
        let want = reference.under(&prefix);
        let got: Vec<u32> = ix
            .items(&prefix)
            .map(|p| p.to_sorted_vec())
            .unwrap_or_default();
        assert_eq!(got, want, "items({prefix:?})");
        assert_eq!(ix.count(&prefix) as usize, want.len());
        let want_next = reference.next_tokens(&prefix);
        assert_eq!(
            ix.next_tokens(&prefix).map(|t| t.to_vec()),
            want_next,
            "next_tokens({prefix:?})"
        );
        assert_eq!(ix.is_valid(&prefix), want_next.is_some());
        let mut mask = vec![0u64; ix.mask_words()];
        ix.allowed_mask(&[&prefix], &mut mask).unwrap();
        let bits: Vec<usize> = want_next
            .unwrap_or_default()
            .iter()
            .map(|&t| layout.mask_bit(t))
            .collect();
        for b in 0..layout.mask_bits() {
            assert_eq!(
                mask[b / 64] >> (b % 64) & 1 == 1,
                bits.contains(&b),
                "mask bit {b} of {prefix:?}"
            );
        }
    }
    if reference.items.is_empty() {
        return;
    }
    for _ in 0..10 {
        let q = reference
            .items
            .values()
            .nth(rng.gen_range(0..reference.items.len()))
            .unwrap()
            .clone();
        let k = rng.gen_range(1..8);
        // Prefix mode: deepest shared prefix first, then lower id.
        let mut want: Vec<(usize, u32)> = reference
            .items
            .values()
            .filter(|r| r.id != q.id)
            .map(|r| (shared_depth(&r.full, &q.full), r.id))
            .collect();
        want.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        want.truncate(k);
        let query = CandidateQuery {
            tokens: &q.full,
            weights: &q.weights,
            k,
            mode: CandidateMode::Prefix,
            exclude: Some(q.id),
        };
        let got: Vec<(usize, u32)> = ix
            .candidates(&query)
            .iter()
            .map(|c| (c.shared_depth as usize, c.item))
            .collect();
        assert_eq!(got, want, "prefix candidates of {:?}", q.full);
        // Overlap mode: weighted shared positions, then depth, then id; zero scores never appear.
        let weight = |pos: usize| layout.position_weight(&q.full, &q.weights, pos);
        let mut want: Vec<(f32, usize, u32)> = reference
            .items
            .values()
            .filter(|r| r.id != q.id)
            .map(|r| {
                let score: f32 = (0..layout.levels())
                    .filter(|&p| r.full[p] == q.full[p])
                    .map(weight)
                    .sum();
                (score, shared_depth(&r.full, &q.full), r.id)
            })
            .filter(|(s, _, r)| {
                *s > 0.0
                    || (0..layout.levels())
                        .any(|p| weight(p) > 0.0 && reference.by_id(*r).full[p] == q.full[p])
            })
            .collect();
        want.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        want.truncate(k);
        let query = CandidateQuery {
            mode: CandidateMode::Overlap,
            ..query
        };
        let got: Vec<(f32, usize, u32)> = ix
            .candidates(&query)
            .iter()
            .map(|c| (c.score, c.shared_depth as usize, c.item))
            .collect();
        assert_eq!(got, want, "overlap candidates of {:?}", q.full);
    }
}

/// Length of the common prefix of two SIDs.
fn shared_depth(a: &[Token], b: &[Token]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn run_model(seed: u64, steps: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let layout = SidLayout::new(3, 4, 1).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut db = Database::create(&path, layout).unwrap();
    let mut reference = Reference::default();
    let mut fresh = 0usize;
    for _ in 0..steps {
        match rng.gen_range(0..10) {
            0..=4 => {
                let n = rng.gen_range(1..6);
                let mut batch: Vec<NewItem> = Vec::new();
                for _ in 0..n {
                    let reuse = !reference.items.is_empty() && rng.gen_bool(0.3);
                    let key = if reuse {
                        reference
                            .items
                            .keys()
                            .nth(rng.gen_range(0..reference.items.len()))
                            .unwrap()
                            .clone()
                    } else {
                        fresh += 1;
                        format!("k{fresh}")
                    };
                    if batch.iter().all(|b| b.key != key) {
                        batch.push(random_item(&mut rng, &layout, key));
                    }
                }
                let accepted = reference.upsert(&batch, layout.levels(), MAX_DISAMBIGUATION);
                match db.upsert(&batch) {
                    Ok(_) => assert!(accepted, "database accepted a batch the reference rejects"),
                    Err(adasid::Error::TooManyCollisions { .. }) => assert!(!accepted),
                    Err(e) => panic!("{e}"),
                }
            }
            5..=6 if !reference.items.is_empty() => {
                let n = rng.gen_range(1..=3.min(reference.items.len()));
                let keys: BTreeSet<String> = (0..n)
                    .map(|_| {
                        reference
                            .items
                            .keys()
                            .nth(rng.gen_range(0..reference.items.len()))
                            .unwrap()
                            .clone()
                    })
                    .collect();
                let refs: Vec<&str> = keys.iter().map(|s| s.as_str()).collect();
                db.remove(&refs).unwrap();
                keys.iter().for_each(|k| {
                    reference.items.remove(k);
                });
            }
            7 => {
                drop(db);
                db = Database::open(&path).unwrap();
            }
            _ => {}
        }
        check(&db, &reference, &mut rng, &layout);
    }
    drop(db);
    let db = Database::open(&path).unwrap();
    check(&db, &reference, &mut rng, &layout);
}

#[test]
fn database_matches_reference_model() {
    for seed in 0..6 {
        run_model(seed, 120);
    }
}

#[test]
fn unknown_key_removal_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let layout = SidLayout::new(2, 4, 0).unwrap();
    let db = Database::create(&dir.path().join("db"), layout).unwrap();
    let item = |k: &str| NewItem {
        key: k.into(),
        tokens: vec![1, 2],
        weights: vec![],
    };
    db.upsert(&[item("a"), item("b")]).unwrap();
    assert!(matches!(db.remove(&["a", "zzz"]), Err(adasid::Error::UnknownKey(k)) if k == "zzz"));
    assert_eq!(db.read().len(), 2);
}
