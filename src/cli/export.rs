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
            // Masked behavior tokens are written as K; the disambiguation
            // counter as it is (it may exceed K).
            let value = if layout.is_disambiguation(pos) {
                t as usize
            } else {
                layout.mask_bit(t)
            };
            token_index::token_name(pos, value).ok_or_else(|| {
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
    let mut rows = items.iter().enumerate().map(|(row, &id)| {
        let (sid, weights) = state.sid(id).expect("listed");
        let key = match a.key_by {
            KeyBy::Key => state.key(id).expect("keyed").to_string(),
            KeyBy::Row => row.to_string(),
        };
        (key, sid, weights)
    });
    let mut text = String::new();
    match format {
        Format::Tsv => {
            text += &header(&layout);
            text.push('\n');
            for (key, sid, weights) in rows {
                text += &format!("{key}\t{}", format_tokens(sid));
                if !weights.is_empty() {
                    let w: Vec<String> = weights.iter().map(|w| w.to_string()).collect();
                    text += &format!("\t{}", w.join(","));
                }
                text.push('\n');
            }
        }
        Format::Json => {
            // Written piece by piece to keep id order (a JSON map sorts keys).
            let head = json!({ "levels": layout.levels, "k": layout.codebook_size, "behavior": layout.behavior });
            text += &format!("{{\"layout\":{head},\"items\":{{");
            for (i, (key, sid, weights)) in rows.by_ref().enumerate() {
                let item = json!({ "sid": super::tokens_json(sid), "weights": weights });
                let sep = if i > 0 { "," } else { "" };
                text += &format!("{sep}{}:{item}", Value::from(key));
            }
            text += "}}\n";
        }
        Format::Tokens => {
            let semantic = layout.levels as usize;
            let entries = rows
                .map(|(key, sid, _)| {
                    let keep = a.disambiguation == Disambiguation::Always
                        || state.items(&sid[..semantic]).is_some_and(|p| p.len() > 1);
                    let shown = if keep { sid } else { &sid[..semantic] };
                    Ok((key, token_strings(&layout, shown)?))
                })
                .collect::<Result<Vec<_>>>()?;
            token_index::write(
                &mut text,
                entries.iter().map(|(k, n)| (k.as_str(), n.as_slice())),
            );
        }
    }
    match &a.out {
        Some(path) => std::fs::write(path, text).map_err(|e| Error::io(path, e)),
        None => {
            super::write_stdout(text.as_bytes());
            Ok(())
        }
    }
}
