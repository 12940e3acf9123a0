use std::path::PathBuf;

use serde_json::{Value, json};

use super::{DbArgs, Mode, emit};
use crate::database::{Database, State};
use crate::error::{Error, Result};
use crate::index::{CandidateMode, CandidateQuery, ItemId, SidIndex};
use crate::sid::{Token, format_tokens, parse_tokens};
use crate::snapshot::Snapshot;

/// A database folder, or a snapshot file read in place.
#[derive(clap::Args, Debug)]
struct SourceArgs {
    /// Database folder.
    #[arg(
        long,
        required_unless_present = "snapshot",
        conflicts_with = "snapshot"
    )]
    db: Option<PathBuf>,
    /// Snapshot file (`adasid snapshot`) to read instead, verified on open.
    #[arg(long)]
    snapshot: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// What a read-only query runs against.
enum Source {
    Db(Box<Database>),
    Snapshot(Snapshot<memmap2::Mmap>),
}

impl Source {
    fn open(a: &SourceArgs, prefix: &str) -> Result<(Source, Vec<Token>)> {
        let tokens =
            parse_tokens(prefix).map_err(|m| Error::InvalidArgument(format!("--prefix: {m}")))?;
        let source = match (&a.db, &a.snapshot) {
            (Some(db), _) => Source::Db(Box::new(Database::open(db)?)),
            (None, Some(path)) => {
                let snap = Snapshot::open(path)?;
                snap.verify()?;
                Source::Snapshot(snap)
            }
            (None, None) => unreachable!("clap requires --db or --snapshot"),
        };
        source.with(|index, _| index.layout().check_prefix(&tokens))?;
        Ok((source, tokens))
    }

    /// Runs `f` with the index and a key lookup of one consistent view.
    fn with<T>(&self, f: impl FnOnce(&dyn SidIndex, &dyn Fn(ItemId) -> Option<String>) -> T) -> T {
        match self {
            Source::Db(db) => {
                let state = db.read();
                f(&state.index, &|id| state.key(id).map(str::to_string))
            }
            Source::Snapshot(s) => f(s, &|id| s.key(id).map(str::to_string)),
        }
    }
}

fn sid_json(index: &dyn SidIndex, key: Option<String>, id: ItemId) -> Value {
    let (sid, weights) = index.sid(id).unwrap_or((&[], &[]));
    json!({ "key": key, "sid": format_tokens(sid), "weights": weights })
}

#[derive(clap::Args, Debug)]
pub struct LookupArgs {
    #[command(flatten)]
    db: SourceArgs,
    /// Comma-separated prefix tokens, e.g. `3,17` (`-` is the empty token).
    #[arg(long, allow_hyphen_values = true)]
    prefix: String,
    /// Items to list at most.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Keep only items whose metadata matches this tantivy query, e.g.
    /// `brand:opi AND price:[0 TO 20]` (needs metadata: see `adasid meta`).
    #[arg(long)]
    filter: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct NextArgs {
    #[command(flatten)]
    db: SourceArgs,
    /// Comma-separated prefix tokens (may be empty: `--prefix ''`).
    #[arg(long, allow_hyphen_values = true)]
    prefix: String,
}

#[derive(clap::Args, Debug)]
pub struct SimilarArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Key of the query item.
    #[arg(long)]
    item: String,
    /// Candidates to return.
    #[arg(long, default_value_t = 100)]
    k: usize,
    /// Ranking: prefix backoff or weighted position overlap.
    #[arg(long, value_enum, default_value_t = Mode::Prefix)]
    mode: Mode,
}

/// JSON of one item: key, full SID, routing weights.
pub(crate) fn item_json(state: &State, id: ItemId) -> Value {
    let (sid, weights) = state.index.sid(id).expect("listed items are indexed");
    json!({ "key": state.key(id), "sid": format_tokens(sid), "weights": weights })
}

