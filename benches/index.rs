//! Criterion benches of the prefix index on 200,000 synthetic SIDs
//! (4 levels, K = 256). The `bench_index` example runs the same operations at
//! any scale with a hash-map baseline and prints JSON.

use std::hint::black_box;

use adasid::data::synthetic;
use adasid::{Database, Index, NewItem, SidIndex, SidLayout, Token};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ITEMS: usize = 200_000;

fn setup() -> (SidLayout, Vec<NewItem>, Database, tempfile::TempDir) {
    let layout = SidLayout::new(4, 256, 0).unwrap();
    let items = synthetic::items(ITEMS, &layout, 1);
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(&dir.path().join("db"), layout).unwrap();
    db.upsert(&items).unwrap();
    (layout, items, db, dir)
}

fn queries(db: &Database, len: usize, n: usize) -> Vec<Vec<Token>> {
    let state = db.read();
    let mut rng = ChaCha8Rng::seed_from_u64(len as u64);
    (0..n)
        .map(|_| {
            SidIndex::sid(&*state, rng.gen_range(0..ITEMS as u32))
                .unwrap()
                .0[..len]
                .to_vec()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let (layout, items, db, dir) = setup();
    let mut g = c.benchmark_group("index");
    g.sample_size(20);
    {
        let state = db.read();
        let ix: &adasid::State = &state;
        for len in 1..=layout.levels() {
            let qs = queries(&db, len, 1000);
            g.throughput(Throughput::Elements(qs.len() as u64));
            g.bench_function(format!("items_prefix_len{len}"), |b| {
                b.iter(|| {
                    qs.iter().for_each(|q| {
                        black_box(ix.items(q));
                    })
                })
            });
        }
        let qs: Vec<Vec<Token>> = (0..layout.levels())
            .flat_map(|l| queries(&db, l, 250))
            .collect();
        g.throughput(Throughput::Elements(qs.len() as u64));
        g.bench_function("next_tokens", |b| {
            b.iter(|| {
                qs.iter().for_each(|q| {
                    black_box(ix.next_tokens(q));
                })
            })
        });
        let beams = queries(&db, 2, 100);
        let mut mask = vec![0u64; 100 * ix.mask_words()];
        g.throughput(Throughput::Elements(1));
        g.bench_function("allowed_mask_100_beams", |b| {
            b.iter(|| ix.allowed_mask(&beams, &mut mask).unwrap())
        });
    }
    let full: Vec<Vec<Token>> = {
        let state = db.read();
        (0..ITEMS as u32)
            .map(|i| SidIndex::sid(&*state, i).unwrap().0.to_vec())
            .collect()
    };
    g.throughput(Throughput::Elements(ITEMS as u64));
    g.bench_function("insert_200k", |b| {
        b.iter_batched(
            || Index::new(layout),
            |mut ix| {
                for (i, (f, it)) in full.iter().zip(&items).enumerate() {
                    ix.insert(i as u32, f, &it.weights).unwrap();
                }
                ix
            },
            BatchSize::LargeInput,
        )
    });
    drop(db);
    g.throughput(Throughput::Elements(ITEMS as u64));
    g.sample_size(10);
    g.bench_function("open_200k", |b| {
        b.iter(|| Database::open(&dir.path().join("db")).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
