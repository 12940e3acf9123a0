use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use super::progress::Progress;
use super::repeats::KeyHashes;
use super::{DbArgs, emit};
use adasid::data::token_index;
use adasid::data::tokens::{self, TokenLine, TokenReader};
use adasid::database::{Database, Published};
use adasid::error::{Error, Result};
use adasid::{SidLayout, ValidItem, WriteReport};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    db: DbArgs,
    /// Token file: `key<TAB>t1,t2,...[<TAB>w1,w2,...]` per line (`-` or K is the masked
    /// behavior token), or a JSON object `{"key": ["<a_12>", "<b_7>", ...], ...}` as
    /// `export --format tokens` and Python generative-retrieval code write it.
    #[arg(long)]
    tokens: PathBuf,
    /// Codebook size K, required when the database does not exist yet.
    #[arg(long = "codebook-size", alias = "k")]
    k: Option<u32>,
    /// Semantic levels of a new database; default: the fewest tokens a line of
    /// the first batch has (a line with one more carries its disambiguation counter).
    #[arg(long)]
    levels: Option<u32>,
    /// Behavior positions (the last ones) of a new database; default: the weight count of the first line
    /// (none in a JSON token index).
    #[arg(long)]
    behavior: Option<u32>,
    /// Lines per commit: a longer file is checked whole first, then committed a batch at a time.
    #[arg(long, default_value_t = 1_000_000)]
    batch: usize,
}

pub fn run(a: Args) -> Result<()> {
    if a.batch == 0 {
        return Err(Error::InvalidArgument("--batch must be at least 1".into()));
    }
    let start = Instant::now();
    let file = a.tokens.display().to_string();
    let size = std::fs::metadata(&a.tokens)
        .map_err(|e| Error::io(&a.tokens, e))?
        .len();
    let mut reader = Source::open(&a.tokens, &file, size)?;
    let first = first_batch(&file, &mut reader, a.batch)?;
    // The layout comes from the published view when there is one, so a bad
    // file fails before the store is opened (an open writes to it). The
    // store is opened once: an open rebuilds the index from every record.
    let exists = Database::exists(&a.db.db);
    let (mut db, layout) = match (exists, Published::layout_at(&a.db.db)) {
        (false, _) => (None, new_layout(&a, &first)?),
        (true, Some(layout)) => (None, agreed_layout(&a, layout)?),
        (true, None) => {
            let db = Database::open(&a.db.db)?;
            let layout = agreed_layout(&a, db.layout())?;
            (Some(db), layout)
        }
    };
    let progress = Progress::new("ingest-tokens");
    let mut open_store = || -> Result<Option<Database>> {
        match (db.take(), exists) {
            (None, true) => {
                let db = Database::open(&a.db.db)?;
                if db.layout() != layout {
                    return Err(Error::DataCorruption {
                        what: "published view".into(),
                        detail: format!(
                            "layout {:?} differs from the store's {:?}",
                            layout,
                            db.layout()
                        ),
                    });
                }
                Ok(Some(db))
            }
            (db, _) => Ok(db),
        }
    };
    let (db, report, batches) = match reader.next_batch(1)? {
        None => {
            // One batch: the parser has refused any key given twice.
            let items = tokens::validate(&file, first, &layout)?;
            commit_one(&a, items, layout, open_store()?)?
        }
        Some(next) => {
            let mut keys = KeyHashes::default();
            keys.add(&tokens::validate(&file, first, &layout)?);
            keys.add(&tokens::validate(&file, next, &layout)?);
            check_rest(&file, reader, &layout, &a, size, &progress, &mut keys)?;
            check_repeats(&a, &file, size, keys)?;
            commit_batches(&a, &file, layout, open_store()?, size, &progress)?
        }
    };
    progress.finish();
    let total = adasid::SidIndex::len(&*db.read());
    let seconds = start.elapsed().as_secs_f64();
    let value = json!({
        "inserted": report.inserted,
        "updated": report.updated,
        "items": total,
        "batches": batches,
        "seconds": seconds,
    });
    emit(a.db.json, &value, || {
        format!(
            "ingested {} new and {} updated items from {file} in {seconds:.2}s; the database holds {total} items\n",
            report.inserted, report.updated
        )
    });
    db.close_before_exit();
    Ok(())
}

