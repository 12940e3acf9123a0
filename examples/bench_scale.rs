//! How adasid grows with the catalogue: synthetic skewed SIDs (masked
//! behavior positions included) ingested through the database a batch at a
//! time, measured at 1M, 10M, … and the full size in one run.
//!
//! ```text
//! cargo run --release --example bench_scale -- --items 50000000 --levels 8 --k 300 --json
//! ```
//!
//! Each stage runs in a child process of its own (ingest up to the next
//! size; then open, query and snapshot), so resident memory is what one
//! open database takes, not what earlier stages left behind, and every
//! open starts from the files alone. Query latencies are medians over
//! random items of the whole catalogue (mostly cache misses).

mod common;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use adasid::data::synthetic;
use adasid::decode::parallel::{PositionScores, top_k};
use adasid::index::{CandidateMode, CandidateQuery};
use adasid::snapshot::Snapshot;
use adasid::{Database, ReadView, SidLayout, Token};
use clap::Parser;
use common::median_ns;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

#[derive(Parser, Clone)]
struct Args {
    #[arg(long, default_value_t = 10_000_000)]
    items: usize,
    #[arg(long, default_value_t = 8)]
    levels: u32,
    #[arg(long, default_value_t = 300)]
    k: u32,
    /// Behavior positions among the levels (masked for 30% of the items each).
    #[arg(long, default_value_t = 2)]
    behavior: u32,
    /// Items per database commit.
    #[arg(long, default_value_t = 1_000_000)]
    batch: usize,
    /// Commits between publications while ingesting (each publication
    /// writes the whole catalogue and drops the changes held in memory).
    #[arg(long, default_value_t = 10)]
    publish_every: usize,
    /// Random queries per latency measurement.
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Folder for the database and snapshots (default: a temporary one, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long)]
    json: bool,
    /// Internal: run one stage (`ingest:FROM:TO` or `measure:ITEMS`) and print its JSON.
    #[arg(long, hide = true)]
    stage: Option<String>,
}

/// 1M, 10M, 100M, … below `items`, then `items` itself.
fn sizes(items: usize) -> Vec<usize> {
    let mut out: Vec<usize> = std::iter::successors(Some(1_000_000usize), |s| s.checked_mul(10))
        .take_while(|&s| s < items)
        .collect();
    out.push(items);
    out
}

fn main() -> adasid::Result<()> {
    let a = Args::parse();
    let layout = SidLayout::new(a.levels, a.k, a.behavior)?;
    if let Some(stage) = &a.stage {
        let dir = a.dir.clone().expect("stages get a folder");
        let value = match stage.split(':').collect::<Vec<_>>()[..] {
            ["ingest", from, to] => ingest(&a, layout, &dir, parse(from), parse(to))?,
            ["measure", items] => measure(&a, &dir, parse(items))?,
            _ => panic!("unknown stage {stage}"),
        };
        println!("{value}");
        return Ok(());
    }
    let temp = a.dir.is_none();
    let dir = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("adasid-scale-{}", std::process::id()))
    });
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    std::fs::create_dir_all(&dir).map_err(|e| adasid::Error::io(&dir, e))?;
    let mut rows = Vec::new();
    let mut done = 0;
    for size in sizes(a.items) {
        let ingest = child(&a, &dir, &format!("ingest:{done}:{size}"));
        let measured = child(&a, &dir, &format!("measure:{size}"));
        done = size;
        let row = json!({ "items": size, "ingest": ingest, "open": measured });
        if !a.json {
            eprintln!("{}", serde_json::to_string_pretty(&row).unwrap());
        }
        rows.push(row);
    }
    if temp {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let value = json!({
        "levels": a.levels, "k": a.k, "behavior": a.behavior, "batch": a.batch,
        "publish_every": a.publish_every, "sizes": rows,
    });
    if a.json {
        println!("{value}");
    }
    Ok(())
}

fn parse(n: &str) -> usize {
    n.parse().expect("a number")
}

