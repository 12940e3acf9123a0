//! Readers in other processes beside a writer: the writer holds the store,
//! and `lookup`, `export`, `similar`, `stats` in child processes read its published
//! view — every batch acknowledged before they started, never part of one.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use adasid::data::synthetic;
use adasid::{Database, Published, Reader, SidIndex, SidLayout};

use crate::common::adasid;

const BATCH: usize = 40;

fn layout() -> SidLayout {
    SidLayout::new(3, 16, 0).unwrap()
}

/// Items a reader process lists under the empty prefix.
fn listed(db: &Path) -> Result<usize, String> {
    lookup_count(db, &[])
}

/// The count a reader process's `lookup` of every item reports (`extra`:
/// more arguments, a filter say).
fn lookup_count(db: &Path, extra: &[&str]) -> Result<usize, String> {
    let d = db.to_str().unwrap();
    let mut args = vec![
        "lookup", "--db", d, "--prefix", "", "--limit", "0", "--json",
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = adasid(&args);
    if !ok {
        return Err(err);
    }
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    Ok(v["count"].as_u64().unwrap() as usize)
}

#[test]
fn readers_in_other_processes_see_every_acknowledged_batch_while_a_writer_holds_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path, layout()).unwrap();
    let items = synthetic::items(5 * BATCH, &layout(), 3);
    let p = path.to_str().unwrap();
    for (b, batch) in items.chunks(BATCH).enumerate() {
        db.upsert(batch).unwrap();
        let held = BATCH * (b + 1);
        assert_eq!(listed(&path).unwrap(), held, "after batch {b}");
        // Every exported SID is the writer's own.
        let (ok, out, err) = adasid(&["export", "--db", p, "--format", "json"]);
        assert!(ok, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let exported = v["items"].as_object().unwrap();
        assert_eq!(exported.len(), held);
        let state = db.read();
        for (key, item) in exported {
            let (sid, _) = state.sid(state.id(key).unwrap()).unwrap();
            let want: Vec<u64> = sid.iter().map(|&t| t as u64).collect();
            let got: Vec<u64> = item["sid"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_u64().unwrap())
                .collect();
            assert_eq!(got, want, "{key}");
        }
        drop(state);
        let (ok, _, err) = adasid(&["similar", "--db", p, "--item", "item0", "--json"]);
        assert!(ok, "{err}");
        let (ok, out, err) = adasid(&["stats", "--db", p, "--json"]);
        assert!(ok, "{err}");
        let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(stats["items"], held);
    }
    // A removal is acknowledged the same way.
    let gone: Vec<&str> = items[..BATCH].iter().map(|i| i.key.as_str()).collect();
    db.remove(&gone).unwrap();
    assert_eq!(listed(&path).unwrap(), 4 * BATCH);
    let (ok, _, err) = adasid(&["similar", "--db", p, "--item", "item0", "--json"]);
    assert!(!ok && err.contains("item0"), "{err}");
}

#[test]
fn readers_racing_a_writer_never_see_part_of_a_batch_nor_miss_an_acknowledged_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Arc::new(Database::create(&path, layout()).unwrap());
    let acked = Arc::new(AtomicUsize::new(0));
    let items = synthetic::items(12 * BATCH, &layout(), 4);
    let writer = {
        let (db, acked) = (db.clone(), acked.clone());
        std::thread::spawn(move || {
            for batch in items.chunks(BATCH) {
                db.upsert(batch).unwrap();
                acked.fetch_add(BATCH, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(15));
            }
        })
    };
    let mut reads = 0;
    while !writer.is_finished() || reads < 5 {
        let before = acked.load(Ordering::SeqCst);
        let seen = listed(&path).expect("a reader is never refused");
        let after = acked.load(Ordering::SeqCst);
        assert_eq!(seen % BATCH, 0, "a partial batch: {seen}");
        assert!(
            seen >= before,
            "missed an acknowledged batch: {seen} < {before}"
        );
        // A commit is published just before it is acknowledged.
        assert!(seen <= after + BATCH, "{seen} > {after}");
        reads += 1;
    }
    writer.join().unwrap();
    assert_eq!(listed(&path).unwrap(), 12 * BATCH);
}

#[test]
fn a_deferred_or_interrupted_publication_lags_whole_and_is_caught_up_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let items = synthetic::items(3 * BATCH, &layout(), 5);
    {
        let db = Database::create(&path, layout()).unwrap();
        db.upsert(&items[..BATCH]).unwrap();
        db.publish_each_commit(false);
        db.upsert(&items[BATCH..2 * BATCH]).unwrap();
        // The writer holds the store: readers get the last publication, lagging.
        assert_eq!(listed(&path).unwrap(), BATCH);
        let published = Published::open(&path).unwrap().unwrap();
        assert!(published.lagging());
        assert_eq!(published.view().len(), BATCH as u64);
        db.upsert(&items[2 * BATCH..]).unwrap();
        // Dropped without publishing, as a writer killed after its commits.
    }
    assert!(Published::open(&path).unwrap().unwrap().lagging());
    // No writer now: the reader opens the store, which republishes.
    let reader = Reader::open(&path).unwrap();
    assert!(matches!(reader, Reader::Store(_)));
    assert_eq!(reader.view().get().len(), 3 * BATCH as u64);
    drop(reader);
    let published = Published::open(&path).unwrap().unwrap();
    assert!(!published.lagging());
    assert_eq!(published.view().len(), 3 * BATCH as u64);
    assert!(matches!(Reader::open(&path).unwrap(), Reader::Published(_)));
}

