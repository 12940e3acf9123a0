//! The `adasid` binary end to end: JSON output, exit codes, and bad inputs
//! that must leave the database unchanged.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn adasid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adasid"))
        .args(args)
        .output()
        .unwrap()
}

fn json(args: &[&str]) -> Value {
    let out = adasid(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.trim_end().lines().count(),
        1,
        "--json prints exactly one line: {text}"
    );
    serde_json::from_str(&text).unwrap()
}

fn fails(args: &[&str]) -> String {
    let out = adasid(args);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(out.stdout.is_empty(), "errors go to stderr only");
    String::from_utf8(out.stderr).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const TOKENS: &str =
    "a\t3,17,5,1\t0.5\nb\t3,17,9,-\t0\nc\t3,4,5,1\t0.25\nd\t8,17,5,1\t1\ne\t3,17,5,1\t0.75\n";

#[test]
fn ingest_then_query_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db").display().to_string();
    let tokens = write(dir.path(), "t.tsv", TOKENS);
    let r = json(&[
        "ingest-tokens",
        "--db",
        &db,
        "--tokens",
        &tokens,
        "--k",
        "32",
        "--json",
    ]);
    assert_eq!(r["inserted"], 5);

    let r = json(&["lookup", "--db", &db, "--prefix", "3,17", "--json"]);
    assert_eq!(r["count"], 3);
    let keys: Vec<&str> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["a", "b", "e"]);
    // a and e collide on their semantic tokens: the disambiguation token tells them apart.
    // SIDs are arrays of numbers; a masked behavior SID is null.
    assert_eq!(r["items"][0]["sid"], serde_json::json!([3, 17, 5, 1, 0]));
    assert_eq!(r["items"][2]["sid"], serde_json::json!([3, 17, 5, 1, 1]));
    assert_eq!(r["items"][1]["sid"], serde_json::json!([3, 17, 9, null, 0]));
    assert_eq!(r["prefix"], serde_json::json!([3, 17]));

    let r = json(&["next", "--db", &db, "--prefix", "3,17", "--json"]);
    assert_eq!(r["next_tokens"], serde_json::json!([5, 9]));
    assert_eq!(r["valid"], true);
    let r = json(&["next", "--db", &db, "--prefix", "3,17,9", "--json"]);
    assert_eq!(r["next_tokens"], serde_json::json!([null]));
    let r = json(&["next", "--db", &db, "--prefix", "", "--json"]);
    assert_eq!(r["next_tokens"], serde_json::json!([3, 8]));
    let r = json(&["next", "--db", &db, "--prefix", "3,18", "--json"]);
    assert_eq!(r["valid"], false);

    let r = json(&["similar", "--db", &db, "--item", "a", "--k", "2", "--json"]);
    let keys: Vec<&str> = r["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["e", "b"]);
    let r = json(&[
        "similar", "--db", &db, "--item", "c", "--k", "10", "--mode", "overlap", "--json",
    ]);
    let top = &r["candidates"][0];
    assert_eq!(
        (top["key"].as_str().unwrap(), top["score"].as_f64().unwrap()),
        ("a", 2.25)
    ); // positions 0 and 2 count 1, behavior position 3 its weight 0.25

    let r = json(&["stats", "--db", &db, "--json"]);
    assert_eq!(r["items"], 5);
    assert_eq!(r["prefixes_per_length"][0], 2);
    assert!((r["collision_rate"].as_f64().unwrap() - 0.2).abs() < 1e-9);

    // Re-ingesting the same file is an idempotent update.
    let r = json(&["ingest-tokens", "--db", &db, "--tokens", &tokens, "--json"]);
    assert_eq!(
        (
            r["inserted"].as_u64(),
            r["updated"].as_u64(),
            r["items"].as_u64()
        ),
        (Some(0), Some(5), Some(5))
    );
    let r = json(&["lookup", "--db", &db, "--prefix", "3,17,5,1,1", "--json"]);
    assert_eq!(r["items"][0]["key"], "e");
}

