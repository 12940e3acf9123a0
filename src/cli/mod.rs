//! The `adasid` command line: argument parsing and output only; every
//! operation is a library call. With `--json` each command prints exactly one
//! JSON object on stdout; errors go to stderr with a non-zero exit.

mod demo;
mod eval;
mod export;
mod generative;
mod ingest;
mod progress;
mod query;
mod ranking;
mod repeats;
mod serving;
mod stats;
mod train;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::Value;

use adasid::error::{Error, Result};

/// Embedded semantic-ID index: learn, store and serve SIDs for generative retrieval.
#[derive(Parser, Debug)]
#[command(name = "adasid", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build a database from synthetic SIDs and show what the index answers.
    Demo(demo::Args),
    /// Add or re-encode items from a token file (`key<TAB>t1,t2,...[<TAB>w1,...]`).
    IngestTokens(ingest::Args),
    /// Write every item's SID and routing weights (tsv, json, or Python token style).
    Export(export::Args),
    /// Items under a SID prefix.
    Lookup(query::LookupArgs),
    /// Write an immutable snapshot file of a database's index for serving.
    Snapshot(serving::SnapshotArgs),
    /// Attach item metadata (JSON lines) for `lookup --filter`.
    Meta(serving::MetaArgs),
    /// Valid next tokens after a SID prefix.
    Next(query::NextArgs),
    /// Candidates similar to an item (hierarchical prefix backoff or position overlap).
    Similar(query::SimilarArgs),
    /// Counts, codebook use and collisions of a database.
    Stats(stats::Args),
    /// Train ADA-SID on a data folder, store the model and every item's SID.
    Train(train::TrainArgs),
    /// Give new (or changed) items SIDs with a database's trained model.
    Encode(train::EncodeArgs),
    /// Quantisation and leave-one-out retrieval quality of a database's SIDs.
    Eval(eval::EvalArgs),
    /// Train every tokenizer and ablation on one data folder and tabulate them.
    Compare(eval::CompareArgs),
    /// Train the generative retriever on a database's SIDs and user sequences.
    GenTrain(generative::GenTrainArgs),
    /// Leave-one-out Recall/NDCG of the generative retriever (constrained beam search).
    GenEval(generative::GenEvalArgs),
    /// Items to recommend after a user's history (whichever retriever the database stores).
    Recommend(generative::RecommendArgs),
    /// AUC/GAUC of a DIN-style ranker with the database's SIDs (or item ids) as item features.
    RankEval(ranking::RankEvalArgs),
}

/// Ranking mode of `similar`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Mode {
    /// Longest shared prefix first.
    Prefix,
    /// Weighted number of shared positions.
    Overlap,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::IngestTokens(a) => ingest::run(a),
        Command::Export(a) => export::run(a),
        Command::Lookup(a) => query::lookup(a),
        Command::Next(a) => query::next(a),
        Command::Snapshot(a) => serving::snapshot(a),
        Command::Meta(a) => serving::meta(a),
        Command::Similar(a) => query::similar(a),
        Command::Stats(a) => stats::run(a),
        Command::Train(a) => train::train(a),
        Command::Encode(a) => train::encode(a),
        Command::Eval(a) => eval::eval(a),
        Command::Compare(a) => eval::compare(a),
        Command::GenTrain(a) => generative::train(a),
        Command::GenEval(a) => generative::eval(a),
        Command::Recommend(a) => generative::recommend(a),
        Command::RankEval(a) => ranking::rank_eval_cmd(a),
    }
}

/// Options every database command takes.
#[derive(clap::Args, Debug)]
struct DbArgs {
    /// Database folder.
    #[arg(long)]
    db: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// A SID or prefix as JSON: an array of token numbers, the empty token
/// ([`adasid::EMPTY`], a masked behavior SID) as `null`.
fn tokens_json(tokens: &[adasid::Token]) -> Value {
    tokens
        .iter()
        .map(|&t| match t {
            adasid::EMPTY => Value::Null,
            t => Value::from(t),
        })
        .collect()
}

/// The text form (`3,17,-`) of a [`tokens_json`] array.
fn tokens_text(tokens: &Value) -> String {
    let parts: Vec<String> = tokens
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| t.as_u64().map_or("-".into(), |n| n.to_string()))
                .collect()
        })
        .unwrap_or_default();
    parts.join(",")
}

/// Prints `value` as one JSON line, or the human text.
fn emit(json: bool, value: &Value, human: impl FnOnce() -> String) {
    let text = match json {
        true => format!("{value}\n"),
        false => human(),
    };
    write_stdout(text.as_bytes());
}

/// Writes to stdout; a reader that went away (`adasid ... | head`) ends
/// the output quietly instead of as an error.
fn write_stdout(bytes: &[u8]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: stdout: {e}");
        std::process::exit(1);
    }
}

/// An error as one JSON object for `--json`:
/// `{"error": {"kind", "input", "message"}}`, `kind` naming the [`Error`]
/// variant and `input` whether it is the caller's to fix.
pub fn error_json(e: &Error) -> Value {
    serde_json::json!({ "error": { "kind": e.kind(), "input": e.is_input(), "message": e.to_string() } })
}

/// Parses `cpu` or `cuda:N`.
pub fn parse_device(spec: &str) -> Result<candle_core::Device> {
    match spec {
        "cpu" => Ok(candle_core::Device::Cpu),
        s if s.starts_with("cuda") => {
            let n: usize = s
                .strip_prefix("cuda:")
                .unwrap_or("0")
                .parse()
                .map_err(|_| {
                    Error::InvalidArgument(format!("--device {s}: expected cpu or cuda:N"))
                })?;
            cuda_device(s, n)
        }
        s => Err(Error::InvalidArgument(format!(
            "--device {s}: expected cpu or cuda:N"
        ))),
    }
}

/// GPU `n`, or why there is none: a build without CUDA says how to make
/// one; a CUDA build (which opens the NVIDIA driver library on first use,
/// `scripts/cuda-build.sh`) on a machine without the driver says that.
fn cuda_device(spec: &str, n: usize) -> Result<candle_core::Device> {
    if !cfg!(feature = "cuda") {
        return Err(Error::InvalidArgument(format!(
            "--device {spec}: this adasid was built without CUDA (build one with \
             scripts/cuda-build.sh, or `cargo build --release --features cuda` where a CUDA \
             toolkit is installed)"
        )));
    }
    // cudarc panics when it cannot open libcuda; that panic is this
    // function's answer, so it is caught and not printed.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let made = std::panic::catch_unwind(|| candle_core::Device::new_cuda(n));
    std::panic::set_hook(hook);
    match made {
        Ok(Ok(device)) => Ok(device),
        Ok(Err(e)) => Err(Error::InvalidArgument(format!("--device {spec}: {e}"))),
        Err(_) => Err(Error::InvalidArgument(format!(
            "--device {spec}: no NVIDIA driver found (libcuda.so could not be loaded)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without the `cuda` feature a GPU is refused with how to build one;
    /// malformed specs are refused either way.
    #[test]
    fn device_specs() {
        assert!(matches!(parse_device("cpu"), Ok(candle_core::Device::Cpu)));
        for bad in ["gpu", "cuda:x", "cuda:-1"] {
            let e = parse_device(bad).unwrap_err().to_string();
            assert!(e.contains("expected cpu or cuda:N"), "{bad}: {e}");
        }
        #[cfg(not(feature = "cuda"))]
        {
            let e = parse_device("cuda:0").unwrap_err().to_string();
            assert!(
                e.contains("built without CUDA") && e.contains("cuda-build.sh"),
                "{e}"
            );
        }
    }
}
