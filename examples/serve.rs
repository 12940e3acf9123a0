//! Embeds adasid in a tiny line-protocol server on loopback and measures
//! request latency under a bounded local load.
//!
//! ```text
//! cargo run --release --example serve -- --db DB [--clients 8] [--requests 4000] [--writer] [--json]
//! ```
//!
//! Without `--db` it builds a database in a temporary folder: the Beauty
//! item keys and `meta.jsonl` from `../shared/data/beauty` when present
//! (with synthetic SIDs), else a synthetic catalogue with synthetic metadata,
//! and trains a small parallel retriever on random histories for one epoch
//! (its answers mean nothing; its latency is the real thing). With `--db`,
//! `RECOMMEND` is served when the database stores a retriever.
//!
//! Protocol: one request per line, one response line each.
//!
//! | request                    | response                               |
//! |----------------------------|----------------------------------------|
//! | `ITEMS 3,17`               | `OK <count> <up to 10 keys>`           |
//! | `NEXT 3,17`                | `OK <tokens>`                          |
//! | `SEARCH 3,17<TAB>filter`   | `OK <count> <up to 10 keys>`           |
//! | `SIMILAR key`              | `OK <up to 10 keys>`                   |
//! | `RECOMMEND key,key,…`      | `OK <10 keys>` (oldest history first)  |
//!
//! A bad request gets `ERR <message>`; the connection stays open.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use adasid::data::synthetic;
use adasid::filter::Meta;
use adasid::generative::{Corpus, ParallelConfig, ParallelRetriever, Recommender};
use adasid::sid::{format_tokens, parse_tokens};
use adasid::{CandidateMode, CandidateQuery, Database, NewItem, SidIndex, SidLayout, Token};
use candle_core::Device;
use clap::Parser;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// Database to serve (default: a generated one, see above).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Requests per client.
    #[arg(long, default_value_t = 4000)]
    requests: usize,
    /// Also run a writer throughout: batches of 10 existing items
    /// re-upserted with their metadata (durable, filters updated), back to back.
    #[arg(long)]
    writer: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Re-upserts random batches of 10 items (same SIDs, same metadata) until
/// `stop`; returns how many batches it committed.
fn write_loop(db: &Database, stop: &std::sync::atomic::AtomicBool) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let mut batches = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let mut seen = std::collections::HashSet::new();
        let items: Vec<NewItem> = {
            let state = db.read();
            let ids: Vec<u32> = state.items(&[]).map_or(Vec::new(), |p| p.iter().collect());
            (0..10)
                .map(|_| ids[rng.gen_range(0..ids.len())])
                .filter(|&id| seen.insert(id))
                .map(|id| {
                    let (sid, weights) = SidIndex::sid(&*state, id).expect("live");
                    NewItem {
                        key: state.key(id).expect("key").to_string(),
                        tokens: sid[..db.layout().levels()].to_vec(),
                        weights: weights.to_vec(),
                    }
                })
                .collect()
        };
        let metas: Vec<(String, Meta)> = items
            .iter()
            .filter_map(|it| Some((it.key.clone(), db.meta(&it.key).ok()??)))
            .collect();
        db.upsert_with_meta(&items, &metas, Vec::new())
            .expect("write");
        batches += 1;
    }
    batches
}

/// What the server answers from.
struct Server {
    db: Database,
    /// The stored retriever, when there is one.
    recommender: Option<Recommender>,
}

/// Answers one request line.
fn answer(srv: &Server, line: &str) -> String {
    match respond(srv, line) {
        Ok(s) => format!("OK {s}"),
        Err(e) => format!("ERR {e}"),
    }
}

