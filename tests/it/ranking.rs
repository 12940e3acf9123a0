//! `rank-eval` end to end on the cycle data of the generative tests: a
//! DIN-style ranker learns which candidate follows the last history item,
//! with item ids or SID tokens as the item features.

use crate::common::{adasid, json};
use crate::generative::cycle_db;

#[test]
fn ranker_learns_the_next_item_rule_from_ids_and_from_sids() {
    let dir = cycle_db(&["--tokenizer", "rq-kmeans", "--k", "16", "--levels", "2"]);
    let p = |s: &str| dir.path().join(s).display().to_string();
    let (db, data) = (p("db"), p("data"));
    let run = |features: &str, extra: &[&str]| {
        let mut args = vec![
            "rank-eval",
            "--db",
            &db,
            "--data",
            &data,
            "--features",
            features,
            "--epochs",
            "15",
            "--batch-size",
            "64",
            "--json",
        ];
        args.extend_from_slice(extra);
        json(&args)
    };
    for features in ["id", "sid", "both"] {
        let r = run(features, &[]);
        let (auc, gauc) = (
            r["overall"]["auc"].as_f64().unwrap(),
            r["overall"]["gauc"].as_f64().unwrap(),
        );
        assert!(auc > 0.7 && gauc > 0.7, "{features}: {auc} {gauc}");
        // One positive and one negative per user at the test step.
        assert_eq!(r["overall"]["impressions"], 800);
        assert_eq!(r["overall"]["users"], 400);
        assert_eq!(r["quartiles"].as_array().unwrap().len(), 4);
    }
    let r = run("id", &["--negatives", "3"]);
    assert_eq!(r["overall"]["impressions"], 1600);
    let (ok, _, err) = adasid(&[
        "rank-eval",
        "--db",
        &db,
        "--data",
        &data,
        "--negatives",
        "0",
    ]);
    assert!(!ok && err.contains("at least 1"), "{err}");
}

/// Items the database has no SID for, and sequences too short for the
/// protocol, are refused with what is wrong, before any training.
#[test]
fn rank_eval_refuses_uncovered_items_and_short_sequences() {
    let dir = cycle_db(&["--tokenizer", "rq-kmeans", "--k", "16", "--levels", "2"]);
    let p = |s: &str| dir.path().join(s).display().to_string();
    let (db, data) = (p("db"), p("data"));
    let items = std::fs::read_to_string(dir.path().join("data/items.txt")).unwrap();
    std::fs::write(dir.path().join("data/more.txt"), items + "stranger\n").unwrap();
    std::fs::write(dir.path().join("data/more.tsv"), "u0\t0 1 2 200\n").unwrap();
    std::fs::write(dir.path().join("data/short.tsv"), "u0\t0 1 2 3\nu1\t4 5\n").unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["rank-eval", "--db", &db, "--data", &data];
        args.extend_from_slice(extra);
        adasid(&args)
    };
    let (ok, _, err) = run(&["--items", "more.txt", "--sequences", "more.tsv"]);
    assert!(
        !ok && err.contains("no SID for 1 of the 201") && err.contains("stranger"),
        "{err}"
    );
    let (ok, _, err) = run(&["--sequences", "short.tsv"]);
    assert!(!ok && err.contains("sequence 1 has 2 items"), "{err}");
}

/// `compare --ranking` adds the ranking columns to its rows, and one
/// item-id ranker beside them, scored on the same impressions.
#[test]
fn compare_adds_ranking_columns() {
    let dir = cycle_db(&["--tokenizer", "rq-kmeans", "--k", "16", "--levels", "2"]);
    let data = dir.path().join("data").display().to_string();
    let c = json(&[
        "compare",
        "--data",
        &data,
        "--only",
        "rq-kmeans",
        "--ranking",
        "--negatives",
        "2",
        "--json",
    ]);
    let row = &c["rows"][0]["ranking"];
    assert_eq!(row["features"], "sid");
    assert_eq!(row["overall"]["impressions"], 1200);
    let ids = &c["ranking_item_ids"];
    assert_eq!(ids["features"], "id");
    assert_eq!(ids["overall"]["impressions"], 1200);
    for r in [row, ids] {
        let auc = r["overall"]["auc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&auc), "{r}");
    }
}
