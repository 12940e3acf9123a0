use std::path::PathBuf;

use clap::ValueEnum;
use serde_json::{Map, Value, json};

use adasid::data::tokens::header;
use adasid::database::Reader;
use adasid::error::{Error, Result};
use adasid::sid::{SidLayout, Token, format_tokens};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// `key<TAB>full SID<TAB>weights` with a layout header; `ingest-tokens` reads it back.
    Tsv,
    /// One JSON object: layout and each item's full SID and routing weights.
    Json,
    /// `{"key": ["<a_12>", "<b_7>", ...]}`, the token style of Python generative-retrieval code
    /// (position letter, then the token; a masked behavior SID is token K).
    Tokens,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Tsv)]
    format: Format,
    /// Write here instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn token_strings(layout: &SidLayout, sid: &[Token]) -> Vec<String> {
    sid.iter()
        .enumerate()
        .map(|(pos, &t)| {
            let letter = (b'a' + (pos % 26) as u8) as char;
            // Masked behavior tokens are written as K; the disambiguation
            // counter as it is (it may exceed K).
            let value = if layout.is_disambiguation(pos) {
                t as usize
            } else {
                layout.mask_bit(t)
            };
            format!("<{letter}_{value}>")
        })
        .collect()
}

pub fn run(a: Args) -> Result<()> {
    let reader = Reader::open(&a.db)?;
    let layout = reader.layout();
    let view = reader.view();
    let state = view.get();
    // In id order, whichever view answers (a snapshot lists by SID).
    let items = state
        .items(&[])
        .map(|p| p.to_sorted_vec())
        .unwrap_or_default();
    let mut text = String::new();
    match a.format {
        Format::Tsv => {
            text += &header(&layout);
            text.push('\n');
            for id in items {
                let (sid, weights) = state.sid(id).expect("listed");
                let key = state.key(id).expect("keyed");
                text += &format!("{key}\t{}", format_tokens(sid));
                if !weights.is_empty() {
                    let w: Vec<String> = weights.iter().map(|w| w.to_string()).collect();
                    text += &format!("\t{}", w.join(","));
                }
                text.push('\n');
            }
        }
        Format::Json | Format::Tokens => {
            let mut map = Map::new();
            for id in items {
                let (sid, weights) = state.sid(id).expect("listed");
                let key = state.key(id).expect("keyed").to_string();
                let v = match a.format {
                    Format::Tokens => json!(token_strings(&layout, sid)),
                    _ => json!({ "sid": super::tokens_json(sid), "weights": weights }),
                };
                map.insert(key, v);
            }
            let value = match a.format {
                Format::Tokens => Value::Object(map),
                _ => json!({
                    "layout": { "levels": layout.levels, "k": layout.codebook_size, "behavior": layout.behavior },
                    "items": map,
                }),
            };
            text = value.to_string();
            text.push('\n');
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
