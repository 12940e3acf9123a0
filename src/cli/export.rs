use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use clap::ValueEnum;
use serde_json::{Value, json};

use adasid::data::token_index;
use adasid::data::tokens::header;
use adasid::database::Reader;
use adasid::error::{Error, Result};
use adasid::sid::{SidLayout, Token, format_tokens};

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum Format {
    /// `key<TAB>full SID<TAB>weights` with a layout header; `ingest-tokens` reads it back.
    Tsv,
    /// One JSON object: layout and each item's full SID and routing weights.
    Json,
    /// `{"key": ["<a_12>", "<b_7>", ...]}` as Python generative-retrieval code
    /// writes its `*.index.json` (position letter, then the token; a masked
    /// behavior SID is token K); `ingest-tokens` reads it back.
    Tokens,
}

/// What names each item in the output.
#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum KeyBy {
    /// The item's key.
    Key,
    /// Its row: 0, 1, ... in id order, which is the order items were first
    /// written (the lines of `items.txt` for a trained database, of the file
    /// for an ingested one), as LETTER, LC-Rec and MiniOneRec key items.
    Row,
}

/// Which items carry their disambiguation token in the tokens format.
#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
pub enum Disambiguation {
    /// Only items that share all semantic tokens with another item.
    Collisions,
    /// Every item.
    Always,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Tsv)]
    format: Format,
    /// The same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Name items by key or by row.
    #[arg(long, value_enum, default_value_t = KeyBy::Key)]
    key_by: KeyBy,
    /// Which items get a disambiguation token in `--format tokens` (the other
    /// formats always write full SIDs).
    #[arg(long, value_enum, default_value_t = Disambiguation::Collisions)]
    disambiguation: Disambiguation,
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The tokens format's names of a SID's tokens (`<a_12>`, ...).
fn token_strings(layout: &SidLayout, sid: &[Token]) -> Result<Vec<String>> {
    sid.iter()
        .enumerate()
        .map(|(pos, &t)| {
            token_index::token_name(pos, layout.spelling(pos, t)).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "--format tokens names positions a..z; SIDs here have {} tokens",
                    sid.len()
                ))
            })
        })
        .collect()
}

pub fn run(a: Args) -> Result<()> {
    let format = if a.json { Format::Json } else { a.format };
    let reader = Reader::open(&a.db)?;
    let layout = reader.layout();
    let view = reader.view();
    let state = view.get();
    // In id order, whichever view answers (a snapshot lists by SID).
    let items = state
        .items(&[])
        .map(|p| p.to_sorted_vec())
        .unwrap_or_default();
    let rows = items.iter().enumerate().map(|(row, &id)| {
        let (sid, weights) = state.sid(id).expect("listed");
        let key = match a.key_by {
            KeyBy::Key => state.key(id).expect("keyed").to_string(),
            KeyBy::Row => row.to_string(),
        };
        (key, sid, weights)
    });
    let mut sink = Sink::new(a.out.as_deref())?;
    let result = (|| -> Result<()> {
        match format {
            Format::Tsv => {
                sink.text.push_str(&header(&layout));
                sink.text.push('\n');
                for (key, sid, weights) in rows {
                    let t = &mut sink.text;
                    let _ = write!(t, "{key}\t{}", format_tokens(sid));
                    for (i, w) in weights.iter().enumerate() {
                        let _ = write!(t, "{}{w}", if i == 0 { '\t' } else { ',' });
                    }
                    t.push('\n');
                    sink.step()?;
                }
            }
            Format::Json => {
                // Written piece by piece to keep id order (a JSON map sorts keys).
                let head = json!({ "levels": layout.levels, "k": layout.codebook_size, "behavior": layout.behavior });
                let _ = write!(sink.text, "{{\"layout\":{head},\"items\":{{");
                for (i, (key, sid, weights)) in rows.enumerate() {
                    let item = json!({ "sid": super::tokens_json(sid), "weights": weights });
                    let sep = if i > 0 { "," } else { "" };
                    let _ = write!(sink.text, "{sep}{}:{item}", Value::from(key));
                    sink.step()?;
                }
                sink.text.push_str("}}\n");
            }
            Format::Tokens => {
                let semantic = layout.levels as usize;
                token_index::open(&mut sink.text);
                for (i, (key, sid, _)) in rows.enumerate() {
                    let keep = a.disambiguation == Disambiguation::Always
                        || state.items(&sid[..semantic]).is_some_and(|p| p.len() > 1);
                    let shown = if keep { sid } else { &sid[..semantic] };
                    let names = token_strings(&layout, shown)?;
                    token_index::entry(&mut sink.text, i == 0, &key, &names);
                    sink.step()?;
                }
                token_index::close(&mut sink.text);
            }
        }
        Ok(())
    })();
    sink.finish(result)
}

/// Where the export goes, a megabyte at a time, so memory does not grow
/// with the database: a file, written under a temporary name beside it and
/// renamed into place once whole (a failed export leaves no partial file),
/// or stdout (a reader that closes the pipe ends the export quietly).
struct Sink {
    text: String,
    out: Out,
}

enum Out {
    File {
        path: PathBuf,
        temp: PathBuf,
        file: std::io::BufWriter<std::fs::File>,
    },
    Stdout {
        closed: bool,
    },
}

impl Sink {
    fn new(path: Option<&std::path::Path>) -> Result<Sink> {
        let out = match path {
            None => Out::Stdout { closed: false },
            Some(path) => {
                let name = path
                    .file_name()
                    .map_or("export".into(), |n| n.to_string_lossy());
                let temp = path.with_file_name(format!(".{name}.{}.partial", std::process::id()));
                let file = std::fs::File::create(&temp).map_err(|e| Error::io(&temp, e))?;
                Out::File {
                    path: path.to_path_buf(),
                    temp,
                    file: std::io::BufWriter::new(file),
                }
            }
        };
        Ok(Sink {
            text: String::new(),
            out,
        })
    }

    /// Writes what has gathered once it passes a megabyte.
    fn step(&mut self) -> Result<()> {
        match self.text.len() >= 1 << 20 {
            true => self.write_out(),
            false => Ok(()),
        }
    }

    fn write_out(&mut self) -> Result<()> {
        let bytes = self.text.as_bytes();
        match &mut self.out {
            Out::File { temp, file, .. } => {
                file.write_all(bytes).map_err(|e| Error::io(&*temp, e))?
            }
            Out::Stdout { closed: true } => {}
            Out::Stdout { closed } => {
                let mut out = std::io::stdout().lock();
                match out.write_all(bytes).and_then(|()| out.flush()) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => *closed = true,
                    other => other.map_err(|e| Error::io(std::path::Path::new("stdout"), e))?,
                }
            }
        }
        self.text.clear();
        Ok(())
    }

    /// Ends the export: on success the rest is written and a file renamed
    /// into place; on failure a file's temporary is removed.
    fn finish(mut self, result: Result<()>) -> Result<()> {
        let result = result.and_then(|()| self.write_out());
        match self.out {
            Out::File { path, temp, file } => {
                let done = result.and_then(|()| {
                    let file = file
                        .into_inner()
                        .map_err(|e| Error::io(&temp, e.into_error()))?;
                    file.sync_all().map_err(|e| Error::io(&temp, e))?;
                    std::fs::rename(&temp, &path).map_err(|e| Error::io(&path, e))
                });
                if done.is_err() {
                    let _ = std::fs::remove_file(&temp);
                }
                done
            }
            Out::Stdout { .. } => result,
        }
    }
}
