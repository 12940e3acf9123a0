use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use super::{DbArgs, emit};
use adasid::data::tokens;
use adasid::database::Database;
use adasid::error::{Error, Result};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    db: DbArgs,
    /// Token file: `key<TAB>t1,t2,...[<TAB>w1,w2,...]` per line; `-` is an empty (masked) token.
    #[arg(long)]
    tokens: PathBuf,
    /// Codebook size K, required when the database does not exist yet.
    #[arg(long = "codebook-size", alias = "k")]
    k: Option<u32>,
    /// Behavior positions (the last ones) of a new database; default: the weight count of the first line.
    #[arg(long)]
    behavior: Option<u32>,
}

pub fn run(a: Args) -> Result<()> {
    let start = Instant::now();
    let file = a.tokens.display().to_string();
    let text = std::fs::read_to_string(&a.tokens).map_err(|e| Error::io(&a.tokens, e))?;
    let lines = tokens::parse(&file, &text)?;
    let (db, report) = if Database::exists(&a.db.db) {
        let db = Database::open(&a.db.db)?;
        let items = tokens::validate(&file, lines, &db.layout())?;
        let report = db.upsert(&items)?;
        (db, report)
    } else {
        // An exported file names its layout in its header line; otherwise --codebook-size
        // and the first line decide it.
        let layout = match (tokens::header_layout(&text), a.k) {
            (Some(header), None) => header?,
            (_, k) => {
                let k = k.ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "{} does not exist yet: pass --codebook-size to create it",
                        a.db.db.display()
                    ))
                })?;
                tokens::infer_layout(&lines, k, a.behavior)?
            }
        };
        let items = tokens::validate(&file, lines, &layout)?;
        Database::create_with(&a.db.db, layout, &items, &[], Vec::new())?
    };
    let total = db.read().index.len();
    let seconds = start.elapsed().as_secs_f64();
    let value = json!({
        "inserted": report.inserted,
        "updated": report.updated,
        "items": total,
        "seconds": seconds,
    });
    emit(a.db.json, &value, || {
        format!(
            "ingested {} new and {} updated items from {file} in {seconds:.2}s; the database holds {total} items\n",
            report.inserted, report.updated
        )
    });
    Ok(())
}
