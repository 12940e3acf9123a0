//! The files Python generative-retrieval code reads, as it reads them:
//! LETTER / LC-Rec / MiniOneRec `*.index.json` token indexes keyed by row,
//! in file order, with a disambiguation token only where items collide, and
//! one spelling (K) of the masked behavior token accepted everywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::common::{adasid, json};

fn run(args: &[&str]) -> String {
    let (ok, out, err) = adasid(args);
    assert!(ok, "{args:?}: {err}");
    out
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

/// A database made from a token file of `text` with codebook size `k`.
fn ingested(dir: &Path, text: &str, k: &str) -> String {
    let tsv = path(dir, "t.tsv");
    std::fs::write(&tsv, text).unwrap();
    let db = path(dir, "db");
    run(&["ingest-tokens", "--db", &db, "--tokens", &tsv, "--k", k]);
    db
}

/// A token index as LETTER writes it (`json.dump` with its defaults): keys
/// "0".."n-1", four semantic tokens each, all distinct, many sharing
/// their first three.
fn letter_style(n: usize) -> (String, Vec<[u16; 4]>) {
    let sids: Vec<[u16; 4]> = (0..n)
        .map(|i| {
            let i = i as u16;
            [i * 7 % 256, i / 5 % 256, i / 25 % 256, i % 5 * 50 + i % 3]
        })
        .collect();
    let entries: Vec<String> = sids
        .iter()
        .enumerate()
        .map(|(row, s)| {
            format!(
                "\"{row}\": [\"<a_{}>\", \"<b_{}>\", \"<c_{}>\", \"<d_{}>\"]",
                s[0], s[1], s[2], s[3]
            )
        })
        .collect();
    (format!("{{{}}}", entries.join(", ")), sids)
}

#[test]
fn a_letter_style_index_round_trips_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (text, sids) = letter_style(300);
    assert_eq!(sids.iter().collect::<BTreeSet<_>>().len(), 300);
    let file = path(dir.path(), "Beauty.index.json");
    std::fs::write(&file, &text).unwrap();
    let db = path(dir.path(), "db");
    let r = json(&[
        "ingest-tokens",
        "--db",
        &db,
        "--tokens",
        &file,
        "--k",
        "256",
        "--json",
    ]);
    assert_eq!(r["inserted"], 300);

    for key_by in ["key", "row"] {
        let out = path(dir.path(), &format!("out-{key_by}.json"));
        run(&[
            "export", "--db", &db, "--format", "tokens", "--key-by", key_by, "--out", &out,
        ]);
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            text,
            "--key-by {key_by}"
        );
    }
    // Their tries and adasid's agree.
    let mut children: BTreeMap<Vec<u16>, BTreeSet<u16>> = BTreeMap::new();
    for s in &sids {
        for depth in 0..4 {
            children
                .entry(s[..depth].to_vec())
                .or_default()
                .insert(s[depth]);
        }
    }
    for (prefix, want) in children.iter().step_by(17) {
        let prefix: Vec<String> = prefix.iter().map(|t| t.to_string()).collect();
        let r = json(&["next", "--db", &db, "--prefix", &prefix.join(","), "--json"]);
        let got: BTreeSet<u16> = r["next_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as u16)
            .collect();
        assert_eq!(&got, want, "after {prefix:?}");
    }
}