/// Runs one stage in a child process and returns the JSON it printed.
fn child(a: &Args, dir: &Path, stage: &str) -> Value {
    let exe = std::env::current_exe().expect("own path");
    let out = std::process::Command::new(exe)
        .args([
            "--items",
            &a.items.to_string(),
            "--levels",
            &a.levels.to_string(),
        ])
        .args([
            "--k",
            &a.k.to_string(),
            "--behavior",
            &a.behavior.to_string(),
        ])
        .args([
            "--batch",
            &a.batch.to_string(),
            "--queries",
            &a.queries.to_string(),
            "--publish-every",
            &a.publish_every.to_string(),
        ])
        .arg("--dir")
        .arg(dir)
        .args(["--stage", stage])
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("the stage runs");
    let text = String::from_utf8_lossy(&out.stdout);
    match (out.status.success(), serde_json::from_str(text.trim())) {
        (true, Ok(v)) => v,
        _ => json!({ "failed": stage, "status": out.status.to_string(), "stdout": text }),
    }
}

/// Ingests items `from..to` (generated a batch at a time) into the database.
fn ingest(
    a: &Args,
    layout: SidLayout,
    dir: &Path,
    from: usize,
    to: usize,
) -> adasid::Result<Value> {
    let path = dir.join("db");
    let t = Instant::now();
    let db = Database::open_or_create(&path, Some(layout))?;
    let open_s = t.elapsed().as_secs_f64();
    // Published every `publish_every` commits and at the end, timed on
    // their own: memory then holds at most that many commits' changes.
    db.publish_each_commit(false);
    let (mut generate_s, mut ingest_s, mut publish_s) = (0.0, 0.0, 0.0);
    let mut start = from;
    let mut commits = 0;
    while start < to {
        let end = (start + a.batch).min(to);
        let t = Instant::now();
        let items = synthetic::items_in(start..end, &layout, 1);
        generate_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        db.upsert(&items)?;
        ingest_s += t.elapsed().as_secs_f64();
        start = end;
        commits += 1;
        if commits % a.publish_every.max(1) == 0 || start == to {
            let t = Instant::now();
            db.publish()?;
            publish_s += t.elapsed().as_secs_f64();
        }
    }
    let n = (to - from) as f64;
    Ok(json!({
        "items": to - from,
        "seconds": ingest_s,
        "publish_seconds": publish_s,
        "items_per_s": n / ingest_s,
        "generate_seconds": generate_s,
        "open_before_seconds": open_s,
        "peak_rss_bytes": proc_status("VmHWM"),
    }))
}

/// Resident memory figure `field` of this process (from /proc), in bytes.
fn proc_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes of the keys `item0..item{n-1}`.
fn key_bytes(n: usize) -> u64 {
    (0..n).map(|i| 4 + i.max(1).ilog10() as u64 + 1).sum()
}

fn measure(a: &Args, dir: &Path, items: usize) -> adasid::Result<Value> {
    let path = dir.join("db");
    let rss_before = proc_status("VmRSS").unwrap_or(0);
    let anon_before = proc_status("RssAnon").unwrap_or(0);
    let t = Instant::now();
    let db = Database::open(&path)?;
    let open_s = t.elapsed().as_secs_f64();
    let rss = proc_status("VmRSS").unwrap_or(0) - rss_before;
    // What open allocated, without the mapped files' pages it has read.
    let anon = proc_status("RssAnon").unwrap_or(0) - anon_before;
    let rebuilt = db.health().index_rebuilt;
    let keys = key_bytes(items);
    let disk = db.size_on_disk()?;
    let state = db.read();
    let trie_nodes = adasid::SidIndex::node_count(&*state);
    let index_queries = queries(a, &*state);
    drop(state);
    let changes = match items == a.items {
        true => change_memory(a, &db, items)?,
        false => Value::Null,
    };
    let snap_path = dir.join("snapshot");
    let t = Instant::now();
    let snap_bytes = db.snapshot(&snap_path)?;
    let snapshot_write_s = t.elapsed().as_secs_f64();
    drop(db);
    let t = Instant::now();
    let snap = Snapshot::open(&snap_path)?;
    let snapshot_open_ms = t.elapsed().as_secs_f64() * 1e3;
    let snapshot_queries = queries(a, &snap);
    drop(snap);
    let _ = std::fs::remove_file(&snap_path);
    Ok(json!({
        "open_seconds": open_s,
        "index_rebuilt": rebuilt,
        "rss_after_open_bytes": rss,
        "anonymous_rss_after_open_bytes": anon,
        "rss_bytes_per_item_beyond_keys": (rss as f64 - keys as f64) / items as f64,
        "trie_nodes": trie_nodes,
        "disk_bytes": disk,
        "disk_bytes_per_item_beyond_keys": (disk as f64 - keys as f64) / items as f64,
        "index": index_queries,
        "changes": changes,
        "snapshot_write_seconds": snapshot_write_s,
        "snapshot_bytes": snap_bytes,
        "snapshot_open_ms": snapshot_open_ms,
        "snapshot": snapshot_queries,
    }))
}

