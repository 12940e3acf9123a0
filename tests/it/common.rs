//! Helpers shared by the command-line and training tests.
#![allow(dead_code)]

use std::process::Command;

use adasid::Token;
use adasid::data::catalog::{CatalogSpec, generate};
use adasid::data::embeddings::Dataset;
use adasid::decode::StepScorer;
use serde_json::Value;

/// Runs the binary: (success, stdout, stderr).
pub fn adasid(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_adasid"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs the binary, which must succeed, and parses its one JSON object.
pub fn json(args: &[&str]) -> Value {
    let (ok, out, err) = adasid(args);
    assert!(ok, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

/// A small synthetic catalogue, ten items per topic.
pub fn catalog(items: usize, seed: u64) -> Dataset {
    generate(&CatalogSpec {
        items,
        topics: items / 10,
        content_dims: vec![24, 16],
        behavior_dim: 12,
        seed,
    })
}

/// Log-probabilities from a hash of (prefix, column): any fixed function of
/// the prefix is a valid scorer.
pub struct HashScorer {
    pub seed: u64,
    pub vocab: usize,
}

impl HashScorer {
    pub fn logit(&self, prefix: &[Token], column: usize) -> f32 {
        let mut h = self.seed ^ 0x9e37_79b9_7f4a_7c15;
        for &t in prefix.iter().chain(std::iter::once(&(column as Token))) {
            h = (h ^ t as u64).wrapping_mul(0x0100_0000_01b3);
            h ^= h >> 29;
        }
        -((h % 10_000) as f32) / 1000.0
    }
}

impl StepScorer for HashScorer {
    fn score(
        &mut self,
        tokens: &[Token],
        depth: usize,
        beams: usize,
        out: &mut [f32],
    ) -> adasid::Result<()> {
        for b in 0..beams {
            let prefix = &tokens[b * depth..(b + 1) * depth];
            for c in 0..self.vocab {
                out[b * self.vocab + c] = self.logit(prefix, c);
            }
        }
        Ok(())
    }
}

/// The text form (`3,17,-`) of a SID printed as JSON (numbers, `null` for
/// the empty token).
pub fn sid_text(v: &Value) -> String {
    let parts: Vec<String> = v
        .as_array()
        .expect("a SID is a JSON array")
        .iter()
        .map(|t| t.as_u64().map_or("-".to_string(), |n| n.to_string()))
        .collect();
    parts.join(",")
}

/// Every file under `path` with its bytes, sorted by path.
pub fn tree_bytes(path: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(path).unwrap() {
        let p = e.unwrap().path();
        match p.is_dir() {
            true => out.extend(tree_bytes(&p)),
            false => out.push((p.clone(), std::fs::read(&p).unwrap())),
        }
    }
    out.sort();
    out
}

/// Kills per write path in the crash tests: `ADASID_CRASH_TRIALS`, or
/// `default` (a few, for every test run; the long run uses 100 or more).
pub fn trials(default: usize) -> usize {
    std::env::var("ADASID_CRASH_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(default)
}

/// Copies the folder `from` to `to`, subfolders included.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        match e.file_type().unwrap().is_dir() {
            true => copy_dir(&e.path(), &target),
            false => {
                std::fs::copy(e.path(), target).unwrap();
            }
        }
    }
}