fn respond(srv: &Server, line: &str) -> adasid::Result<String> {
    let db = &srv.db;
    let bad = |m: &str| adasid::Error::InvalidArgument(m.to_string());
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    let prefix = |text: &str| parse_tokens(text).map_err(|m| bad(&m));
    let keys = |ids: &[u32]| -> String {
        let state = db.read();
        let shown: Vec<&str> = ids.iter().take(10).filter_map(|&i| state.key(i)).collect();
        format!("{} {}", ids.len(), shown.join(","))
    };
    match verb {
        "ITEMS" => Ok(keys(&db.search(&prefix(rest)?, None)?)),
        "SEARCH" => {
            let (p, filter) = rest
                .split_once('\t')
                .ok_or_else(|| bad("SEARCH prefix<TAB>filter"))?;
            Ok(keys(&db.search(&prefix(p)?, Some(filter))?))
        }
        "NEXT" => {
            let p = prefix(rest)?;
            db.layout().check_prefix(&p)?;
            let state = db.read();
            Ok(state
                .next_tokens(&p)
                .map_or("-".into(), |t| format_tokens(&t)))
        }
        "SIMILAR" => {
            let state = db.read();
            let id = state.id(rest)?;
            let (tokens, weights) = SidIndex::sid(&*state, id).ok_or_else(|| bad("no SID"))?;
            let q = CandidateQuery {
                tokens,
                weights,
                k: 10,
                mode: CandidateMode::Overlap,
                exclude: Some(id),
            };
            let found: Vec<&str> = state
                .candidates(&q)
                .iter()
                .filter_map(|c| state.key(c.item))
                .collect();
            Ok(found.join(","))
        }
        "RECOMMEND" => {
            let model = srv
                .recommender
                .as_ref()
                .ok_or_else(|| bad("no trained retriever"))?;
            let state = db.read();
            let history: Vec<u32> = rest.split(',').filter_map(|k| state.id(k).ok()).collect();
            if history.is_empty() {
                return Err(bad("no known history item"));
            }
            let hits = model.recommend(&*state, &history, 10, None)?;
            let found: Vec<&str> = hits.iter().filter_map(|h| state.key(h.item)).collect();
            Ok(found.join(","))
        }
        _ => Err(bad("unknown request")),
    }
}

fn serve(srv: Arc<Server>, listener: TcpListener, connections: usize) {
    for stream in listener.incoming().take(connections) {
        let (srv, stream) = (srv.clone(), stream.expect("accept"));
        std::thread::spawn(move || {
            stream.set_nodelay(true).expect("nodelay");
            let mut out = stream.try_clone().expect("clone stream");
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let mut reply = answer(&srv, &line);
                reply.push('\n');
                if out.write_all(reply.as_bytes()).is_err() {
                    break;
                }
            }
        });
    }
}

/// The database to serve and its metadata's brands (for filter queries).
fn build(dir: &std::path::Path) -> adasid::Result<(Database, Vec<String>)> {
    let beauty = std::path::Path::new("../shared/data/beauty/meta.jsonl");
    let layout = SidLayout::new(3, 256, 1)?;
    let metas: Vec<(String, Meta)> = if beauty.exists() {
        adasid::data::meta::read(beauty, None)?
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        (0..20_000)
            .map(|i| {
                let m = json!({
                    "title": format!("item {i}"),
                    "brand": format!("brand{}", rng.gen_range(0..200)),
                    "price": rng.gen_range(1.0..100.0),
                });
                (format!("item{i}"), m.as_object().expect("object").clone())
            })
            .collect()
    };
    let items: Vec<NewItem> = synthetic::items(metas.len(), &layout, 7)
        .into_iter()
        .zip(&metas)
        .map(|(it, (key, _))| NewItem {
            key: key.clone(),
            ..it
        })
        .collect();
    let (db, _) = Database::create_with(&dir.join("db"), layout, &items, &[], Vec::new())?;
    db.set_meta(&metas)?;
    train_retriever(&db, &metas)?;
    Ok((db, brands(&metas)))
}