/// A token file of `n` items over 4 levels of K = 8 (one behavior position),
/// with a comment and blank lines between them.
fn many_tokens(n: usize) -> String {
    let mut text = String::from("# many items\n");
    for i in 0..n {
        let b = if i % 3 == 0 {
            "-\t0".to_string()
        } else {
            format!("{}\t0.5", i % 8)
        };
        text.push_str(&format!(
            "k{i}\t{},{},{},{b}\n",
            i % 8,
            i / 8 % 8,
            i / 64 % 8
        ));
        if i % 10 == 0 {
            text.push('\n');
        }
    }
    text
}

/// `ingest-tokens` of `file` into `db` (K = 8), `batch` lines per commit.
fn ingest_args<'a>(db: &'a str, file: &'a str, batch: &'a str) -> Vec<&'a str> {
    vec![
        "ingest-tokens",
        "--db",
        db,
        "--tokens",
        file,
        "--k",
        "8",
        "--batch",
        batch,
    ]
}

#[test]
fn ingest_in_batches_equals_one_commit_and_checks_the_whole_file_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let tokens = write(dir.path(), "many.tsv", &many_tokens(300));
    let ingest = |db: &str, file: &str, batch: &str| {
        json(&[ingest_args(db, file, batch), vec!["--json"]].concat())
    };
    let one = ingest(&path("one"), &tokens, "1000000");
    let many = ingest(&path("many"), &tokens, "7");
    assert_eq!(
        (one["batches"].as_u64(), one["inserted"].as_u64()),
        (Some(1), Some(300))
    );
    assert_eq!(many["inserted"].as_u64(), Some(300));
    assert!(many["batches"].as_u64().unwrap() > 40, "{many}");
    let all = |db: &str| {
        json(&[
            "lookup", "--db", db, "--prefix", "", "--limit", "1000", "--json",
        ])
    };
    assert_eq!(all(&path("one")), all(&path("many")));
    // Re-ingesting in batches updates every item once.
    let again = ingest(&path("many"), &tokens, "13");
    assert_eq!(
        (again["inserted"].as_u64(), again["updated"].as_u64()),
        (Some(0), Some(300))
    );

    let ingest_fails = |db: &str, file: &str, batch: &str| fails(&ingest_args(db, file, batch));
    // A bad line in the last batch fails before anything is written.
    let bad = write(
        dir.path(),
        "bad.tsv",
        &(many_tokens(100) + "z\t1,2,9,1\t1\n"),
    );
    let err = ingest_fails(&path("new"), &bad, "7");
    assert!(
        err.contains("bad.tsv:112:") && err.contains("not below K"),
        "{err}"
    );
    assert!(
        !dir.path().join("new").exists(),
        "a rejected file must not create a database"
    );
    // Two items asking for one full SID in the first batch: refused when
    // planned, and no database is left.
    let crowded: String = std::iter::once("a\t1,1,1,1\t1\n".to_string())
        .chain((0..2).map(|i| format!("c{i}\t1,1,1,1,0\t1\n")))
        .collect();
    let crowded = write(dir.path(), "crowded.tsv", &(crowded + &many_tokens(30)));
    let err = ingest_fails(&path("crowd"), &crowded, "20");
    assert!(err.contains("belongs to another item"), "{err}");
    assert!(
        !dir.path().join("crowd").exists(),
        "a failed first batch must not create a database"
    );
    // A key repeated across batches (or within one) is found before
    // anything is written, naming both lines; so is one repeated in a
    // database that exists, which keeps what it held.
    let repeat = write(
        dir.path(),
        "repeat.tsv",
        &(many_tokens(100) + "k5\t1,1,1,1\t1\n"),
    );
    let last = many_tokens(100).lines().count() + 1;
    for batch in ["50", "1000"] {
        let err = ingest_fails(&path("rep"), &repeat, batch);
        assert!(
            err.contains(&format!(":{last}: item 'k5' already appears on line 8")),
            "{err}"
        );
        assert!(!dir.path().join("rep").exists(), "nothing may be written");
    }
    let held = path("held");
    let ok = write(dir.path(), "ok.tsv", &many_tokens(10));
    ingest(&held, &ok, "4");
    let before = all(&held);
    let err = ingest_fails(&held, &repeat, "50");
    assert!(err.contains("'k5' already appears on line 8"), "{err}");
    assert_eq!(all(&held), before);
    assert!(ingest_fails(&path("x"), &tokens, "0").contains("--batch"));
}