/// A file of one batch: one atomic commit (creating the database with it).
fn commit_one(
    a: &Args,
    items: Vec<ValidItem>,
    layout: SidLayout,
    db: Option<Database>,
) -> Result<(Database, WriteReport, usize)> {
    let (db, report) = match db {
        Some(db) => {
            let report = db.upsert(&items)?;
            (db, report)
        }
        None => Database::create_with(&a.db.db, layout, &items, &[], Vec::new())?,
    };
    Ok((db, report, 1))
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(BufReader::with_capacity(1 << 20, f))
}

/// Where the items come from: a token file read a batch at a time, or a
/// JSON token index (one value, so parsed whole) handed out in batches.
enum Source {
    Lines(TokenReader<BufReader<std::fs::File>>),
    Index {
        entries: std::vec::IntoIter<TokenLine>,
        taken: usize,
        total: usize,
        size: u64,
    },
}

impl Source {
    /// Opens `path` (named `file` in errors, `size` bytes long), telling the
    /// two kinds apart by how the file starts.
    fn open(path: &Path, file: &str, size: u64) -> Result<Source> {
        let mut reader = open(path)?;
        let head = reader.fill_buf().map_err(|e| Error::io(path, e))?;
        if !token_index::is_token_index(head) {
            return Ok(Source::Lines(TokenReader::new(file, reader)));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let entries = token_index::parse_bytes(file, &bytes)?;
        Ok(Source::Index {
            total: entries.len(),
            entries: entries.into_iter(),
            taken: 0,
            size,
        })
    }

    /// The next up to `max` lines (or entries); `None` at the end.
    fn next_batch(&mut self, max: usize) -> Result<Option<Vec<TokenLine>>> {
        match self {
            Source::Lines(r) => r.next_batch(max),
            Source::Index { entries, taken, .. } => {
                let batch: Vec<TokenLine> = entries.take(max.max(1)).collect();
                *taken += batch.len();
                Ok((!batch.is_empty()).then_some(batch))
            }
        }
    }

    /// Lines (or entries) consumed so far.
    fn lines_read(&self) -> usize {
        match self {
            Source::Lines(r) => r.lines_read(),
            Source::Index { taken, .. } => *taken,
        }
    }

    /// Bytes consumed so far (for an index, in proportion to its entries).
    fn bytes_read(&self) -> u64 {
        match self {
            Source::Lines(r) => r.bytes_read(),
            Source::Index {
                taken, total, size, ..
            } => size * *taken as u64 / (*total).max(1) as u64,
        }
    }
}

/// The first batch that holds an item; an error when the file holds none.
fn first_batch(file: &str, reader: &mut Source, batch: usize) -> Result<Vec<TokenLine>> {
    loop {
        match reader.next_batch(batch)? {
            Some(lines) if lines.is_empty() => continue,
            Some(lines) => return Ok(lines),
            None => return Err(tokens::empty_file(file)),
        }
    }
}

/// `layout`, the existing database's, when `--codebook-size` and
/// `--behavior` (if given) agree with it.
fn agreed_layout(a: &Args, layout: SidLayout) -> Result<SidLayout> {
    let clash = |flag: &str, given: u32, has: u32| {
        Error::InvalidArgument(format!(
            "{flag} {given} does not match the database, which has {has}; leave it out for an existing database"
        ))
    };
    match (a.k, a.levels, a.behavior) {
        (Some(k), _, _) if k != layout.k() => Err(clash("--codebook-size", k, layout.k())),
        (_, Some(l), _) if l != layout.levels as u32 => {
            Err(clash("--levels", l, layout.levels as u32))
        }
        (_, _, Some(b)) if b != layout.behavior as u32 => {
            Err(clash("--behavior", b, layout.behavior as u32))
        }
        _ => Ok(layout),
    }
}

/// An exported token file names its layout in its header line; otherwise
/// `--codebook-size` and the first batch decide it ([`tokens::infer_layout`]).
fn new_layout(a: &Args, first: &[TokenLine]) -> Result<SidLayout> {
    // A header is short; a JSON token index may be one long line.
    let mut header = Vec::new();
    open(&a.tokens)?
        .take(4096)
        .read_until(b'\n', &mut header)
        .map_err(|e| Error::io(&a.tokens, e))?;
    match (
        tokens::header_layout(&String::from_utf8_lossy(&header)),
        a.k,
    ) {
        (Some(layout), None) => layout,
        (_, k) => {
            let k = k.ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{} does not exist yet: pass --codebook-size to create it",
                    a.db.db.display()
                ))
            })?;
            tokens::infer_layout(first, k, a.levels, a.behavior)
        }
    }
}

