//! Readers query while a writer ingests, re-encodes and removes: every read
//! view is consistent (every posted item has a record and a key, postings
//! match SIDs) and batches appear whole.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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
                    let ix = &state.index;
                    // Inserted batches are whole; removal batches take whole batches too.
                    assert_eq!(ix.len() % BATCH as u64, 0, "reader {r} saw a partial batch");
                    for token in 0..16u16 {
                        if let Some(p) = ix.items(&[token]) {
                            for id in p.iter() {
                                let (sid, _) = ix.sid(id).expect("posted item has a SID");
                                assert_eq!(sid[0], token);
                                let key = state.key(id).expect("posted item has a key");
                                assert_eq!(state.keys.id(key), Some(id));
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
    assert_eq!(db.read().index.len(), (3000 - 6 * BATCH) as u64);
}
