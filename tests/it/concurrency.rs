//! Readers query while a writer ingests, re-encodes and removes: every read
//! view is consistent (every posted item has a record and a key, postings
//! match SIDs) and batches appear whole.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use adasid::SidIndex;
use adasid::data::synthetic;
use adasid::{Database, Index, NewItem, SidLayout};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn index_and_database_are_send_and_sync() {
    assert_send_sync::<Index>();
    assert_send_sync::<Database>();
}

#[test]
fn readers_see_consistent_whole_batches_while_a_writer_runs() {
    let dir = tempfile::tempdir().unwrap();
    let layout = SidLayout::new(4, 16, 1).unwrap();
    let db = Arc::new(Database::create(&dir.path().join("db"), layout).unwrap());
    let items = synthetic::items(3000, &layout, 5);
    const BATCH: usize = 100;
    let done = Arc::new(AtomicBool::new(false));

    let readers: Vec<_> = (0..4)
        .map(|r| {
            let (db, done) = (db.clone(), done.clone());
            std::thread::spawn(move || {
                let mut views = 0;
                while !done.load(Ordering::Relaxed) || views < 10 {
                    let state = db.read();
                    let ix = &*state;
                    // Inserted batches are whole; removal batches take whole batches too.
                    assert_eq!(ix.len() % BATCH as u64, 0, "reader {r} saw a partial batch");
                    for token in 0..16u16 {
                        if let Some(p) = ix.items(&[token]) {
                            for id in p.iter() {
                                let (sid, _) = ix.sid(id).expect("posted item has a SID");
                                assert_eq!(sid[0], token);
                                let key = state.key(id).expect("posted item has a key");
                                assert_eq!(state.find(key), Some(id));
                            }
                        }
                    }
                    views += 1;
                }
                views
            })
        })
        .collect();

    for (n, batch) in items.chunks(BATCH).enumerate() {
        db.upsert(batch).unwrap();
        if n % 5 == 4 {
            // Re-encode the batch with shifted tokens, then drop an earlier batch.
            let moved: Vec<NewItem> = batch
                .iter()
                .map(|it| NewItem {
                    tokens: it
                        .tokens
                        .iter()
                        .map(|&t| if t == adasid::EMPTY { t } else { (t + 1) % 16 })
                        .collect(),
                    ..it.clone()
                })
                .collect();
            db.upsert(&moved).unwrap();
            let keys: Vec<&str> = items[(n - 2) * BATCH..(n - 1) * BATCH]
                .iter()
                .map(|i| i.key.as_str())
                .collect();
            db.remove(&keys).unwrap();
        }
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() >= 10);
    }
    assert_eq!(db.read().len(), (3000 - 6 * BATCH) as u64);
}

#[test]
fn eight_readers_see_filters_and_postings_of_one_commit_while_a_writer_runs() {
    use std::collections::HashMap;

    let dir = tempfile::tempdir().unwrap();
    let layout = SidLayout::new(4, 16, 1).unwrap();
    let db = Arc::new(Database::create(&dir.path().join("db"), layout).unwrap());
    let items = synthetic::items(2400, &layout, 11);
    const BATCH: usize = 80;
    // An item's brand is a function of its batch, so a reader can tell what
    // the filter must return from the keys it sees.
    let batch_of: Arc<HashMap<String, usize>> = Arc::new(
        items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.key.clone(), i / BATCH))
            .collect(),
    );
    let brand = |batch: usize| format!("brand{}", batch % 3);
    let meta = |key: &str, batch: usize| {
        let m = serde_json::json!({"brand": brand(batch), "price": batch as f64});
        (key.to_string(), m.as_object().unwrap().clone())
    };
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..8)
        .map(|r| {
            let (db, done, batch_of) = (db.clone(), done.clone(), batch_of.clone());
            std::thread::spawn(move || {
                let mut views = 0;
                while !done.load(Ordering::Relaxed) || views < 5 {
                    let state = db.read();
                    assert_eq!(state.len() % BATCH as u64, 0, "reader {r}: partial batch");
                    let token = (views % 16) as u16;
                    let under: Vec<u32> = state
                        .items(&[token])
                        .map_or(Vec::new(), |p| p.to_sorted_vec());
                    let want: Vec<u32> = under
                        .iter()
                        .copied()
                        .filter(|&id| {
                            batch_of[state.key(id).expect("posted item has a key")] % 3 == 1
                        })
                        .collect();
                    let got = db
                        .search_in(&state, &[token], Some("brand:brand1"))
                        .unwrap();
                    assert_eq!(got, want, "reader {r}: filter and postings disagree");
                    views += 1;
                }
                views
            })
        })
        .collect();
    for (n, batch) in items.chunks(BATCH).enumerate() {
        let metas: Vec<_> = batch.iter().map(|it| meta(&it.key, n)).collect();
        db.upsert_with_meta(batch, &metas, vec![]).unwrap();
        if n % 4 == 3 {
            let keys: Vec<&str> = items[(n - 2) * BATCH..(n - 1) * BATCH]
                .iter()
                .map(|i| i.key.as_str())
                .collect();
            db.remove(&keys).unwrap();
        }
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() >= 5);
    }
    let live = db.read().len();
    assert_eq!(live, (2400 - 7 * BATCH) as u64);
    assert_eq!(
        db.filters().unwrap().unwrap().len(),
        live,
        "removed items left the metadata index"
    );
}