/// Parses and validates the rest of the file, keeping each key's hash, so
/// that a bad line or a repeated key anywhere fails the ingest before
/// anything is written.
fn check_rest(
    file: &str,
    mut reader: Source,
    layout: &SidLayout,
    a: &Args,
    size: u64,
    progress: &Progress,
    keys: &mut KeyHashes,
) -> Result<()> {
    while let Some(lines) = reader.next_batch(a.batch)? {
        keys.add(&tokens::validate(file, lines, layout)?);
        progress.step(mib(reader.bytes_read()), mib(size), "MiB checked");
    }
    Ok(())
}

/// Refuses a file that gives a key twice (naming both lines): where some
/// key hashes repeat, reads the file again for the lines with those hashes.
fn check_repeats(a: &Args, file: &str, size: u64, keys: KeyHashes) -> Result<()> {
    let repeated = keys.repeated();
    if repeated.is_empty() {
        return Ok(());
    }
    let mut reader = Source::open(&a.tokens, file, size)?;
    let mut lines = Vec::new();
    while let Some(batch) = reader.next_batch(a.batch)? {
        lines.extend(batch.into_iter().filter(|l| repeated.holds(&l.item.key)));
    }
    tokens::refuse_repeats(file, &lines)
}

fn mib(bytes: u64) -> usize {
    bytes.div_ceil(1 << 20) as usize
}

/// Commits the file a batch at a time (each batch atomic and durable),
/// publishing for readers in other processes once at the end (whether the
/// ingest ends well or not) rather than after every batch: until then they
/// read the database as it was, marked as lagging.
fn commit_batches(
    a: &Args,
    file: &str,
    layout: SidLayout,
    db: Option<Database>,
    size: u64,
    progress: &Progress,
) -> Result<(Database, WriteReport, usize)> {
    let mut db = db;
    if let Some(db) = &db {
        db.publish_each_commit(false);
    }
    let result = commit_each(a, file, layout, &mut db, size, progress);
    if let Some(db) = &db
        && let Err(e) = db.publish()
        && !a.db.json
    {
        eprintln!(
            "warning: the published view was not updated ({e}); readers in other processes \
             see the database as before this ingest until the next write"
        );
    }
    let (report, batches) = result?;
    let db = db.ok_or_else(|| tokens::empty_file(file))?;
    Ok((db, report, batches))
}

fn commit_each(
    a: &Args,
    file: &str,
    layout: SidLayout,
    db: &mut Option<Database>,
    size: u64,
    progress: &Progress,
) -> Result<(WriteReport, usize)> {
    // A new database is created with the first batch, so a failure there leaves none.
    let mut reader = Source::open(&a.tokens, file, size)?;
    let (mut report, mut batches) = (WriteReport::default(), 0);
    loop {
        let from = reader.lines_read() + 1;
        let Some(lines) = reader.next_batch(a.batch)? else {
            break;
        };
        let items = tokens::validate(file, lines, &layout)?;
        let committed = report.inserted + report.updated;
        let r = match &db {
            None => {
                let (created, r) =
                    Database::create_with(&a.db.db, layout, &items, &[], Vec::new())?;
                created.publish_each_commit(false);
                *db = Some(created);
                r
            }
            Some(db) => {
                // No key repeats in the file (checked before the first commit).
                db.upsert(&items).inspect_err(|_| {
                    if !a.db.json {
                        eprintln!(
                            "the {committed} items of the lines before line {from} were committed"
                        );
                    }
                })?
            }
        };
        report.inserted += r.inserted;
        report.updated += r.updated;
        batches += 1;
        let message = format!("MiB, {} items committed", report.inserted + report.updated);
        progress.step(mib(reader.bytes_read()), mib(size), &message);
    }
    Ok((report, batches))
}
