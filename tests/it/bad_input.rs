//! Malformed inputs across the commands: each fails with a non-zero exit
//! and a message that names the file and line or the argument at fault, and
//! leaves the database byte for byte as it was (store, metadata index and
//! published view).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::tree_bytes;

/// A database of five items with metadata, and the folder the case files go in.
fn setup(dir: &Path) -> PathBuf {
    let tokens = dir.join("t.tsv");
    std::fs::write(
        &tokens,
        "a\t3,17,5,1\t0.5\nb\t3,17,9,-\t0\nc\t3,4,5,1\t0.25\nd\t8,17,5,1\t1\ne\t3,17,5,1\t0.75\n",
    )
    .unwrap();
    let db = dir.join("db");
    let ok = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_adasid"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (d, t) = (db.to_str().unwrap(), tokens.to_str().unwrap());
    ok(&[
        "ingest-tokens",
        "--db",
        d,
        "--tokens",
        t,
        "--codebook-size",
        "32",
    ]);
    let meta = dir.join("m.jsonl");
    std::fs::write(
        &meta,
        "{\"asin\":\"a\",\"title\":\"red lipstick\",\"brand\":\"opi\",\"price\":5}\n\
         {\"asin\":\"b\",\"title\":\"blue nail\",\"brand\":\"essie\",\"price\":12}\n",
    )
    .unwrap();
    ok(&["meta", "--db", d, "--file", meta.to_str().unwrap()]);
    // A data folder of the same items, for the model commands.
    std::fs::write(dir.join("items.txt"), "a\nb\nc\nd\ne\n").unwrap();
    std::fs::write(dir.join("sequences.tsv"), "0\t0 1 2 3 4\n1\t4 3 2 1 0\n").unwrap();
    db
}

/// A case: a file to write first (name, bytes), the arguments (`DB` and
/// `DIR` stand for the database and the case folder), what the message
/// must contain.
type Case = (
    Option<(&'static str, &'static [u8])>,
    &'static str,
    &'static str,
);

