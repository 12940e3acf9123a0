use serde_json::{Value, json};

use super::{DbArgs, Mode, emit};
use crate::database::{Database, State};
use crate::error::{Error, Result};
use crate::index::{CandidateMode, CandidateQuery, ItemId};
use crate::sid::{Token, format_tokens, parse_tokens};

#[derive(clap::Args, Debug)]
pub struct LookupArgs {
    #[command(flatten)]
    db: DbArgs,
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
    db: DbArgs,
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

fn open_prefix(db: &DbArgs, prefix: &str) -> Result<(Database, Vec<Token>)> {
    let tokens =
        parse_tokens(prefix).map_err(|m| Error::InvalidArgument(format!("--prefix: {m}")))?;
    let db = Database::open(&db.db)?;
    db.layout().check_prefix(&tokens)?;
    Ok((db, tokens))
}

/// JSON of one item: key, full SID, routing weights.
pub(crate) fn item_json(state: &State, id: ItemId) -> Value {
    let (sid, weights) = state.index.sid(id).expect("listed items are indexed");
    json!({ "key": state.key(id), "sid": format_tokens(sid), "weights": weights })
}

pub fn lookup(a: LookupArgs) -> Result<()> {
    let (db, prefix) = open_prefix(&a.db, &a.prefix)?;
    if a.filter.is_some() && db.filters().is_none() {
        return Err(Error::InvalidArgument(format!(
            "{} has no item metadata to filter on: add it with `adasid meta --db {0} --file meta.jsonl`",
            a.db.db.display()
        )));
    }
    let found = db.search(&prefix, a.filter.as_deref())?;
    let count = found.len() as u64;
    let state = db.read();
    let items: Vec<Value> = found
        .iter()
        .take(a.limit)
        .filter(|&&id| state.index.contains(id))
        .map(|&id| item_json(&state, id))
        .collect();
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
    let (db, prefix) = open_prefix(&a.db, &a.prefix)?;
    let state = db.read();
    let next = state.index.next_tokens(&prefix);
    let valid = next.is_some();
    let tokens = next.unwrap_or(&[]);
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
