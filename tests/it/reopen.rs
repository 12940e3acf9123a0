//! Open maps the publication when it shows every commit, and rebuilds
//! from the records otherwise; between publications memory holds only
//! the changes.

use std::path::Path;

use adasid::data::synthetic;
use adasid::{Database, NewItem, SidIndex, SidLayout};

fn layout() -> SidLayout {
    SidLayout::new(3, 16, 1).unwrap()
}

/// Every item's key, SID and weights, and the items under each first token.
type Contents = (Vec<(String, Vec<u16>, Vec<f32>)>, Vec<Vec<u32>>);

fn contents(db: &Database) -> Contents {
    let state = db.read();
    let mut items: Vec<_> = state
        .by_sid()
        .into_iter()
        .map(|id| {
            let (s, w) = state.sid(id).unwrap();
            (state.key(id).unwrap().to_string(), s.to_vec(), w.to_vec())
        })
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let under = (0..16)
        .map(|t| state.items(&[t]).map_or(vec![], |p| p.to_sorted_vec()))
        .collect();
    (items, under)
}

fn generation_file(db: &Path) -> std::path::PathBuf {
    let dir = db.join("published");
    let n = std::fs::read_to_string(dir.join("CURRENT")).unwrap();
    dir.join(n.trim()).join("index.snap")
}

/// A new database (`DIR/db`) holding the first `published` of `n`
/// synthetic items, committed and published; all `n` returned.
fn published(n: usize, published: usize, seed: u64) -> (tempfile::TempDir, Vec<NewItem>, Database) {
    let dir = tempfile::tempdir().unwrap();
    let items = synthetic::items(n, &layout(), seed);
    let db = Database::create(&dir.path().join("db"), layout()).unwrap();
    db.upsert(&items[..published]).unwrap();
    (dir, items, db)
}

#[test]
fn open_maps_a_current_publication_and_memory_holds_only_changes() {
    let (dir, items, db) = published(3000, 2000, 7);
    let path = dir.path().join("db");
    // Published, so the items are the publication's snapshot now.
    assert!(db.read().has_base());
    assert_eq!(db.read().changes(), 0);
    // Deferred publication: the changes stay in memory, answers merged.
    db.publish_each_commit(false);
    db.upsert(&items[1500..2500]).unwrap();
    db.remove(&[items[0].key.as_str(), items[2400].key.as_str()])
        .unwrap();
    // 500 base items re-written (hidden there, held here), 500 new, one
    // base item removed (hidden) and one new one removed (gone).
    assert_eq!(db.read().changes(), 500 + 500 + 500 + 1 - 1);
    let merged = contents(&db);
    db.publish().unwrap();
    assert_eq!(db.read().changes(), 0);
    assert_eq!(
        contents(&db),
        merged,
        "the publication holds what memory held"
    );
    drop(db);

    let db = Database::open(&path).unwrap();
    assert!(
        !db.health().index_rebuilt,
        "a current publication is mapped"
    );
    assert_eq!(contents(&db), merged);
    assert_eq!(db.read().len(), 2498);
}

#[test]
fn open_rebuilds_when_the_publication_lags_or_is_damaged() {
    let (dir, items, db) = published(1000, 600, 3);
    let path = dir.path().join("db");
    db.publish_each_commit(false);
    db.upsert(&items[600..]).unwrap(); // committed, never published
    let want = contents(&db);
    drop(db);

    let db = Database::open(&path).unwrap();
    assert!(db.health().index_rebuilt, "the publication lacks a commit");
    assert_eq!(contents(&db), want);
    drop(db);
    // That open republished: the next one maps.
    let db = Database::open(&path).unwrap();
    assert!(!db.health().index_rebuilt);
    assert_eq!(contents(&db), want);
    drop(db);

    // A flipped byte in the published snapshot: found by its checksum,
    // rebuilt from the records, and published afresh.
    let file = generation_file(&path);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let db = Database::open(&path).unwrap();
    assert!(
        db.health().index_rebuilt,
        "a damaged publication is not mapped"
    );
    assert_eq!(contents(&db), want);
    drop(db);
    let db = Database::open(&path).unwrap();
    assert!(!db.health().index_rebuilt);
    assert_eq!(contents(&db), want);
}