/// One epoch of a parallel retriever on 2,000 random 20-item histories.
fn train_retriever(db: &Database, metas: &[(String, Meta)]) -> adasid::Result<()> {
    let keys: Vec<String> = metas.iter().map(|(k, _)| k.clone()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let sequences = (0..2000)
        .map(|_| {
            (0..20)
                .map(|_| rng.gen_range(0..keys.len() as u32))
                .collect()
        })
        .collect();
    let corpus = Corpus::new(&*db.read(), &keys, sequences);
    let cfg = ParallelConfig {
        epochs: 1,
        valid_users: 100,
        ..ParallelConfig::default()
    };
    let (model, _) = {
        let state = db.read();
        ParallelRetriever::train(cfg, &*state, &corpus, Device::Cpu, |_| {})?
    };
    db.put_blobs(model.to_blobs()?)?;
    Ok(())
}

fn brands(metas: &[(String, Meta)]) -> Vec<String> {
    let mut b: Vec<String> = metas
        .iter()
        .filter_map(|(_, m)| m.get("brand")?.as_str())
        .flat_map(|s| {
            s.split(|c: char| !c.is_alphanumeric())
                .map(str::to_lowercase)
                .next()
        })
        .filter(|s| !s.is_empty())
        .collect();
    b.sort();
    b.dedup();
    b
}

/// A mixed request stream: prefixes of real SIDs, an eighth of them
/// filtered, and with a retriever an eighth recommendations after 1–20
/// random items.
fn requests(srv: &Server, brands: &[String], n: usize, seed: u64) -> Vec<(usize, String)> {
    let state = srv.db.read();
    let ids: Vec<u32> = state.items(&[]).map_or(Vec::new(), |p| p.iter().collect());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let id = ids[rng.gen_range(0..ids.len())];
            let sid: &[Token] = SidIndex::sid(&*state, id).expect("live").0;
            let p = format_tokens(&sid[..rng.gen_range(1..=2)]);
            let kinds = if srv.recommender.is_some() { 9 } else { 8 };
            match rng.gen_range(0..kinds) {
                8 => {
                    let history: Vec<&str> = (0..rng.gen_range(1..=20))
                        .map(|_| state.key(ids[rng.gen_range(0..ids.len())]).expect("key"))
                        .collect();
                    (4, format!("RECOMMEND {}", history.join(",")))
                }
                0..=2 => (0, format!("ITEMS {p}")),
                3..=4 => (1, format!("NEXT {p}")),
                5 => (3, format!("SIMILAR {}", state.key(id).expect("key"))),
                _ => {
                    let brand = brands
                        .get(rng.gen_range(0..brands.len().max(1)))
                        .map_or("x", |s| s);
                    let hi = rng.gen_range(5..60);
                    let p = format_tokens(&sid[..1]);
                    (
                        2,
                        format!("SEARCH {p}\tbrand:{brand} AND price:[0 TO {hi}]"),
                    )
                }
            }
        })
        .collect()
}

const KINDS: [&str; 5] = ["items", "next", "search", "similar", "recommend"];