#[test]
fn a_damaged_publication_is_rebuilt_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path, layout()).unwrap();
    db.upsert(&synthetic::items(2 * BATCH, &layout(), 6))
        .unwrap();
    db.put_blobs(vec![("model".into(), vec![7; 100])]).unwrap();
    drop(db);
    let current = std::fs::read_to_string(path.join("published/CURRENT")).unwrap();
    let snap = path
        .join("published")
        .join(current.trim())
        .join("index.snap");
    let mut bytes = std::fs::read(&snap).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&snap, bytes).unwrap();
    assert!(Published::open(&path).is_err());
    let reader = Reader::open(&path).unwrap();
    assert_eq!(reader.view().get().len(), 2 * BATCH as u64);
    drop(reader);
    let published = Published::open(&path).unwrap().unwrap();
    assert_eq!(published.view().len(), 2 * BATCH as u64);
    use adasid::blobs::BlobSource;
    assert_eq!(published.blob("model").unwrap(), Some(vec![7; 100]));
    // The writer's next publications leave one older generation at most.
    let db = Database::open(&path).unwrap();
    for seed in 0..3 {
        db.upsert(&synthetic::items_in(100 + seed..101 + seed, &layout(), 6))
            .unwrap();
    }
    let generations = std::fs::read_dir(path.join("published"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .count();
    assert_eq!(generations, 2);
}

#[test]
fn a_failed_publication_keeps_the_write_reports_it_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let items = synthetic::items(2 * BATCH, &layout(), 7);
    let db = Database::create(&path, layout()).unwrap();
    db.upsert(&items[..BATCH]).unwrap();
    // A file where the next generation's folder must go.
    let current = std::fs::read_to_string(path.join("published/CURRENT")).unwrap();
    let next = current.trim().parse::<u64>().unwrap() + 1;
    let obstacle = path.join("published").join(next.to_string());
    std::fs::write(&obstacle, b"in the way").unwrap();
    db.upsert(&items[BATCH..]).unwrap();
    let stale = db.health().published_stale.expect("the publication failed");
    assert!(stale.contains(&next.to_string()), "{stale}");
    assert_eq!(db.read().len(), 2 * BATCH as u64);
    let published = Published::open(&path).unwrap().unwrap();
    assert!(published.lagging());
    assert_eq!(published.view().len(), BATCH as u64);
    std::fs::remove_file(&obstacle).unwrap();
    db.publish().unwrap();
    assert!(db.health().published_stale.is_none());
    assert!(!Published::open(&path).unwrap().unwrap().lagging());
    assert_eq!(listed(&path).unwrap(), 2 * BATCH);
}

#[test]
fn filtered_lookups_in_other_processes_read_the_metadata_of_the_published_view() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Database::create(&path, layout()).unwrap();
    let items = synthetic::items(2 * BATCH, &layout(), 8);
    let meta = |brand: &str, n: usize| -> Vec<(String, adasid::filter::Meta)> {
        items[..n]
            .iter()
            .map(|i| {
                let json = format!("{{\"brand\": \"{brand}\"}}");
                (i.key.clone(), serde_json::from_str(&json).unwrap())
            })
            .collect()
    };
    db.upsert_with_meta(&items, &meta("opi", BATCH), vec![])
        .unwrap();
    let matching = |brand: &str| lookup_count(&path, &["--filter", &format!("brand:{brand}")]);
    // The writer holds the store throughout.
    assert_eq!(matching("opi").unwrap(), BATCH);
    db.set_meta(&meta("essie", 2 * BATCH)).unwrap();
    assert_eq!(matching("opi").unwrap(), 0);
    assert_eq!(matching("essie").unwrap(), 2 * BATCH);

    // A metadata index ahead of the published items (a metadata write
    // between its two steps) is a reason to retry, and the error says so.
    let published = path.join("published");
    let current = std::fs::read_to_string(published.join("CURRENT")).unwrap();
    let generation = published.join(current.trim()).join("meta_generation");
    let held = std::fs::read_to_string(&generation).unwrap();
    std::fs::write(&generation, "1\n").unwrap();
    let err = matching("essie").unwrap_err();
    assert!(
        err.contains("is busy") && err.contains("metadata commit") && err.contains("retry"),
        "{err}"
    );
    assert!(lookup_count(&path, &[]).is_ok(), "unfiltered reads go on");
    std::fs::write(&generation, held).unwrap();
    assert_eq!(matching("essie").unwrap(), 2 * BATCH);
}
