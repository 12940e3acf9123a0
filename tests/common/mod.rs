//! Helpers shared by the command-line and training tests.
#![allow(dead_code)]

use std::process::Command;

use adasid::data::catalog::{CatalogSpec, generate};
use adasid::data::embeddings::Dataset;
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