#[test]
fn rows_and_keys_come_in_the_order_items_were_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = ingested(dir.path(), "zeta\t1,2\nalpha\t3,4\n10\t5,6\n9\t1,3\n", "8");
    let tokens = run(&[
        "export", "--db", &db, "--format", "tokens", "--key-by", "row",
    ]);
    assert_eq!(
        tokens,
        r#"{"0": ["<a_1>", "<b_2>"], "1": ["<a_3>", "<b_4>"], "2": ["<a_5>", "<b_6>"], "3": ["<a_1>", "<b_3>"]}"#
    );
    let keys = |text: &str| -> Vec<usize> {
        ["\"zeta\"", "\"alpha\"", "\"10\"", "\"9\""]
            .iter()
            .map(|k| text.find(k).unwrap())
            .collect()
    };
    for format in ["tokens", "json"] {
        let text = run(&["export", "--db", &db, "--format", format]);
        let at = keys(&text);
        assert!(at.is_sorted(), "{format} lists items as written: {text}");
    }
    // `--json` is `--format json`, and says so when asked for both.
    assert_eq!(
        run(&["export", "--db", &db, "--json"]),
        run(&["export", "--db", &db, "--format", "json"])
    );
    let (ok, _, err) = adasid(&["export", "--db", &db, "--json", "--format", "tsv"]);
    assert!(!ok && err.contains("--format"), "{err}");
}

#[test]
fn the_disambiguation_token_is_written_only_where_items_collide() {
    let dir = tempfile::tempdir().unwrap();
    let text = "a\t3,17,5\nb\t3,17,9\ne\t3,17,5\nc\t4,1,1\n";
    let db = ingested(dir.path(), text, "32");
    let tsv = path(dir.path(), "t.tsv");
    let collisions = run(&["export", "--db", &db, "--format", "tokens"]);
    assert_eq!(
        collisions,
        r#"{"a": ["<a_3>", "<b_17>", "<c_5>", "<d_0>"], "b": ["<a_3>", "<b_17>", "<c_9>"], "e": ["<a_3>", "<b_17>", "<c_5>", "<d_1>"], "c": ["<a_4>", "<b_1>", "<c_1>"]}"#
    );
    let always = run(&[
        "export",
        "--db",
        &db,
        "--format",
        "tokens",
        "--disambiguation",
        "always",
    ]);
    assert!(
        always.contains(r#""b": ["<a_3>", "<b_17>", "<c_9>", "<d_0>"]"#),
        "{always}"
    );

    // Either file ingests into the same full SIDs: the layout is the
    // fewest tokens a line has, or `--levels` where every line has its counter.
    let tsv_of = |db: &str| run(&["export", "--db", db, "--format", "tsv"]);
    for (name, text) in [("collisions", &collisions), ("always", &always)] {
        let file = path(dir.path(), &format!("{name}.json"));
        std::fs::write(&file, text).unwrap();
        let db2 = path(dir.path(), name);
        let mut args = vec![
            "ingest-tokens",
            "--db",
            &db2,
            "--tokens",
            &file,
            "--k",
            "32",
        ];
        if name == "always" {
            args.extend(["--levels", "3"]);
        }
        run(&args);
        assert_eq!(tsv_of(&db2), tsv_of(&db), "{name}");
    }
    let (ok, _, err) = adasid(&[
        "ingest-tokens",
        "--db",
        &db,
        "--tokens",
        &tsv,
        "--levels",
        "4",
    ]);
    assert!(!ok && err.contains("--levels 4 does not match"), "{err}");
}

#[test]
fn the_masked_token_is_k_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    // K = 32; the last position is a behavior SID; b's is masked, written
    // as 32 here and as '-' for d.
    let db = ingested(
        dir.path(),
        "a\t3,17,5\t0.5\nb\t3,17,32\t0\nd\t3,9,-\t0\n",
        "32",
    );
    let r = json(&["next", "--db", &db, "--prefix", "3,17", "--json"]);
    assert_eq!(r["next_tokens"], serde_json::json!([5, null]));
    for prefix in ["3,17,32", "3,17,-"] {
        let r = json(&["lookup", "--db", &db, "--prefix", prefix, "--json"]);
        assert_eq!(r["items"][0]["key"], "b", "--prefix {prefix}");
        assert_eq!(r["count"], 1);
    }
    // K is no token at a semantic non-behavior position.
    let (ok, _, err) = adasid(&["lookup", "--db", &db, "--prefix", "32"]);
    assert!(!ok && err.contains("not below K"), "{err}");

    let tokens = run(&["export", "--db", &db, "--format", "tokens"]);
    assert!(
        tokens.contains(r#""b": ["<a_3>", "<b_17>", "<c_32>"]"#),
        "{tokens}"
    );
    let file = path(dir.path(), "b.index.json");
    std::fs::write(&file, &tokens).unwrap();
    let db2 = path(dir.path(), "db2");
    run(&[
        "ingest-tokens",
        "--db",
        &db2,
        "--tokens",
        &file,
        "--k",
        "32",
        "--behavior",
        "1",
    ]);
    assert_eq!(run(&["export", "--db", &db2, "--format", "tokens"]), tokens);
    let r = json(&["lookup", "--db", &db2, "--prefix", "3,17,-", "--json"]);
    assert_eq!(r["items"][0]["key"], "b");
}

#[test]
fn a_bad_token_index_is_refused_with_its_entry_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = path(dir.path(), "db");
    for (text, says) in [
        (
            r#"{"0": ["<a_1>", "<b_2>"], "1": ["<a_1>", "<c_2>"]}"#,
            ":2: entry '1'",
        ),
        (
            r#"{"0": ["<a_1>", "<b_2>"], "1": ["<a_1>", "<b_40>"]}"#,
            ":2: token 40",
        ),
        (
            r#"{"0": ["<a_1>", "<b_2>"], "1": ["<a_1>", "<b_2>", "<c_1>", "<d_1>"]}"#,
            ":2: expected 2 tokens",
        ),
        ("{\"0\": [\"<a_1>\"],\n\"1\": }", ":2: not a token index"),
    ] {
        let file = path(dir.path(), "bad.json");
        std::fs::write(&file, text).unwrap();
        let (ok, _, err) = adasid(&["ingest-tokens", "--db", &db, "--tokens", &file, "--k", "32"]);
        assert!(!ok && err.contains(says), "{text}: {err}");
        assert!(
            !Path::new(&db).exists(),
            "{text}: a refused file creates nothing"
        );
    }
}

