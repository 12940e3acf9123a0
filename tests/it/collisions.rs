//! Disambiguation beyond K: many items on one semantic SID get counters
//! past the codebook size, every query and file format carries them, and
//! the one limit left is the counter's width.

use std::path::Path;

use adasid::sid::MAX_DISAMBIGUATION;
use adasid::snapshot::Snapshot;
use adasid::{Database, NewItem, SidIndex, SidLayout, Token};

use crate::common::adasid;

fn item(key: String, tokens: &[Token]) -> NewItem {
    NewItem {
        key,
        tokens: tokens.to_vec(),
        weights: Vec::new(),
    }
}

/// Bits set in the next-token mask of `prefix`.
fn mask_bits(view: &dyn SidIndex, prefix: &[Token]) -> Vec<usize> {
    let mut row = vec![0u64; view.mask_words()];
    view.write_mask(prefix, &mut row);
    (0..view.layout().mask_bits())
        .filter(|&b| row[b / 64] >> (b % 64) & 1 == 1)
        .collect()
}

/// What every view must answer for the catalogue of
/// [`counters_run_past_k_in_the_store_the_index_and_a_snapshot`] after the
/// removals: counters 0, 1, 297, 298, 299 under `[1, 2]`.
fn check_after_removals(view: &dyn SidIndex) {
    assert_eq!(&*view.next_tokens(&[1, 2]).unwrap(), &[0, 1, 297, 298, 299]);
    assert_eq!(view.count(&[1, 2]), 5);
    // Counters of K = 4 or more share the overflow bit K.
    assert_eq!(mask_bits(view, &[1, 2]), vec![0, 1, 4]);
    assert_eq!(view.count(&[1, 2, 298]), 1);
    assert_eq!(view.count(&[1, 2, 2]), 0);
    assert_eq!(view.count(&[1, 2, 4]), 0);
    assert_eq!(view.count(&[1]), 7);
    assert_eq!(&*view.next_tokens(&[1]).unwrap(), &[2, 3]);
}

#[test]
fn counters_run_past_k_in_the_store_the_index_and_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let layout = SidLayout::new(2, 4, 0).unwrap();
    let db = Database::create(&path, layout).unwrap();
    let mut batch: Vec<NewItem> = (0..300)
        .map(|i| item(format!("s{i:03}"), &[1, 2]))
        .collect();
    batch.extend((0..2).map(|i| item(format!("o{i}"), &[1, 3])));
    db.upsert(&batch).unwrap();
    {
        let state = db.read();
        for i in [0usize, 3, 4, 5, 257, 299] {
            let id = state.id(&format!("s{i:03}")).unwrap();
            assert_eq!(state.sid(id).unwrap().0, &[1, 2, i as Token]);
        }
        let counters: Vec<Token> = (0..300).collect();
        assert_eq!(state.next_tokens(&[1, 2]).unwrap(), &counters[..]);
        assert_eq!(mask_bits(&*state, &[1, 2]), vec![0, 1, 2, 3, 4]);
        assert_eq!(state.count(&[1, 2, 299]), 1);
    }
    // Removing most of them leaves counters past K behind the ones below it.
    let gone: Vec<String> = (2..297).map(|i| format!("s{i:03}")).collect();
    let refs: Vec<&str> = gone.iter().map(String::as_str).collect();
    db.remove(&refs).unwrap();
    check_after_removals(&*db.read());

    let snap_path = dir.path().join("index.snap");
    db.snapshot(&snap_path).unwrap();
    drop(db);
    let db = Database::open(&path).unwrap();
    check_after_removals(&*db.read());
    let snap = Snapshot::open(&snap_path).unwrap();
    snap.verify().unwrap();
    check_after_removals(&snap);

    // New items take the smallest free counters again.
    db.upsert(&[item("n0".into(), &[1, 2]), item("n1".into(), &[1, 2])])
        .unwrap();
    let state = db.read();
    assert_eq!(
        &*state.next_tokens(&[1, 2]).unwrap(),
        &[0, 1, 2, 3, 297, 298, 299]
    );
}

#[test]
fn one_semantic_sid_holds_as_many_items_as_the_counter_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path, SidLayout::new(1, 2, 0).unwrap()).unwrap();
    let full: Vec<NewItem> = (0..MAX_DISAMBIGUATION)
        .map(|i| item(format!("k{i}"), &[1]))
        .collect();
    db.upsert(&full).unwrap();
    assert_eq!(db.read().count(&[1]), MAX_DISAMBIGUATION as u64);
    let err = db.upsert(&[item("one-more".into(), &[1])]).unwrap_err();
    match &err {
        adasid::Error::TooManyCollisions { count, limit, .. } => {
            assert_eq!(
                (*count, *limit),
                (MAX_DISAMBIGUATION as usize + 1, MAX_DISAMBIGUATION)
            );
        }
        other => panic!("expected TooManyCollisions, got {other}"),
    }
    // The refused batch changed nothing; another semantic SID is still open.
    assert_eq!(db.read().count(&[1]), MAX_DISAMBIGUATION as u64);
    db.upsert(&[item("other".into(), &[0])]).unwrap();
}

#[test]
fn token_files_round_trip_counters_past_k() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..20).map(|i| format!("item{i:02}\t3,1\n")).collect();
    let tokens = dir.path().join("t.tsv");
    std::fs::write(&tokens, text).unwrap();
    let db = |name: &str| dir.path().join(name).display().to_string();
    let export = |db: &str, format: &str| {
        let (ok, out, err) = adasid(&["export", "--db", db, "--format", format]);
        assert!(ok, "{err}");
        out
    };
    let (ok, _, err) = adasid(&[
        "ingest-tokens",
        "--db",
        &db("a"),
        "--tokens",
        &tokens.display().to_string(),
        "--k",
        "4",
    ]);
    assert!(ok, "20 items on one SID with K = 4: {err}");
    let tsv = export(&db("a"), "tsv");
    assert!(tsv.contains("item19\t3,1,19\n"), "{tsv}");

    // Full SIDs (counters included) read back as they were written; the
    // header gives the layout.
    let full = dir.path().join("full.tsv");
    std::fs::write(&full, &tsv).unwrap();
    let (ok, _, err) = adasid(&[
        "ingest-tokens",
        "--db",
        &db("b"),
        "--tokens",
        &full.display().to_string(),
    ]);
    assert!(ok, "{err}");
    assert_eq!(export(&db("b"), "tsv"), tsv);
    let json = export(&db("b"), "tokens");
    assert!(
        json.contains(r#""item19": ["<a_3>", "<b_1>", "<c_19>"]"#),
        "{json}"
    );
    let (ok, out, err) = adasid(&["lookup", "--db", &db("b"), "--prefix", "3,1,17", "--json"]);
    assert!(ok, "{err}");
    assert!(out.contains("item17"), "{out}");
    assert!(Path::new(&db("b")).exists());
}
