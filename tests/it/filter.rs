//! Metadata filters agree with a brute-force scan of the metadata: on a
//! synthetic catalogue always, and on `../shared/data/beauty/meta.jsonl`
//! when it is present. Filters follow later writes and survive a reopen,
//! and a missing or stale metadata index is rebuilt from the store.

use std::collections::BTreeSet;
use std::path::Path;

use adasid::SidIndex;
use adasid::data::meta;
use adasid::filter::Meta;
use adasid::{Database, Error, NewItem, SidLayout, Token};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::common::copy_dir;

/// tantivy's default tokenizer: alphanumeric runs, lowercased, ≤ 40 bytes.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && w.len() <= 40)
        .map(str::to_lowercase)
        .collect()
}

fn text_has(m: &Meta, field: &str, word: &str) -> bool {
    match m.get(field) {
        Some(Value::String(s)) => words(s).iter().any(|w| w == word),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .any(|s| words(s).iter().any(|w| w == word)),
        _ => false,
    }
}

fn price_in(m: &Meta, lo: f64, hi: f64) -> bool {
    m.get("price")
        .and_then(Value::as_f64)
        .is_some_and(|p| p >= lo && p <= hi)
}

type Check = (&'static str, Box<dyn Fn(&Meta) -> bool>);

fn checks(brand: &'static str, category: &'static str, word: &'static str) -> Vec<Check> {
    let any = move |m: &Meta, w: &str| {
        ["title", "brand", "categories"]
            .iter()
            .any(|f| text_has(m, f, w))
    };
    vec![
        (
            brand_query(brand),
            Box::new(move |m| text_has(m, "brand", brand)),
        ),
        ("price:[0 TO 20]", Box::new(|m| price_in(m, 0.0, 20.0))),
        (
            leak(format!("brand:{brand} AND price:[0 TO 20]")),
            Box::new(move |m| text_has(m, "brand", brand) && price_in(m, 0.0, 20.0)),
        ),
        (
            leak(format!("categories:{category} AND -brand:{brand}")),
            Box::new(move |m| text_has(m, "categories", category) && !text_has(m, "brand", brand)),
        ),
        (
            leak(format!("brand:{brand} OR price:[100 TO 1000]")),
            Box::new(move |m| text_has(m, "brand", brand) || price_in(m, 100.0, 1000.0)),
        ),
        (leak(word.to_string()), Box::new(move |m| any(m, word))),
    ]
}

fn brand_query(brand: &'static str) -> &'static str {
    leak(format!("brand:{brand}"))
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A database with `keys` on random 2-level SIDs (K = 64) and their metadata.
fn database(dir: &Path, keys: &[String], metas: &[(String, Meta)]) -> Database {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let items: Vec<NewItem> = keys
        .iter()
        .map(|k| NewItem {
            key: k.clone(),
            tokens: vec![rng.gen_range(0..8), rng.gen_range(0..64)],
            weights: vec![],
        })
        .collect();
    let (db, _) =
        Database::create_with(dir, SidLayout::new(2, 64, 0).unwrap(), &items, &[], vec![]).unwrap();
    db.set_meta(metas).unwrap();
    db
}

fn assert_filters_match(db: &Database, metas: &[(String, Meta)], checks: &[Check]) {
    let state = db.read();
    for (query, pred) in checks {
        let want: BTreeSet<u32> = metas
            .iter()
            .filter(|(_, m)| pred(m))
            .map(|(k, _)| state.id(k).unwrap())
            .collect();
        let got: BTreeSet<u32> = db
            .filters()
            .unwrap()
            .unwrap()
            .matching(query)
            .unwrap()
            .iter()
            .collect();
        assert!(
            got == want,
            "{query}: {} found, {} expected",
            got.len(),
            want.len()
        );
        assert!(!want.is_empty(), "{query} should match something");
        for first in 0..8u16 {
            let prefix: [Token; 1] = [first];
            let under: BTreeSet<u32> = state
                .items(&prefix)
                .map_or(BTreeSet::new(), |p| p.iter().collect());
            let want: Vec<u32> = want.intersection(&under).copied().collect();
            assert_eq!(
                db.search_in(&state, &prefix, Some(query)).unwrap(),
                want,
                "{query} under {first}"
            );
        }
    }
}

fn synthetic_meta(n: usize) -> Vec<(String, Meta)> {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let brands = ["OPI", "Acme Labs", "Dr. Scholl's", "L'Oreal Paris"];
    let cats = ["Nails", "Skin Care", "Hair Care", "Makeup"];
    let nouns = ["lipstick", "polish", "cream", "serum", "shampoo"];
    (0..n)
        .map(|i| {
            let mut m = json!({
                "asin": format!("B{i:05}"),
                "title": format!("{} {} no. {i}", nouns[rng.gen_range(0..5)], nouns[rng.gen_range(0..5)]),
                "categories": ["Beauty", cats[rng.gen_range(0..4)]],
                "sales_type": "Beauty",
            });
            if rng.gen_bool(0.8) {
                m["brand"] = json!(brands[rng.gen_range(0..4)]);
            }
            if rng.gen_bool(0.9) {
                m["price"] = json!((rng.gen_range(100..20000) as f64) / 100.0);
            }
            (format!("B{i:05}"), m.as_object().unwrap().clone())
        })
        .collect()
}

#[test]
fn filters_agree_with_a_scan_of_synthetic_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let metas = synthetic_meta(600);
    let keys: Vec<String> = metas.iter().map(|(k, _)| k.clone()).collect();
    let db = database(&dir.path().join("db"), &keys, &metas);
    let checks = checks("opi", "nails", "lipstick");
    assert_filters_match(&db, &metas, &checks);
    // Fields outside the schema are searchable under attrs.
    assert_eq!(
        db.filters()
            .unwrap()
            .unwrap()
            .matching("attrs.sales_type:beauty")
            .unwrap()
            .len(),
        600
    );
    // Reopened: the same answers, from the index on disk.
    drop(db);
    let db = Database::open(&dir.path().join("db")).unwrap();
    assert_filters_match(&db, &metas, &checks);
}

#[test]
fn filters_agree_with_a_scan_of_beauty_metadata() {
    let path = Path::new("../shared/data/beauty/meta.jsonl");
    if !path.exists() {
        eprintln!("skipped: {} is absent", path.display());
        return;
    }
    let metas = meta::read(path, None).unwrap();
    let keys: Vec<String> = metas.iter().map(|(k, _)| k.clone()).collect();
    let dir = tempfile::tempdir().unwrap();
    let db = database(&dir.path().join("db"), &keys, &metas);
    assert_filters_match(&db, &metas, &checks("opi", "nails", "lipstick"));
}

#[test]
fn later_items_and_removals_reach_the_filter_and_a_lost_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let metas = synthetic_meta(50);
    let keys: Vec<String> = metas.iter().map(|(k, _)| k.clone()).collect();
    let db = database(&path, &keys, &metas);
    let acme = |db: &Database| db.search(&[], Some("brand:zeta")).unwrap();
    assert!(acme(&db).is_empty());
    let new = NewItem {
        key: "new".into(),
        tokens: vec![3, 3],
        weights: vec![],
    };
    let m = json!({"title": "Zeta gloss", "brand": "Zeta", "price": 5.0});
    db.upsert_with_meta(
        &[new],
        &[("new".into(), m.as_object().unwrap().clone())],
        vec![],
    )
    .unwrap();
    let id = db.read().id("new").unwrap();
    assert_eq!(acme(&db), [id], "visible when the call returns");
    assert_eq!(
        db.search(&[3], Some("gloss AND price:[0 TO 10]")).unwrap(),
        [id]
    );
    assert!(
        db.search(&[2], Some("brand:zeta")).unwrap().is_empty(),
        "outside the prefix"
    );
    assert_eq!(db.meta("new").unwrap().unwrap()["brand"], "Zeta");
    // Re-encoding without metadata keeps it; new metadata replaces it.
    db.upsert(&[NewItem {
        key: "new".into(),
        tokens: vec![3, 4],
        weights: vec![],
    }])
    .unwrap();
    assert_eq!(acme(&db), [id]);
    db.set_meta(&[(
        "new".into(),
        json!({"brand": "Other"}).as_object().unwrap().clone(),
    )])
    .unwrap();
    assert!(acme(&db).is_empty());
    db.set_meta(&[("new".into(), m.as_object().unwrap().clone())])
        .unwrap();
    // Unknown keys write nothing.
    let err = db.set_meta(&[("nope".into(), Meta::new())]).unwrap_err();
    assert!(matches!(err, Error::UnknownKey(_)), "{err}");
    let bad = db.search(&[], Some("brand:(")).unwrap_err();
    assert!(matches!(bad, Error::InvalidArgument(_)), "{bad}");
    db.remove(&["B00001"]).unwrap();
    let all: usize = db
        .filters()
        .unwrap()
        .unwrap()
        .matching("attrs.sales_type:beauty")
        .unwrap()
        .len() as usize;
    assert_eq!(all, 49, "the removed item's document is gone");
    drop(db);
    // A metadata index lost is rebuilt on open.
    std::fs::remove_dir_all(path.join("filters")).unwrap();
    let db = Database::open(&path).unwrap();
    assert_eq!(acme(&db), [id]);
    assert_eq!(db.filters().unwrap().unwrap().len(), 50);
    // So is one a commit behind the store (a crash between the two commits):
    // keep a copy, write, put the copy back.
    let old = dir.path().join("filters-old");
    copy_dir(&path.join("filters"), &old);
    db.set_meta(&[(
        "new".into(),
        json!({"brand": "Later"}).as_object().unwrap().clone(),
    )])
    .unwrap();
    drop(db);
    std::fs::remove_dir_all(path.join("filters")).unwrap();
    std::fs::rename(&old, path.join("filters")).unwrap();
    let db = Database::open(&path).unwrap();
    assert!(acme(&db).is_empty(), "the stale document is gone");
    assert_eq!(db.search(&[], Some("brand:later")).unwrap(), [id]);
}

/// Three kinds of damage to one file of the metadata index.
fn damage(file: &Path, how: usize) {
    match how {
        0 => std::fs::remove_file(file).unwrap(),
        1 => {
            let len = std::fs::metadata(file).unwrap().len();
            let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
            f.set_len(len / 2).unwrap();
        }
        _ => {
            let mut bytes = std::fs::read(file).unwrap();
            let (mid, len) = (bytes.len() / 2, bytes.len());
            for b in &mut bytes[mid.saturating_sub(4)..(mid + 4).min(len)] {
                *b ^= 0x5a;
            }
            std::fs::write(file, bytes).unwrap();
        }
    }
}

#[test]
fn a_damaged_metadata_index_is_rebuilt_on_open_and_answers_like_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = dir.path().join("pristine");
    let metas = synthetic_meta(300);
    let keys: Vec<String> = metas.iter().map(|(k, _)| k.clone()).collect();
    drop(database(&pristine, &keys, &metas));
    let checks = checks("opi", "nails", "lipstick");
    let mut files: Vec<String> = std::fs::read_dir(pristine.join("filters"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".tantivy"))
        .collect();
    files.sort();
    let extensions: BTreeSet<&str> = files
        .iter()
        .filter_map(|f| f.rsplit_once('.').map(|p| p.1))
        .collect();
    for kind in ["idx", "pos", "term", "store", "fast", "fieldnorm", "json"] {
        assert!(extensions.contains(kind), "no .{kind} file among {files:?}");
    }
    for (n, file) in files.iter().enumerate() {
        for how in 0..3 {
            let path = dir.path().join(format!("db-{n}-{how}"));
            copy_dir(&pristine, &path);
            copy_dir(&pristine.join("filters"), &path.join("filters"));
            copy_dir(&pristine.join("blobs"), &path.join("blobs"));
            damage(&path.join("filters").join(file), how);
            let db = Database::open(&path).unwrap_or_else(|e| panic!("{file} damage {how}: {e}"));
            assert_filters_match(&db, &metas, &checks);
            drop(db);
            // Reopening after the repair needs no second one.
            let db = Database::open(&path).unwrap();
            assert!(
                !db.health().filters_rebuilt,
                "{file} damage {how}: repaired once"
            );
            assert_filters_match(&db, &metas, &checks);
        }
    }
}
