use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{DbArgs, Mode, emit, tokens_json, tokens_text};
use adasid::database::Reader;
use adasid::error::{Error, Result};
use adasid::index::SidIndex;
use adasid::index::{CandidateMode, CandidateQuery, ItemId};
use adasid::sid::{Token, format_tokens, parse_tokens};
use adasid::snapshot::Snapshot;
use adasid::view::ReadView;

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

/// What a database (not a snapshot) adds to a view: filtering by metadata,
/// answered for the same view (in the store's read lock, or from the
/// metadata index that matches the published view).
struct Filtering<'a> {
    /// The database folder, for messages.
    path: &'a Path,
    /// Whether the database has a metadata index.
    has_metadata: bool,
    /// The items under a prefix whose metadata matches a query, ascending.
    search: Box<Search<'a>>,
}

type Search<'a> = dyn Fn(&[Token], &str) -> Result<Vec<ItemId>> + 'a;

/// Opens what `a` names (a database — its published view when that is
/// current or a writer holds the store, see [`Reader`] — or a snapshot
/// verified on open), checks `prefix` against its layout and runs `f` on
/// one consistent view. A `filter` is checked before anything is opened;
/// the store's metadata index is opened (and repaired, if it must be)
/// before the read lock is taken, since a repair waits for readers.
fn with_view<T>(
    a: &SourceArgs,
    prefix: &str,
    filter: Option<&str>,
    f: impl FnOnce(&dyn ReadView, Option<Filtering<'_>>, &[Token]) -> Result<T>,
) -> Result<T> {
    let tokens =
        parse_tokens(prefix).map_err(|m| Error::InvalidArgument(format!("--prefix: {m}")))?;
    if let Some(q) = filter {
        adasid::filter::check_query(q)?;
    }
    let run = |view: &dyn ReadView, db| {
        let prefix = view.layout().read_prefix(&tokens)?;
        f(view, db, &prefix)
    };
    match (&a.db, &a.snapshot) {
        (Some(path), _) => match Reader::open(path)? {
            Reader::Store(db) => {
                let has_metadata = filter.is_some() && db.filters()?.is_some();
                let state = db.read();
                let filtering = Filtering {
                    path,
                    has_metadata,
                    search: Box::new(|prefix, q| db.search_in(&state, prefix, Some(q))),
                };
                run(&*state, Some(filtering))
            }
            Reader::Published(p) => {
                let filters = match filter {
                    Some(_) => p.filters()?,
                    None => None,
                };
                let view = p.view();
                let filtering = Filtering {
                    path,
                    has_metadata: filters.is_some(),
                    search: Box::new(|prefix, q| {
                        let docs = filters.as_ref().expect("has metadata").matching(q)?;
                        Ok(view
                            .items(prefix)
                            .map_or(Vec::new(), |items| adasid::filter::intersect(items, &docs)))
                    }),
                };
                run(view, Some(filtering))
            }
        },
        (None, Some(path)) => {
            let snap = Snapshot::open(path)?;
            snap.verify()?;
            run(&snap, None)
        }
        (None, None) => unreachable!("clap requires --db or --snapshot"),
    }
}

#[derive(clap::Args, Debug)]
pub struct LookupArgs {
    #[command(flatten)]
    db: SourceArgs,
    /// Comma-separated prefix tokens, e.g. `3,17` (`-` or K is the masked behavior token).
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
    #[arg(long, alias = "count", default_value_t = 100)]
    k: usize,
    /// Ranking: prefix backoff or weighted position overlap.
    #[arg(long, value_enum, default_value_t = Mode::Prefix)]
    mode: Mode,
}

/// JSON of one item: key, full SID, routing weights.
pub(crate) fn item_json(view: &dyn ReadView, id: ItemId) -> Value {
    let (sid, weights) = view.sid(id).unwrap_or((&[], &[]));
    json!({ "key": view.key(id), "sid": tokens_json(sid), "weights": weights })
}

pub fn lookup(a: LookupArgs) -> Result<()> {
    let filter = a.filter.as_deref();
    let (prefix, count, items) = with_view(&a.db, &a.prefix, filter, |view, db, prefix| {
        let found = match (db, &a.filter) {
            (Some(f), Some(filter)) => {
                if !f.has_metadata {
                    return Err(Error::InvalidArgument(format!(
                        "{} has no item metadata to filter on: add it with `adasid meta --db {0} --file meta.jsonl`",
                        f.path.display()
                    )));
                }
                (f.search)(prefix, filter)?
            }
            (None, Some(_)) => {
                return Err(Error::InvalidArgument(
                    "--filter needs --db: the metadata index lives in the database folder".into(),
                ));
            }
            (_, None) => view.items(prefix).map_or(Vec::new(), |p| p.to_sorted_vec()),
        };
        let items: Vec<Value> = found
            .iter()
            .take(a.limit)
            .filter(|&&id| view.contains(id))
            .map(|&id| item_json(view, id))
            .collect();
        Ok((prefix.to_vec(), found.len(), items))
    })?;
    let value = json!({ "prefix": tokens_json(&prefix), "filter": a.filter, "count": count, "items": items });
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
                tokens_text(&v["sid"])
            );
        }
        if count > items.len() {
            out += &format!("  ... {} more (raise --limit)\n", count - items.len());
        }
        out
    });
    Ok(())
}

pub fn next(a: NextArgs) -> Result<()> {
    let (prefix, next) = with_view(&a.db, &a.prefix, None, |view, _, prefix| {
        Ok((
            prefix.to_vec(),
            view.next_tokens(prefix).map(std::borrow::Cow::into_owned),
        ))
    })?;
    let valid = next.is_some();
    let tokens = next.as_deref().unwrap_or(&[]);
    let value = json!({
        "prefix": tokens_json(&prefix),
        "valid": valid,
        "next_tokens": tokens_json(tokens),
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
    let reader = Reader::open(&a.db.db)?;
    let view = reader.view();
    let state = view.get();
    let id = state.id(&a.item)?;
    let (sid, weights) = state.sid(id).expect("keyed items are indexed");
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
    let rows = candidate_rows(state, &query);
    let value = json!({ "item": a.item, "sid": tokens_json(sid), "mode": format!("{:?}", a.mode).to_lowercase(), "candidates": rows });
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
pub(crate) fn candidate_rows(view: &dyn ReadView, query: &CandidateQuery<'_>) -> Vec<Value> {
    view.candidates(query)
        .iter()
        .map(|c| {
            let mut v = item_json(view, c.item);
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
            tokens_text(&v["sid"])
        );
    }
    out
}