#[test]
fn bad_inputs_name_file_and_line_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db").display().to_string();
    let good = write(dir.path(), "good.tsv", TOKENS);
    json(
        &["ingest-tokens", "--db", &db, "--tokens", &good, "--json"]
            .iter()
            .copied()
            .chain(["--k", "32"])
            .collect::<Vec<_>>(),
    );
    let before = json(&[
        "lookup", "--db", &db, "--prefix", "", "--limit", "100", "--json",
    ]);

    let cases = [
        (
            "malformed.tsv",
            "x\t1,2,3,4\t1\ny 1,2,3,4\n",
            "malformed.tsv:2:",
        ),
        (
            "range.tsv",
            "x\t1,2,3,4\t1\ny\t1,2,32,4\t1\n",
            "range.tsv:2:",
        ),
        (
            "levels.tsv",
            "x\t1,2,3,4\t1\n\ny\t1,2,3\t1\n",
            "levels.tsv:3:",
        ),
        ("notnum.tsv", "x\t1,2,z,4\t1\n", "notnum.tsv:1:"),
        ("weights.tsv", "x\t1,2,3,4\t0.5,0.5\n", "weights.tsv:1:"),
        ("dup.tsv", "x\t1,2,3,4\t1\nx\t1,2,3,5\t1\n", "dup.tsv:2:"),
        ("empty.tsv", "", "empty.tsv:1:"),
    ];
    for (name, text, want) in cases {
        let path = write(dir.path(), name, text);
        let err = fails(&["ingest-tokens", "--db", &db, "--tokens", &path]);
        assert!(err.contains(want), "{name}: {err}");
    }
    let err = fails(&[
        "ingest-tokens",
        "--db",
        &db,
        "--tokens",
        &dir.path().join("missing.tsv").display().to_string(),
    ]);
    assert!(err.contains("missing.tsv"), "{err}");
    let long = write(
        dir.path(),
        "long.tsv",
        &format!("{}\t1,2,3,4\t1\n", "k".repeat(5000)),
    );
    let err = fails(&["ingest-tokens", "--db", &db, "--tokens", &long]);
    assert!(err.contains("5000 bytes, more than 4096"), "{err}");
    for (flag, value) in [("--k", "16"), ("--behavior", "0")] {
        let err = fails(&["ingest-tokens", "--db", &db, "--tokens", &good, flag, value]);
        assert!(err.contains("does not match the database"), "{flag}: {err}");
    }
    let err = fails(&[
        "lookup",
        "--snapshot",
        dir.path().to_str().unwrap(),
        "--prefix",
        "3",
    ]);
    assert!(err.contains("is a folder, not a snapshot file"), "{err}");
    let after = json(&[
        "lookup", "--db", &db, "--prefix", "", "--limit", "100", "--json",
    ]);
    assert_eq!(before, after, "a rejected file changed the database");

    assert!(fails(&["similar", "--db", &db, "--item", "nope"]).contains("unknown item key 'nope'"));
    assert!(fails(&["lookup", "--db", &db, "--prefix", "3,99"]).contains("out of range"));
    assert!(fails(&["lookup", "--db", &db, "--prefix", "3,x"]).contains("not a token"));
    assert!(
        fails(&["next", "--db", &db, "--prefix", "1,2,3,4,5,6"]).contains("prefix has 6 tokens")
    );
    assert!(fails(&["next", "--db", &db, "--prefix", "-"]).contains("cannot be empty"));
}

