//! The write error contract with a failing metadata index: `Ok` means
//! durable and visible (the index is repaired from the store), `Err` means
//! nothing changed.

use std::sync::atomic::Ordering;

use super::*;
use crate::data::meta::Meta;
use crate::item::NewItem;

fn item(key: &str, tokens: Vec<u16>) -> NewItem {
    NewItem {
        key: key.into(),
        tokens,
        weights: vec![],
    }
}

fn meta(brand: &str) -> Meta {
    serde_json::from_str(&format!(r#"{{"title": "polish", "brand": "{brand}"}}"#)).unwrap()
}

fn fail_filters(db: &Database, fail: bool) {
    let filters = db.filters.get().expect("the metadata index is open");
    filters.fail_writes.store(fail, Ordering::SeqCst);
}

/// A database holding item `a` with metadata, its filter updates failing.
fn database_with_failing_filters() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(&dir.path().join("db"), SidLayout::new(2, 16, 0).unwrap()).unwrap();
    db.upsert_with_meta(
        &[item("a", vec![1, 2])],
        &[("a".into(), meta("opi"))],
        vec![],
    )
    .unwrap();
    fail_filters(&db, true);
    (dir, db)
}

#[test]
fn a_write_that_reports_ok_is_visible_and_durable_though_the_filter_update_failed() {
    let (dir, db) = database_with_failing_filters();
    let path = dir.path().join("db");
    let report = db
        .upsert_with_meta(
            &[item("b", vec![1, 3])],
            &[("b".into(), meta("opi"))],
            vec![],
        )
        .unwrap();
    assert_eq!(report.inserted, 1);
    assert!(
        db.health().filters_stale.is_some(),
        "the failed update is reported"
    );
    let b = db.read().id("b").unwrap();
    assert!(crate::SidIndex::contains(&*db.read(), b));
    // The next filtered search repairs the index from the store.
    fail_filters(&db, false);
    let a = db.read().id("a").unwrap();
    assert_eq!(db.search(&[1], Some("brand:opi")).unwrap(), [a, b]);
    assert_eq!(db.health().filters_stale, None);
    assert!(db.health().filters_rebuilt);
    // A removal whose filter update fails is still a removal.
    fail_filters(&db, true);
    assert_eq!(db.remove(&["a"]).unwrap().removed, 1);
    fail_filters(&db, false);
    assert_eq!(db.search(&[1], Some("brand:opi")).unwrap(), [b]);
    drop(db);
    let db = Database::open(&path).unwrap();
    assert!(db.read().id("a").is_err());
    let b = db.read().id("b").unwrap();
    assert_eq!(db.search(&[1], Some("brand:opi")).unwrap(), [b]);
    assert_eq!(db.meta("b").unwrap(), Some(meta("opi")));
}

#[test]
fn a_write_that_reports_err_left_nothing_behind() {
    let (dir, db) = database_with_failing_filters();
    let path = dir.path().join("db");
    // Metadata for a key that is neither stored nor in the batch.
    let err = db
        .upsert_with_meta(
            &[item("b", vec![1, 3])],
            &[("zz".into(), meta("x"))],
            vec![],
        )
        .unwrap_err();
    assert!(matches!(err, Error::UnknownKey(_)), "{err}");
    // A token out of range.
    assert!(db.upsert(&[item("c", vec![1, 16])]).is_err());
    assert_eq!(
        db.health().filters_stale,
        None,
        "a refused write touched nothing"
    );
    fail_filters(&db, false);
    drop(db);
    let db = Database::open(&path).unwrap();
    assert_eq!(crate::SidIndex::len(&*db.read()), 1);
    assert!(db.read().id("b").is_err());
    assert_eq!(db.search(&[1], Some("brand:x")).unwrap(), Vec::<u32>::new());
    assert!(!db.health().filters_rebuilt, "nothing lagged");
}