pub fn lookup(a: LookupArgs) -> Result<()> {
    let (source, prefix) = Source::open(&a.db, &a.prefix)?;
    let found = match (&source, &a.filter) {
        (Source::Db(db), filter) => {
            if filter.is_some() && db.filters().is_none() {
                return Err(Error::InvalidArgument(format!(
                    "{} has no item metadata to filter on: add it with `adasid meta --db {0} --file meta.jsonl`",
                    db.path().display()
                )));
            }
            db.search(&prefix, filter.as_deref())?
        }
        (Source::Snapshot(_), Some(_)) => {
            return Err(Error::InvalidArgument(
                "--filter needs --db: the metadata index lives in the database folder".into(),
            ));
        }
        (Source::Snapshot(s), None) => s.items(&prefix).map_or(Vec::new(), |p| p.to_sorted_vec()),
    };
    let count = found.len() as u64;
    let items: Vec<Value> = source.with(|index, key| {
        found
            .iter()
            .take(a.limit)
            .filter(|&&id| index.contains(id))
            .map(|&id| sid_json(index, key(id), id))
            .collect()
    });
    let value = json!({ "prefix": format_tokens(&prefix), "filter": a.filter, "count": count, "items": items });
    emit(a.db.json, &value, || {
        let filtered = a
            .filter
            .as_ref()
            .map_or(String::new(), |f| format!(" matching '{f}'"));
        let mut out = format!(
            "{count} items under prefix [{}]{filtered}\n",
            format_tokens(&prefix)
        );
        for v in &items {
            out += &format!(
                "  {:<24} {}\n",
                v["key"].as_str().unwrap_or(""),
                v["sid"].as_str().unwrap_or("")
            );
        }
        if count as usize > items.len() {
            out += &format!(
                "  ... {} more (raise --limit)\n",
                count as usize - items.len()
            );
        }
        out
    });
    Ok(())
}

pub fn next(a: NextArgs) -> Result<()> {
    let (source, prefix) = Source::open(&a.db, &a.prefix)?;
    let next: Option<Vec<Token>> =
        source.with(|index, _| index.next_tokens(&prefix).map(<[Token]>::to_vec));
    let valid = next.is_some();
    let tokens = next.as_deref().unwrap_or(&[]);
    let value = json!({
        "prefix": format_tokens(&prefix),
        "valid": valid,
        "next_tokens": format_tokens(tokens),
        "count": tokens.len(),
    });
    emit(a.db.json, &value, || {
        if valid {
            format!(
                "{} valid next tokens after [{}]: {}\n",
                tokens.len(),
                format_tokens(&prefix),
                format_tokens(tokens)
            )
        } else {
            format!("no item has the prefix [{}]\n", format_tokens(&prefix))
        }
    });
    Ok(())
}

pub fn similar(a: SimilarArgs) -> Result<()> {
    let db = Database::open(&a.db.db)?;
    let state = db.read();
    let id = state.id(&a.item)?;
    let (sid, weights) = state.index.sid(id).expect("keyed items are indexed");
    let mode = match a.mode {
        Mode::Prefix => CandidateMode::Prefix,
        Mode::Overlap => CandidateMode::Overlap,
    };
    let query = CandidateQuery {
        tokens: sid,
        weights,
        k: a.k,
        mode,
        exclude: Some(id),
    };
    let rows = candidate_rows(&state, &query);
    let value = json!({ "item": a.item, "sid": format_tokens(sid), "mode": format!("{:?}", a.mode).to_lowercase(), "candidates": rows });
    emit(a.db.json, &value, || {
        let title = format!(
            "{} candidates for {} [{}]",
            rows.len(),
            a.item,
            format_tokens(sid)
        );
        candidate_table(&title, &rows)
    });
    Ok(())
}

/// JSON rows of ranked candidates: item fields plus shared depth and score.
pub(crate) fn candidate_rows(state: &State, query: &CandidateQuery<'_>) -> Vec<Value> {
    state
        .index
        .candidates(query)
        .iter()
        .map(|c| {
            let mut v = item_json(state, c.item);
            v["shared_depth"] = json!(c.shared_depth);
            v["score"] = json!(c.score);
            v
        })
        .collect()
}

/// Aligned text table of [`candidate_rows`] under a title line.
pub(crate) fn candidate_table(title: &str, rows: &[Value]) -> String {
    let mut out = format!(
        "{title}\n  {:<24} {:>5} {:>7}  sid\n",
        "key", "depth", "score"
    );
    for v in rows {
        out += &format!(
            "  {:<24} {:>5} {:>7.3}  {}\n",
            v["key"].as_str().unwrap_or(""),
            v["shared_depth"].as_u64().unwrap_or(0),
            v["score"].as_f64().unwrap_or(0.0),
            v["sid"].as_str().unwrap_or("")
        );
    }
    out
}
