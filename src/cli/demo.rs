use std::path::PathBuf;
use std::time::Instant;

use serde_json::{Value, json};

use super::emit;
use super::query::item_json;
use super::stats::render;
use crate::data::synthetic;
use crate::database::Database;
use crate::error::{Error, Result};
use crate::index::{CandidateMode, CandidateQuery};
use crate::sid::{SidLayout, format_tokens};
use crate::stats::index_stats;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Items in the synthetic catalogue.
    #[arg(long, default_value_t = 20_000)]
    items: usize,
    /// Keep the database in this folder (default: a temporary folder, removed afterwards).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Random seed of the synthetic catalogue.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Removes the temporary database folder when the demo ends, however it ends.
struct TempDir(Option<PathBuf>);

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

pub fn run(a: Args) -> Result<()> {
    if a.items == 0 {
        return Err(Error::InvalidArgument("--items must be at least 1".into()));
    }
    let (path, _cleanup) = match &a.out {
        Some(p) => (p.clone(), TempDir(None)),
        None => {
            let p = std::env::temp_dir().join(format!("adasid-demo-{}", std::process::id()));
            (p.clone(), TempDir(Some(p)))
        }
    };
    // The paper's public setting: K = 100, six positions; the last two are behavior SIDs.
    let layout = SidLayout::new(6, 100, 2)?;
    let start = Instant::now();
    let items = synthetic::items(a.items, &layout, a.seed);
    let db = Database::create(&path, layout)?;
    let report = db.upsert(&items)?;
    let ingest_s = start.elapsed().as_secs_f64();
    let state = db.read();
    let index = &state.index;

    let id = state.id(&items[0].key)?;
    let (sid, weights) = index.sid(id).expect("just ingested");
    let prefix = &sid[..2];
    let under: Vec<Value> = index
        .items(prefix)
        .map(|p| p.iter().take(5).map(|i| item_json(&state, i)).collect())
        .unwrap_or_default();
    let next = index.next_tokens(prefix).unwrap_or(&[]);
    let cands = |mode| {
        let q = CandidateQuery {
            tokens: sid,
            weights,
            k: 5,
            mode,
            exclude: Some(id),
        };
        index
            .candidates(&q)
            .iter()
            .map(|c| {
                let mut v = item_json(&state, c.item);
                v["shared_depth"] = json!(c.shared_depth);
                v["score"] = json!(c.score);
                v
            })
            .collect::<Vec<Value>>()
    };
    let (by_prefix, by_overlap) = (cands(CandidateMode::Prefix), cands(CandidateMode::Overlap));
    let stats = index_stats(index);
    let value = json!({
        "items": report.inserted,
        "ingest_seconds": ingest_s,
        "database": a.out.as_ref().map(|p| p.display().to_string()),
        "item": item_json(&state, id),
        "prefix": format_tokens(prefix),
        "prefix_count": index.count(prefix),
        "prefix_items": under,
        "next_tokens": format_tokens(next),
        "candidates_prefix": by_prefix,
        "candidates_overlap": by_overlap,
        "stats": stats,
    });
    emit(a.json, &value, || {
        let mut out = format!(
            "Built a database of {} synthetic items (6 positions, K = 100, last 2 are behavior SIDs) in {ingest_s:.2}s.\n\n",
            report.inserted
        );
        out += &format!(
            "Item {} has SID [{}] with routing weights {:?}\n",
            items[0].key,
            format_tokens(sid),
            weights
        );
        out += "  (the last token disambiguates items whose semantic tokens collide; '-' is a masked behavior SID)\n\n";
        out += &format!(
            "{} items live under its 2-token prefix [{}]; the first few:\n",
            index.count(prefix),
            format_tokens(prefix)
        );
        for v in &under {
            out += &format!(
                "  {:<12} {}\n",
                v["key"].as_str().unwrap_or(""),
                v["sid"].as_str().unwrap_or("")
            );
        }
        out += &format!(
            "\nValid next tokens after [{}] (what a constrained beam may write): {}\n",
            format_tokens(prefix),
            format_tokens(next)
        );
        for (title, rows) in [
            ("prefix backoff", &by_prefix),
            ("position overlap", &by_overlap),
        ] {
            out += &format!(
                "\nTop candidates by {title}:\n  {:<12} {:>5} {:>6}  sid\n",
                "key", "depth", "score"
            );
            for v in rows.iter() {
                out += &format!(
                    "  {:<12} {:>5} {:>6.2}  {}\n",
                    v["key"].as_str().unwrap_or(""),
                    v["shared_depth"].as_u64().unwrap_or(0),
                    v["score"].as_f64().unwrap_or(0.0),
                    v["sid"].as_str().unwrap_or("")
                );
            }
        }
        out += &format!("\nIndex figures:\n{}", render(&stats));
        if let Some(p) = &a.out {
            out += &format!(
                "\nThe database is in {0}. Try:\n  adasid lookup --db {0} --prefix {1}\n  adasid similar --db {0} --item {2} --mode overlap\n",
                p.display(),
                format_tokens(prefix),
                items[0].key
            );
        }
        out
    });
    Ok(())
}