#[test]
fn exports_larger_than_a_write_piece_stream_whole_and_a_failed_one_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    // About 3 MB of TSV: more than one megabyte-sized piece in every format.
    let text: String = (0..60_000)
        .map(|i| format!("key-{i:06}\t{},{},{}\n", i % 251, i / 251 % 64, i % 7))
        .collect();
    let db = ingested(dir.path(), &text, "256");
    for format in ["tsv", "json", "tokens"] {
        let out = path(dir.path(), &format!("all.{format}"));
        let streamed = run(&["export", "--db", &db, "--format", format]);
        run(&["export", "--db", &db, "--format", format, "--out", &out]);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), streamed, "{format}");
        assert!(
            streamed.len() > 1 << 20,
            "{format}: {} bytes",
            streamed.len()
        );
    }
    let tsv = path(dir.path(), "all.tsv");
    let db2 = path(dir.path(), "db2");
    run(&["ingest-tokens", "--db", &db2, "--tokens", &tsv]);
    assert_eq!(
        run(&["export", "--db", &db2, "--format", "tsv"]),
        std::fs::read_to_string(&tsv).unwrap()
    );

    // 27 positions have no letters: the tokens format fails on the first
    // item, and neither the file nor a temporary is left.
    let wide = dir.path().join("wide");
    std::fs::create_dir(&wide).unwrap();
    let tokens: Vec<String> = (0..27).map(|t| (t % 4).to_string()).collect();
    let wide_db = ingested(&wide, &format!("a\t{}\n", tokens.join(",")), "4");
    let out = path(&wide, "wide.json");
    let (ok, _, err) = adasid(&[
        "export", "--db", &wide_db, "--format", "tokens", "--out", &out,
    ]);
    assert!(!ok && err.contains("a..z"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&wide)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "db" && n != "t.tsv")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