fn percentiles(mut v: Vec<f64>) -> serde_json::Value {
    if v.is_empty() {
        return json!(null);
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    json!({ "n": v.len(), "p50_us": at(0.5), "p90_us": at(0.9), "p99_us": at(0.99), "max_us": v[v.len() - 1] })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // It may train a retriever first, which is faster with freed pages kept.
    adasid::heap::keep_freed_memory();
    let args = Args::parse();
    let tmp = tempfile::tempdir()?;
    let (db, brands) = match &args.db {
        Some(path) => {
            let db = Database::open(path)?;
            let metas: Vec<(String, Meta)> = {
                let keys: Vec<String> = {
                    let s = db.read();
                    SidIndex::items(&*s, &[]).map_or(Vec::new(), |p| {
                        p.iter()
                            .filter_map(|i| s.key(i).map(String::from))
                            .collect()
                    })
                };
                keys.iter()
                    .take(5000)
                    .filter_map(|k| Some((k.clone(), db.meta(k).ok()??)))
                    .collect()
            };
            (db, brands(&metas))
        }
        None => build(tmp.path())?,
    };
    let recommender = match Recommender::from_blobs(&db, db.layout(), Device::Cpu, None) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("RECOMMEND is not served: {e}");
            None
        }
    };
    let srv = Arc::new(Server { db, recommender });
    let items = SidIndex::len(&*srv.db.read());

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = args.writer.then(|| {
        let (srv, stop) = (srv.clone(), stop.clone());
        std::thread::spawn(move || write_loop(&srv.db, &stop))
    });
    // In-process latency of the same requests (no network), for reference.
    let local = requests(&srv, &brands, args.requests, 99);
    let mut direct: Vec<Vec<f64>> = vec![Vec::new(); KINDS.len()];
    for (kind, line) in &local {
        let t = Instant::now();
        let r = answer(&srv, line);
        direct[*kind].push(t.elapsed().as_secs_f64() * 1e6);
        assert!(r.starts_with("OK"), "{line}: {r}");
    }

    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = srv.clone();
    let clients = args.clients;
    std::thread::spawn(move || serve(server, listener, clients));
    let start = Instant::now();
    let handles: Vec<_> = (0..args.clients)
        .map(|c| {
            let reqs = requests(&srv, &brands, args.requests, c as u64);
            std::thread::spawn(move || {
                let stream = TcpStream::connect(addr).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let mut out = stream.try_clone().expect("clone");
                let mut input = BufReader::new(stream);
                let mut lat: Vec<Vec<f64>> = vec![Vec::new(); KINDS.len()];
                let mut reply = String::new();
                for (kind, line) in reqs {
                    let t = Instant::now();
                    out.write_all(format!("{line}\n").as_bytes()).expect("send");
                    reply.clear();
                    input.read_line(&mut reply).expect("receive");
                    lat[kind].push(t.elapsed().as_secs_f64() * 1e6);
                    assert!(reply.starts_with("OK"), "{line}: {reply}");
                }
                lat
            })
        })
        .collect();
    let mut remote: Vec<Vec<f64>> = vec![Vec::new(); KINDS.len()];
    for h in handles {
        for (all, mine) in remote.iter_mut().zip(h.join().expect("client")) {
            all.extend(mine);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let write_batches = writer.map_or(0, |w| w.join().expect("writer"));
    let total = args.clients * args.requests;
    let report = json!({
        "items": items,
        "retriever": srv.recommender.as_ref().map(Recommender::name),
        "clients": args.clients,
        "requests": total,
        "seconds": seconds,
        "requests_per_second": total as f64 / seconds,
        "write_batches_per_second": write_batches as f64 / seconds,
        "loopback": KINDS.iter().zip(remote).map(|(k, v)| (k.to_string(), percentiles(v))).collect::<serde_json::Map<_, _>>(),
        "in_process": KINDS.iter().zip(direct).map(|(k, v)| (k.to_string(), percentiles(v))).collect::<serde_json::Map<_, _>>(),
    });
    if args.json {
        println!("{report}");
    } else {
        println!(
            "{items} items, {} clients × {} requests over loopback: {:.0} requests/s",
            args.clients,
            args.requests,
            total as f64 / seconds
        );
        if args.writer {
            println!(
                "a writer committed {:.1} batches of 10 items/s meanwhile",
                write_batches as f64 / seconds
            );
        }
        for side in ["loopback", "in_process"] {
            println!("{side} latency (µs):");
            for k in KINDS {
                let p = &report[side][k];
                if p.is_null() {
                    continue;
                }
                println!(
                    "  {k:<9} n {:>6}  p50 {:>8.1}  p90 {:>8.1}  p99 {:>8.1}  max {:>9.1}",
                    p["n"],
                    p["p50_us"].as_f64().unwrap_or(0.0),
                    p["p90_us"].as_f64().unwrap_or(0.0),
                    p["p99_us"].as_f64().unwrap_or(0.0),
                    p["max_us"].as_f64().unwrap_or(0.0)
                );
            }
        }
    }
    Ok(())
}
