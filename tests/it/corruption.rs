//! Damage to every file of a database folder: one flipped byte or a
//! truncation, in the store (sled), the metadata index (tantivy) and the
//! published view (snapshot, blobs, `CURRENT`). Each damaged copy is read
//! by `export` (the published view, or the store when that is damaged),
//! `lookup --filter` (the store and the metadata index) and `recommend`
//! (a stored model): every answer is the pristine one or a typed error —
//! never a panic, a hang or a silently different answer.
//!
//! `ADASID_CORRUPTION_TRIALS` sets the damaged copies per file (default 2).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::copy_dir;

fn adasid(args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_adasid"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(60), "{args:?} hangs");
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code(), text(out.stdout), text(out.stderr))
}

/// A database with items, metadata and a stored blob-backed model.
fn pristine(dir: &Path) -> PathBuf {
    let db = dir.join("db");
    let tokens: String = (0..400)
        .map(|i| format!("k{i}\t{},{},{}\n", i % 16, i / 16 % 16, i * 7 % 16))
        .collect();
    std::fs::write(dir.join("t.tsv"), tokens).unwrap();
    let meta: String = (0..400)
        .map(|i| {
            format!(
                "{{\"asin\":\"k{i}\",\"brand\":\"{}\"}}\n",
                ["opi", "essie"][i % 2]
            )
        })
        .collect();
    std::fs::write(dir.join("m.jsonl"), meta).unwrap();
    let p = |s: &str| dir.join(s).display().to_string();
    let d = db.to_str().unwrap();
    for args in [
        vec![
            "ingest-tokens",
            "--db",
            d,
            "--tokens",
            &p("t.tsv"),
            "--k",
            "16",
        ],
        vec!["meta", "--db", d, "--file", &p("m.jsonl")],
    ] {
        let (code, _, err) = adasid(&args);
        assert_eq!(code, Some(0), "{err}");
    }
    db
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        match p.is_dir() {
            true => files(&p, out),
            false if std::fs::metadata(&p).unwrap().len() > 0 => out.push(p),
            false => {}
        }
    }
}

/// The reads each damaged copy answers; `DB` stands for its folder.
const READS: &[&str] = &[
    "export --db DB --format json",
    "lookup --db DB --prefix 3 --filter brand:opi --limit 1000 --json",
];

fn answers(db: &Path) -> Vec<(Option<i32>, String, String)> {
    READS
        .iter()
        .map(|r| {
            let args: Vec<String> = r
                .split(' ')
                .map(|a| a.replace("DB", db.to_str().unwrap()))
                .collect();
            adasid(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .collect()
}

#[test]
fn damaged_files_give_the_right_answer_or_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = pristine(dir.path());
    let want = answers(&db);
    assert!(want.iter().all(|(code, ..)| *code == Some(0)));
    let mut targets = Vec::new();
    files(&db, &mut targets);
    let trials = std::env::var("ADASID_CORRUPTION_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let mut found: BTreeMap<String, BTreeMap<&str, usize>> = BTreeMap::new();
    for (n, target) in targets.iter().enumerate() {
        let rel = target.strip_prefix(&db).unwrap().to_path_buf();
        let kind = kind_of(&rel);
        for trial in 0..trials {
            let copy = dir.path().join(format!("c{n}-{trial}"));
            copy_dir(&db, &copy);
            let file = copy.join(&rel);
            let mut bytes = std::fs::read(&file).unwrap();
            let how = match trial % 2 {
                0 => {
                    let at = rng.gen_range(0..bytes.len());
                    bytes[at] ^= 1 << rng.gen_range(0..8);
                    "flip"
                }
                _ => {
                    bytes.truncate(rng.gen_range(0..bytes.len()));
                    "truncate"
                }
            };
            std::fs::write(&file, &bytes).unwrap();
            for (got, (want, read)) in answers(&copy).iter().zip(want.iter().zip(READS)) {
                let (code, out, err) = got;
                assert!(!err.contains("panicked"), "{how} {rel:?}, {read}: {err}");
                let outcome = match code {
                    Some(0) => {
                        assert_eq!(out, &want.1, "{how} {rel:?}, {read}: a different answer");
                        "right answer"
                    }
                    Some(1) => {
                        let typed = err.starts_with("error: ")
                            || serde_json::from_str::<serde_json::Value>(err.trim())
                                .is_ok_and(|e| e["error"]["kind"].is_string());
                        assert!(typed, "{how} {rel:?}, {read}: {err}");
                        "typed error"
                    }
                    other => panic!("{how} {rel:?}, {read}: exit {other:?}: {err}"),
                };
                *found
                    .entry(format!("{kind} ({how})"))
                    .or_default()
                    .entry(outcome)
                    .or_default() += 1;
            }
            std::fs::remove_dir_all(&copy).unwrap();
        }
    }
    for (kind, outcomes) in &found {
        eprintln!("{kind}: {outcomes:?}");
    }
    assert!(found.keys().any(|k| k.starts_with("published")));
}

fn kind_of(rel: &Path) -> &'static str {
    let s = rel.to_str().unwrap();
    match () {
        _ if s.starts_with("published") => "published view",
        _ if s.starts_with("filters") => "metadata index",
        _ => "store",
    }
}