#[test]
fn a_folder_of_someone_elses_files_is_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let listing = |p: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    };
    // A file that happens to be called `db` (this once became a sled log, beside new `conf` and `blobs/`).
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    std::fs::write(x.join("db"), "notes\n").unwrap();
    let xs = x.display().to_string();
    for args in [
        vec!["stats", "--db", &xs],
        vec!["lookup", "--db", &xs, "--prefix", "1"],
    ] {
        assert!(fails(&args).contains("no adasid database"), "{args:?}");
    }
    assert_eq!(std::fs::read_to_string(x.join("db")).unwrap(), "notes\n");
    assert_eq!(listing(&x), ["db"]);
    // A folder of other files is not made into a database.
    let y = dir.path().join("y");
    std::fs::create_dir(&y).unwrap();
    std::fs::write(y.join("notes.txt"), "mine").unwrap();
    let tokens = write(dir.path(), "t.tsv", TOKENS);
    let ys = y.display().to_string();
    let err = fails(&[
        "ingest-tokens",
        "--db",
        &ys,
        "--tokens",
        &tokens,
        "--k",
        "32",
    ]);
    assert!(err.contains("not an adasid database"), "{err}");
    assert_eq!(listing(&y), ["notes.txt"]);
    // An empty folder is fine.
    let z = dir.path().join("z");
    std::fs::create_dir(&z).unwrap();
    let zs = z.display().to_string();
    json(&[
        "ingest-tokens",
        "--db",
        &zs,
        "--tokens",
        &tokens,
        "--k",
        "32",
        "--json",
    ]);
}

#[test]
fn missing_database_and_missing_k_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("none").display().to_string();
    assert!(fails(&["stats", "--db", &db]).contains("no adasid database"));
    assert!(
        !dir.path().join("none").exists(),
        "a failed open must not create a database"
    );
    let tokens = write(dir.path(), "t.tsv", TOKENS);
    assert!(
        fails(&["ingest-tokens", "--db", &db, "--tokens", &tokens]).contains("--codebook-size")
    );
    let bad = write(dir.path(), "bad.tsv", "a\t1,2\nb\t1,99\n");
    assert!(
        fails(&["ingest-tokens", "--db", &db, "--tokens", &bad, "--k", "8"]).contains("bad.tsv:2:")
    );
    assert!(
        !dir.path().join("none").exists(),
        "a rejected file must not create a database"
    );
}

#[test]
fn open_database_is_locked_for_other_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = adasid::Database::create(&path, adasid::SidLayout::new(2, 8, 0).unwrap()).unwrap();
    let err = fails(&["stats", "--db", &path.display().to_string()]);
    assert!(err.contains("open in another process"), "{err}");
    drop(db);
    json(&["stats", "--db", &path.display().to_string(), "--json"]);
}

#[test]
fn demo_runs_small_and_prints_json() {
    let r = json(&["demo", "--items", "500", "--json"]);
    assert_eq!(r["items"], 500);
    assert!(r["prefix_count"].as_u64().unwrap() >= 1);
    assert_eq!(r["stats"]["positions"].as_array().unwrap().len(), 6);
}

