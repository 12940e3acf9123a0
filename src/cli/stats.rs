use serde_json::json;

use super::{DbArgs, emit};
use adasid::database::Reader;
use adasid::error::{Error, Result};
use adasid::stats::{IndexStats, index_stats};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    db: DbArgs,
}

/// Human table of index figures, shared with `demo`.
pub(crate) fn render(s: &IndexStats) -> String {
    let mut out = format!(
        "items {}  levels {} (+1 disambiguation)  K {}  behavior positions {}\n",
        s.items, s.levels, s.codebook_size, s.behavior_positions
    );
    out += &format!(
        "collision rate before disambiguation {:.4}\n",
        s.collision_rate
    );
    out += "  pos  kind      utilisation  entropy(bits)  masked\n";
    for p in &s.positions {
        out += &format!(
            "  {:>3}  {:<8}  {:>11.3}  {:>13.3}  {:>6.3}\n",
            p.position,
            if p.behavior { "behavior" } else { "content" },
            p.utilisation,
            p.entropy_bits,
            p.masked_share
        );
    }
    out += &format!("distinct prefixes by length: {:?}\n", s.prefixes_per_length);
    out
}

pub fn run(a: Args) -> Result<()> {
    let reader = Reader::open(&a.db.db)?;
    let stats = index_stats(reader.view().get());
    let bytes = folder_bytes(&a.db.db)?;
    let mut value = json!(stats);
    value["bytes_on_disk"] = json!(bytes);
    emit(a.db.json, &value, || {
        format!("{}bytes on disk {bytes}\n", render(&stats))
    });
    Ok(())
}

/// Bytes of every file under `dir`: the store, the metadata index and the
/// published view alike (what the database takes on its disk). A file a
/// writer removes meanwhile (an old publication) counts as gone.
fn folder_bytes(dir: &std::path::Path) -> Result<u64> {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let entries = match std::fs::read_dir(dir) {
        Err(e) if gone(&e) => return Ok(0),
        other => other.map_err(|e| Error::io(dir, e))?,
    };
    let mut total = 0;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        total += match entry.metadata() {
            Err(e) if gone(&e) => 0,
            Err(e) => return Err(Error::io(entry.path(), e)),
            Ok(m) if m.is_dir() => folder_bytes(&entry.path())?,
            Ok(m) => m.len(),
        };
    }
    Ok(total)
}
