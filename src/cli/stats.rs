use serde_json::json;

use super::{DbArgs, emit};
use adasid::database::Database;
use adasid::error::Result;
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
    let db = Database::open(&a.db.db)?;
    let stats = index_stats(&db.read().index);
    let bytes = db.size_on_disk()?;
    let mut value = json!(stats);
    value["bytes_on_disk"] = json!(bytes);
    emit(a.db.json, &value, || {
        format!("{}bytes on disk {bytes}\n", render(&stats))
    });
    Ok(())
}