fn export(db: &str, format: &str) -> String {
    let out = adasid(&["export", "--db", db, "--format", format]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn export_then_ingest_is_lossless() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    // Collisions, a masked behavior SID, and a removal that leaves a gap in the
    // disambiguation tokens (e keeps token 1 after a, token 0, is gone).
    {
        let layout = adasid::SidLayout::new(4, 32, 1).unwrap();
        let d = adasid::Database::create(&db, layout).unwrap();
        // A key may start with '#' (not a comment: its line has tabs).
        let text = format!("{TOKENS}#tag\t1,2,3,4\t1\n");
        let lines = adasid::data::tokens::parse("t", &text).unwrap();
        d.upsert(&lines.into_iter().map(|l| l.item).collect::<Vec<_>>())
            .unwrap();
        d.remove(&["a"]).unwrap();
    }
    let db = db.display().to_string();
    let tsv = export(&db, "tsv");
    assert!(
        tsv.starts_with("# adasid levels=4 k=32 behavior=1\n"),
        "{tsv}"
    );
    assert!(
        tsv.contains("e\t3,17,5,1,1\t0.75\n")
            && tsv.contains("b\t3,17,9,-,0\t0\n")
            && tsv.contains("#tag\t1,2,3,4,0\t1\n"),
        "{tsv}"
    );
    let file = write(dir.path(), "export.tsv", &tsv);
    let db2 = dir.path().join("db2").display().to_string();
    json(&["ingest-tokens", "--db", &db2, "--tokens", &file, "--json"]);
    assert_eq!(
        export(&db2, "tsv"),
        tsv,
        "export → ingest → export changes nothing"
    );
    assert_eq!(export(&db2, "json"), export(&db, "json"));

    let tokens: Value = serde_json::from_str(&export(&db, "tokens")).unwrap();
    let b: Vec<&str> = tokens["b"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        b,
        vec!["<a_3>", "<b_17>", "<c_9>", "<d_32>"],
        "a masked SID is token K; b shares its semantic SID with no item"
    );

    // Asking for a taken full SID is refused.
    let clash = write(dir.path(), "clash.tsv", "z\t3,17,5,1,1\t0.5\n");
    assert!(
        fails(&["ingest-tokens", "--db", &db2, "--tokens", &clash])
            .contains("belongs to another item")
    );
}

#[test]
fn meta_then_filtered_lookup_and_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db").display().to_string();
    let tokens = write(dir.path(), "t.tsv", TOKENS);
    json(&[
        "ingest-tokens",
        "--db",
        &db,
        "--tokens",
        &tokens,
        "--k",
        "32",
        "--json",
    ]);
    let err = fails(&[
        "lookup",
        "--db",
        &db,
        "--prefix",
        "3",
        "--filter",
        "brand:opi",
    ]);
    assert!(err.contains("adasid meta"), "{err}");
    let meta = write(
        dir.path(),
        "meta.jsonl",
        concat!(
            "{\"asin\": \"a\", \"brand\": \"OPI\", \"price\": 12.5}\n",
            "{\"asin\": \"b\", \"brand\": \"OPI\", \"price\": 30}\n",
            "{\"asin\": \"c\", \"brand\": \"Essie\", \"price\": 8}\n",
            "{\"asin\": \"zz\", \"brand\": \"OPI\"}\n",
        ),
    );
    let r = json(&["meta", "--db", &db, "--file", &meta, "--json"]);
    assert_eq!(
        (r["indexed"].as_u64(), r["skipped"].as_u64()),
        (Some(3), Some(1))
    );
    let r = json(&[
        "lookup",
        "--db",
        &db,
        "--prefix",
        "3",
        "--filter",
        "brand:opi AND price:[0 TO 20]",
        "--json",
    ]);
    assert_eq!(r["count"], 1);
    assert_eq!(r["items"][0]["key"], "a");
    let r = json(&[
        "lookup",
        "--db",
        &db,
        "--prefix",
        "3",
        "--filter",
        "brand:opi",
        "--json",
    ]);
    let keys: Vec<&str> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["a", "b"]);
    let err = fails(&[
        "lookup", "--db", &db, "--prefix", "3", "--filter", "brand:(",
    ]);
    assert!(err.contains("filter 'brand:('"), "{err}");
    let bad = write(dir.path(), "bad.jsonl", "{\"asin\": \"a\"}\n{oops\n");
    let err = fails(&["meta", "--db", &db, "--file", &bad]);
    assert!(err.contains("bad.jsonl:2:"), "{err}");

    let snap = dir.path().join("index.snap").display().to_string();
    let r = json(&["snapshot", "--db", &db, "--out", &snap, "--json"]);
    assert_eq!(r["items"], 5);
    assert!(r["bytes"].as_u64().unwrap() > 0);
    // Never over the store's own files (this once replaced DB/db and reported success).
    for inside in ["db", "blobs/x.snap"] {
        let out = Path::new(&db).join(inside).display().to_string();
        let err = fails(&["snapshot", "--db", &db, "--out", &out]);
        assert!(err.contains("inside the database folder"), "{err}");
    }
    assert_eq!(json(&["stats", "--db", &db, "--json"])["items"], 5);
    // A corrupt snapshot is a clear error, not a crash.
    let mut bytes = std::fs::read(&snap).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    let broken = dir.path().join("broken.snap");
    std::fs::write(&broken, &bytes).unwrap();
    let err = fails(&[
        "next",
        "--snapshot",
        broken.to_str().unwrap(),
        "--prefix",
        "3",
    ]);
    assert!(err.contains("data corruption in snapshot"), "{err}");
    // The intact snapshot answers like the database.
    for prefix in ["", "3", "3,17", "3,17,5,1", "9"] {
        let from_db = json(&["next", "--db", &db, "--prefix", prefix, "--json"]);
        let from_snap = json(&["next", "--snapshot", &snap, "--prefix", prefix, "--json"]);
        assert_eq!(from_db, from_snap, "next {prefix}");
        let from_db = json(&["lookup", "--db", &db, "--prefix", prefix, "--json"]);
        let from_snap = json(&["lookup", "--snapshot", &snap, "--prefix", prefix, "--json"]);
        assert_eq!(from_db, from_snap, "lookup {prefix}");
    }
    let err = fails(&[
        "lookup",
        "--snapshot",
        &snap,
        "--prefix",
        "3",
        "--filter",
        "brand:opi",
    ]);
    assert!(err.contains("--filter needs --db"), "{err}");
}