/// Memory and query latencies with changes in memory beside the mapped
/// publication: 1,000 new items and 1,000 re-encoded ones, unpublished;
/// then published, so the folder opens by mapping again.
fn change_memory(a: &Args, db: &Database, items: usize) -> adasid::Result<Value> {
    let layout = db.layout();
    db.publish_each_commit(false);
    let anon = proc_status("RssAnon").unwrap_or(0);
    let t = Instant::now();
    db.upsert(&synthetic::items_in(items..items + 1000, &layout, 1))?;
    db.upsert(&synthetic::items_in(0..1000, &layout, 2))?;
    let upsert_s = t.elapsed().as_secs_f64();
    let grown = proc_status("RssAnon").unwrap_or(0).saturating_sub(anon);
    let state = db.read();
    let changed = state.changes();
    let with_changes = queries(a, &*state);
    drop(state);
    let t = Instant::now();
    db.publish()?;
    Ok(json!({
        "items_in_memory": changed,
        "anonymous_rss_growth_bytes": grown,
        "upsert_seconds": upsert_s,
        "queries": with_changes,
        "publish_seconds": t.elapsed().as_secs_f64(),
    }))
}

/// Median latencies of the read queries over random items of `view`.
fn queries<V: ReadView>(a: &Args, view: &V) -> Value {
    let layout = *view.layout();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let n = view.len() as u32;
    let sids: Vec<Vec<Token>> = (0..a.queries)
        .filter_map(|_| view.sid(rng.gen_range(0..n)).map(|(s, _)| s.to_vec()))
        .collect();
    let q = sids.len();
    let reps = 5;
    let items_ns: Vec<f64> = (1..=layout.levels())
        .map(|len| {
            median_ns(reps, q, || {
                for s in &sids {
                    black_box(view.items(&s[..len]).map(|p| p.len()));
                }
            })
        })
        .collect();
    let prefixes: Vec<&[Token]> = sids
        .iter()
        .map(|s| &s[..rng.gen_range(0..layout.levels())])
        .collect();
    let next_ns = median_ns(reps, q, || {
        for p in &prefixes {
            black_box(view.next_tokens(p));
        }
    });
    let beams: Vec<&[Token]> = prefixes.iter().take(100).copied().collect();
    let mut mask = vec![0u64; beams.len() * layout.mask_words()];
    let mask_ns = median_ns(reps.max(21), 1, || {
        view.allowed_mask(&beams, &mut mask)
            .expect("valid prefixes");
        black_box(&mask);
    });
    let candidates_ns = median_ns(reps, q.min(200), || {
        for s in sids.iter().take(200) {
            let query = CandidateQuery {
                tokens: s,
                weights: &[],
                k: 100,
                mode: CandidateMode::Prefix,
                exclude: None,
            };
            black_box(view.candidates(&query));
        }
    });
    let scores: Vec<f32> = (0..layout.levels() * layout.mask_bits())
        .map(|_| -rng.gen_range(0.0f32..8.0))
        .collect();
    let position_scores = PositionScores::new(&layout, &scores).expect("one row per position");
    let top_ns = median_ns(3, 1, || {
        black_box(top_k(view, &position_scores, 100, None));
    });
    let keys: Vec<String> = (0..a.queries)
        .map(|_| format!("item{}", rng.gen_range(0..n)))
        .collect();
    let key_ns = median_ns(reps, keys.len(), || {
        for k in &keys {
            black_box(view.id(k).ok());
        }
    });
    json!({
        "id_of_key_ns": key_ns,
        "items_ns_by_prefix_length": items_ns,
        "next_tokens_ns": next_ns,
        "allowed_mask_100_beams_ns": mask_ns,
        "candidates_top100_ns": candidates_ns,
        "top_k_100_ns": top_ns,
    })
}