const CASES: &[Case] = &[
    // ingest-tokens: the file is checked line by line before any write
    (
        Some(("range.tsv", b"x\t1,2,3,1\t1\ny\t1,2,32,1\t1\n")),
        "ingest-tokens --db DB --tokens DIR/range.tsv",
        "range.tsv:2:",
    ),
    (
        Some(("levels.tsv", b"x\t1,2,3\t1\n")),
        "ingest-tokens --db DB --tokens DIR/levels.tsv",
        "levels.tsv:1: expected 4 tokens",
    ),
    (
        Some(("num.tsv", b"x\t1,2,z,1\t1\n")),
        "ingest-tokens --db DB --tokens DIR/num.tsv",
        "num.tsv:1:",
    ),
    (
        Some(("weight.tsv", b"x\t1,2,3,1\tx\n")),
        "ingest-tokens --db DB --tokens DIR/weight.tsv",
        "weight.tsv:1: 'x' is not a routing weight",
    ),
    (
        Some(("wcount.tsv", b"x\t1,2,3,1\t0.5,0.5\n")),
        "ingest-tokens --db DB --tokens DIR/wcount.tsv",
        "wcount.tsv:1:",
    ),
    (
        Some(("utf.tsv", b"x\xff\t1,2,3,1\t1\n")),
        "ingest-tokens --db DB --tokens DIR/utf.tsv",
        "utf.tsv:1: not valid UTF-8",
    ),
    (
        Some(("nokey.tsv", b"\t1,2,3,1\t1\n")),
        "ingest-tokens --db DB --tokens DIR/nokey.tsv",
        "nokey.tsv:1: empty item key",
    ),
    (
        Some(("empty0.tsv", b"x\t-,2,3,1\t1\n")),
        "ingest-tokens --db DB --tokens DIR/empty0.tsv",
        "empty0.tsv:1: position 0 cannot be empty",
    ),
    (
        Some(("dup.tsv", b"x\t1,2,3,1\t1\nx\t1,2,3,2\t1\n")),
        "ingest-tokens --db DB --tokens DIR/dup.tsv",
        "dup.tsv:2:",
    ),
    (
        Some(("none.tsv", b"")),
        "ingest-tokens --db DB --tokens DIR/none.tsv",
        "none.tsv:1:",
    ),
    (
        None,
        "ingest-tokens --db DB --tokens DIR/missing.tsv",
        "missing.tsv",
    ),
    (
        Some(("ok.tsv", b"x\t1,2,3,1\t1\n")),
        "ingest-tokens --db DB --tokens DIR/ok.tsv --codebook-size 16",
        "does not match the database",
    ),
    (
        Some(("ok2.tsv", b"x\t1,2,3,1\t1\n")),
        "ingest-tokens --db DB --tokens DIR/ok2.tsv --batch 0",
        "--batch",
    ),
    // meta
    (
        Some(("bad.jsonl", b"{\"asin\":\"a\"}\n{bad\n")),
        "meta --db DB --file DIR/bad.jsonl",
        "bad.jsonl:2: not a JSON object",
    ),
    (
        Some(("arr.jsonl", b"[1,2]\n")),
        "meta --db DB --file DIR/arr.jsonl",
        "arr.jsonl:1: not a JSON object",
    ),
    (None, "meta --db DB --file DIR/nope.jsonl", "nope.jsonl"),
    // queries
    (None, "lookup --db DB --prefix 3,99", "out of range"),
    (None, "lookup --db DB --prefix 3,x", "not a token"),
    (
        None,
        "lookup --db DB --prefix 3 --filter brand:(",
        "filter 'brand:('",
    ),
    (None, "lookup --db DB --prefix 3 --limit abc", "--limit"),
    (
        None,
        "next --db DB --prefix 1,2,3,4,5,6",
        "prefix has 6 tokens",
    ),
    (
        None,
        "similar --db DB --item nope",
        "unknown item key 'nope'",
    ),
    (None, "similar --db DB --item a --mode bogus", "--mode"),
    (
        None,
        "lookup --snapshot DIR --prefix 3",
        "is a folder, not a snapshot file",
    ),
    // recommend
    (
        None,
        "recommend --db DB --history a --k 0",
        "--k must be at least 1",
    ),
    (
        None,
        "recommend --db DB --history ,",
        "--history names no item",
    ),
    (
        None,
        "recommend --db DB --history a",
        "run `adasid gen-train",
    ),
    (
        None,
        "recommend --db DB --history a --device cuda:0",
        "--device cuda:0",
    ),
    // export and snapshot
    (None, "export --db DB --format bogus", "--format"),
    (
        None,
        "export --db DB --out DIR/no/such/folder.tsv",
        "folder.tsv",
    ),
    (
        None,
        "snapshot --db DB --out DB/db",
        "inside the database folder",
    ),
    (None, "snapshot --db DB --out DIR/no/such/x.snap", "x.snap"),
    // models and data
    (None, "stats --db DIR/nodb", "no adasid database at"),
    (
        None,
        "gen-train --db DB --data DIR/nodata",
        "nodata/items.txt",
    ),
    (
        Some(("bad.toml", b"epochs = \"x\"\n")),
        "gen-train --db DB --data DIR --config DIR/bad.toml",
        "bad.toml: TOML parse error at line 1",
    ),
    (
        Some(("unknown.toml", b"nonsense = 3\n")),
        "gen-train --db DB --data DIR --config DIR/unknown.toml",
        "unknown field `nonsense`",
    ),
    (
        None,
        "gen-train --db DB --data DIR --retriever bogus",
        "--retriever",
    ),
    (
        None,
        "gen-eval --db DB --data DIR",
        "run `adasid gen-train` first",
    ),
    (None, "eval --db DB --data DIR/nodata", "nodata/items.txt"),
    (None, "encode --db DB --data DIR", "holds no trained model"),
    (None, "train --db DB --data DIR/nodata", "already exists"),
    (None, "demo --items 0", "--items must be at least 2"),
];

#[test]
fn malformed_inputs_fail_with_where_and_leave_the_database_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let db = setup(dir.path());
    let before = tree_bytes(&db);
    let (d, folder) = (db.to_str().unwrap(), dir.path().to_str().unwrap());
    for (file, args, want) in CASES {
        if let Some((name, bytes)) = file {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let args: Vec<String> = args
            .split(' ')
            .map(|a| a.replace("DB", d).replace("DIR", folder))
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_adasid"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(out.stdout.is_empty(), "{args:?}: errors go to stderr only");
        assert!(err.contains(want), "{args:?}: want '{want}' in: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(tree_bytes(&db) == before, "{args:?} changed the database");
    }
    assert!(CASES.len() >= 30);
}