#[test]
fn programs_get_json_errors_new_spellings_and_a_quiet_closed_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db").display().to_string();
    let tokens = write(dir.path(), "t.tsv", TOKENS);
    // K is --codebook-size; a result count is --k or --count.
    let r = json(&[
        "ingest-tokens",
        "--db",
        &db,
        "--tokens",
        &tokens,
        "--codebook-size",
        "32",
        "--json",
    ]);
    assert_eq!(r["inserted"], 5);
    let r = json(&[
        "similar", "--db", &db, "--item", "a", "--count", "2", "--json",
    ]);
    assert_eq!(r["candidates"].as_array().unwrap().len(), 2);
    assert_eq!(r["sid"], serde_json::json!([3, 17, 5, 1, 0]));
    // Under --json an error is one JSON object on stderr naming its kind.
    let err = fails(&["similar", "--db", &db, "--item", "nobody", "--json"]);
    let err: Value = serde_json::from_str(err.trim()).expect("one JSON object");
    assert_eq!(err["error"]["kind"], "UnknownKey");
    assert_eq!(err["error"]["input"], true);
    assert!(err["error"]["message"].as_str().unwrap().contains("nobody"));
    let err = fails(&["lookup", "--db", &db, "--prefix", "3,99", "--json"]);
    let err: Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(err["error"]["kind"], "InvalidArgument");
    // `--json` as another option's value is not the --json flag: text error.
    let err = fails(&["lookup", "--db", &db, "--prefix", "3", "--filter=--json"]);
    assert!(err.starts_with("error: "), "{err}");
    // A reader that stops early (`| head -c 1`) ends the output quietly.
    let mut child = Command::new(env!("CARGO_BIN_EXE_adasid"))
        .args(["export", "--db", &db, "--format", "tsv"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("Broken pipe") && !stderr.contains("panicked"),
        "{stderr}"
    );
    assert!(out.status.success(), "{stderr}");
}
