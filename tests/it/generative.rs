//! The generative retriever end to end: `gen-train` learns a deterministic
//! "next item" rule from sequences, stores itself in the database, and
//! `gen-eval` (constrained beam search) finds the held-out items.

use crate::common::{adasid, catalog, json};
use adasid::data::embeddings::{DataSpec, write};

/// Users walk a fixed cycle over the catalogue: item `i` is always followed
/// by `next(i)`, so the last history item determines the target.
fn cycle_sequences(items: usize, users: usize) -> String {
    let next = |i: usize| (i * 7 + 3) % items;
    let mut out = String::new();
    for u in 0..users {
        let mut i = (u * 13) % items;
        let mut seq = Vec::new();
        for _ in 0..6 {
            seq.push(i.to_string());
            i = next(i);
        }
        out += &format!("{u}\t{}\n", seq.join(" "));
    }
    out
}

/// A data folder (`data/`) of 200 synthetic items and 400 users on the
/// cycle, and a database (`db/`) trained on it by `train` with `tokenizer`.
pub fn cycle_db(tokenizer: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let items = 200;
    let data = dir.path().join("data");
    write(&data, &catalog(items, 2), &DataSpec::default()).unwrap();
    std::fs::write(data.join("sequences.tsv"), cycle_sequences(items, 400)).unwrap();
    let (data, db) = (data.display().to_string(), dir.path().join("db"));
    let mut args = vec!["train", "--data", &data, "--json"];
    args.extend_from_slice(&["--db", db.to_str().unwrap()]);
    args.extend_from_slice(tokenizer);
    json(&args);
    dir
}

/// The top 5 `recommend` gives after item0, item3, checked to come from
/// the retriever `kind`.
fn served_after_item3(db: &str, kind: &str) -> Vec<serde_json::Value> {
    let r = json(&[
        "recommend",
        "--db",
        db,
        "--history",
        "item0,item3",
        "--k",
        "5",
        "--json",
    ]);
    assert_eq!(r["retriever"], kind);
    r["items"].as_array().unwrap().clone()
}

/// A small parallel retriever (or hybrid) that learns the cycle quickly.
const SMALL_PARALLEL: &str = "d_model = 32\nheads = 2\nlayers = 1\nff = 64\nbatch_size = 64\nlr = 0.005\ndropout = 0.0\npatience = 40\nvalid_users = 400\n";

#[test]
fn learns_a_next_item_rule_and_decodes_only_existing_sids() {
    let dir = cycle_db(&["--tokenizer", "rq-kmeans", "--k", "16", "--levels", "2"]);
    let p = |s: &str| dir.path().join(s).display().to_string();

    // Before training there is no retriever to evaluate.
    let (ok, _, err) = adasid(&["gen-eval", "--db", &p("db"), "--data", &p("data")]);
    assert!(!ok && err.contains("gen-train"), "{err}");

    std::fs::write(
        p("gen.toml"),
        "d_model = 32\nheads = 2\nencoder_layers = 1\ndecoder_layers = 1\nff = 64\nbatch_size = 64\nlr = 0.005\npatience = 40\nvalid_users = 100\n",
    )
    .unwrap();
    let t = json(&[
        "gen-train",
        "--db",
        &p("db"),
        "--data",
        &p("data"),
        "--config",
        &p("gen.toml"),
        "--epochs",
        "40",
        "--json",
    ]);
    let history = t["history"].as_array().unwrap();
    assert_eq!(history.len(), 40);
    let first = history[0]["loss"].as_f64().unwrap();
    let last = history[39]["loss"].as_f64().unwrap();
    assert!(last < first * 0.5, "loss {first} → {last}");
    // Validation is decoded after every epoch and improves on the first.
    let valid: Vec<f64> = history
        .iter()
        .map(|h| h["valid_ndcg10"].as_f64().expect("validated"))
        .collect();
    assert!(
        valid.iter().cloned().fold(0.0, f64::max) > valid[0],
        "{valid:?}"
    );

    let e = json(&[
        "gen-eval",
        "--db",
        &p("db"),
        "--data",
        &p("data"),
        "--beams",
        "20",
        "--json",
    ]);
    assert_eq!(e["overall"]["users"], 400);
    assert_eq!(e["overall"]["cutoffs"], serde_json::json!([5, 10, 50, 100]));
    // Chance is 10 / 200 at R@10; the rule is learnable from the last item.
    let r10 = e["overall"]["recall"][1].as_f64().unwrap();
    assert!(r10 > 0.5, "R@10 {r10}");
    // A beam width of 20 can rank at most 20 items: R@50 = R@100 = R@20.
    assert_eq!(e["overall"]["recall"][2], e["overall"]["recall"][3]);
    let per_quartile: u64 = e["quartiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["users"].as_u64().unwrap())
        .sum();
    assert_eq!(per_quartile, 400);
    // Most users here walk a short cycle (0 → 3 → 24 → 171 → 0), so their
    // target is one of their history items: leaving those out of the
    // ranking must lose it.
    let x = json(&[
        "gen-eval",
        "--db",
        &p("db"),
        "--data",
        &p("data"),
        "--beams",
        "20",
        "--exclude-history",
        "--json",
    ]);
    assert_eq!(x["overall"]["users"], 400);
    assert!(x["overall"]["recall"][1].as_f64().unwrap() < r10, "{x}");

    // Served: after item3 comes item24 (user 0 walks 0 → 3 → 24 → ...).
    let items = served_after_item3(&p("db"), "autoregressive");
    assert!(
        items.len() <= 5 && items.iter().any(|i| i["key"] == "item24"),
        "{items:?}"
    );
    let (ok, _, err) = adasid(&[
        "recommend",
        "--db",
        &p("db"),
        "--history",
        "item0",
        "--retriever",
        "parallel",
    ]);
    assert!(!ok && err.contains("no parallel retriever"), "{err}");
}

/// A hybrid trained on the cycle database in `dir` with [`SMALL_PARALLEL`]
/// plus `extra` settings for `epochs`: `gen-train`'s JSON.
fn train_hybrid(dir: &tempfile::TempDir, extra: &str, epochs: &str) -> serde_json::Value {
    let p = |s: &str| dir.path().join(s).display().to_string();
    std::fs::write(p("hy.toml"), format!("{SMALL_PARALLEL}{extra}")).unwrap();
    json(&[
        "gen-train",
        "--retriever",
        "hybrid",
        "--db",
        &p("db"),
        "--data",
        &p("data"),
        "--config",
        &p("hy.toml"),
        "--epochs",
        epochs,
        "--json",
    ])
}

/// `gen-eval` of the hybrid stored in `dir`'s database on `split`.
fn eval_hybrid(dir: &tempfile::TempDir, split: &str) -> serde_json::Value {
    let p = |s: &str| dir.path().join(s).display().to_string();
    json(&[
        "gen-eval",
        "--retriever",
        "hybrid",
        "--db",
        &p("db"),
        "--data",
        &p("data"),
        "--split",
        split,
        "--json",
    ])
}

/// The hybrid with an id-only head (item ids in and out, SID tokens added
/// to the inputs) on the same rule: trained, evaluated and served like the
/// parallel retriever. A config stored before `sid_output` existed (no such
/// key) still loads as the id-only head it was trained with, though the
/// default is now the tied head.
#[test]
fn hybrid_retriever_learns_the_rule_and_recommends() {
    let dir = cycle_db(&["--tokenizer", "rq-kmeans", "--k", "16", "--levels", "2"]);
    let t = train_hybrid(&dir, "sid_output = false\n", "20");
    assert_eq!(t["retriever"], "hybrid");
    assert_eq!(t["config"]["hybrid"], true);
    assert_eq!(t["config"]["sid_output"], false);
    assert_eq!(t["config"]["items"], 200);
    let test = eval_hybrid(&dir, "test")["overall"].clone();
    let r10 = test["recall"][1].as_f64().unwrap();
    assert!(r10 > 0.5, "R@10 {r10}");
    let db = dir.path().join("db").display().to_string();
    let items = served_after_item3(&db, "hybrid");
    assert_eq!(items.len(), 5);
    assert!(items.iter().any(|i| i["key"] == "item24"), "{items:?}");

    forget_setting(&dir, "sid_output");
    assert_eq!(eval_hybrid(&dir, "test")["overall"], test);
}

/// Rewrites the stored parallel config of `dir`'s database without `key`,
/// as a version before that setting would have stored it.
fn forget_setting(dir: &tempfile::TempDir, key: &str) {
    let db = adasid::Database::open(&dir.path().join("db")).unwrap();
    let name = adasid::generative::parallel::blobs::CONFIG;
    let text = String::from_utf8(db.blob(name).unwrap().unwrap()).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with(&format!("{key} =")))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(kept.len(), text.len(), "{key} was stored");
    db.put_blobs(vec![(name.to_string(), kept.into_bytes())])
        .unwrap();
}

/// A hybrid whose head is tied to the whole input embedding (`sid_output`,
/// the default) learns the rule too, and the stored model scores as the trained one did:
/// `gen-eval` on the validation split, from the reloaded weights and the
/// item SIDs kept with them, gives the NDCG@10 training kept.
#[test]
fn hybrid_with_sid_output_is_stored_as_it_trained() {
    let dir = cycle_db(&["--tokenizer", "rq-kmeans", "--k", "16", "--levels", "2"]);
    let t = train_hybrid(&dir, "", "12");
    assert_eq!(t["config"]["sid_output"], true);
    let kept = t["best_valid_ndcg10"].as_f64().unwrap();
    let valid = eval_hybrid(&dir, "valid")["overall"]["ndcg"][1]
        .as_f64()
        .unwrap();
    assert!((valid - kept).abs() < 1e-6, "kept {kept}, reloaded {valid}");
    let r10 = eval_hybrid(&dir, "test")["overall"]["recall"][1]
        .as_f64()
        .unwrap();
    assert!(r10 > 0.5, "R@10 {r10}");
    let db = dir.path().join("db").display().to_string();
    let items = served_after_item3(&db, "hybrid");
    assert!(items.iter().any(|i| i["key"] == "item24"), "{items:?}");
}

/// A cosine learning-rate schedule with warm-up trains a hybrid that learns
/// the rule, is stored with the model, and changes the training it drives
/// (its per-epoch losses differ from the constant rate's from the first epoch).
#[test]
fn cosine_schedule_trains_and_is_stored() {
    let dir = cycle_db(&["--tokenizer", "rq-kmeans", "--k", "16", "--levels", "2"]);
    let losses = |t: &serde_json::Value| -> Vec<f64> {
        let h = t["history"].as_array().unwrap();
        h.iter().map(|e| e["loss"].as_f64().unwrap()).collect()
    };
    let constant = losses(&train_hybrid(&dir, "", "3"));
    let t = train_hybrid(&dir, "schedule = \"cosine\"\nwarmup_steps = 20\n", "12");
    assert_eq!(t["config"]["schedule"], "cosine");
    assert_eq!(t["config"]["warmup_steps"], 20);
    let cosine = losses(&t);
    assert_ne!(cosine[0], constant[0], "{cosine:?} vs {constant:?}");
    let r10 = eval_hybrid(&dir, "test")["overall"]["recall"][1]
        .as_f64()
        .unwrap();
    assert!(r10 > 0.5, "R@10 {r10}");
}

/// Users who alternate between two items: every next item is in the
/// history already.
fn alternating_sequences(items: usize, users: usize) -> String {
    let mut out = String::new();
    for u in 0..users {
        let a = (u * 13) % items;
        let b = (a + 1 + u % 7) % items;
        out += &format!("{u}\t{a} {b} {a} {b} {a} {b}\n");
    }
    out
}

/// The repeat bias learns what the data says about seen items: pushed down
/// where users never return to an item (the cycle), lifted where they
/// alternate between two; without the setting there is none.
#[test]
fn the_repeat_bias_learns_whether_users_return() {
    let dir = cycle_db(&["--tokenizer", "rq-kmeans", "--k", "16", "--levels", "2"]);
    let bias = |t: &serde_json::Value| t["repeat_bias"][0].as_f64().unwrap();
    let t = train_hybrid(&dir, "", "1");
    assert_eq!(t["repeat_bias"], serde_json::json!([]));
    let never = bias(&train_hybrid(&dir, "repeat_bias = true\n", "4"));
    assert!(never < -0.05, "cycle: {never}");
    let data = dir.path().join("data").join("sequences.tsv");
    std::fs::write(data, alternating_sequences(200, 400)).unwrap();
    let returns = bias(&train_hybrid(&dir, "repeat_bias = true\n", "4"));
    assert!(returns > 0.05, "alternating: {returns}");
}

/// `recommend --exclude-history` answers what `recommend` ranks, less the
/// history's own items: the first k of a longer answer without them.
#[test]
fn recommend_can_leave_out_the_history() {
    let dir = cycle_db(&["--tokenizer", "rq-kmeans", "--k", "16", "--levels", "2"]);
    train_hybrid(&dir, "", "6");
    let db = dir.path().join("db").display().to_string();
    let history = ["item0", "item3", "item24"];
    let ask = |k: &str, extra: &[&str]| -> Vec<String> {
        let joined = history.join(",");
        let mut args = vec![
            "recommend",
            "--db",
            &db,
            "--history",
            &joined,
            "--k",
            k,
            "--json",
        ];
        args.extend_from_slice(extra);
        let r = json(&args);
        let items = r["items"].as_array().unwrap();
        items
            .iter()
            .map(|i| i["key"].as_str().unwrap().to_string())
            .collect()
    };
    let all = ask("60", &[]);
    let in_history = |key: &String| history.contains(&key.as_str());
    assert!(
        all.iter().any(in_history),
        "no history item ranked: {all:?}"
    );
    let want: Vec<String> = all
        .iter()
        .filter(|k| !in_history(k))
        .take(10)
        .cloned()
        .collect();
    assert_eq!(ask("10", &["--exclude-history"]), want);
}

/// The parallel retriever on the same rule, over long unordered OPQ SIDs:
/// trained with validation early stopping, evaluated through exact top-k,
/// and served by `recommend`.
#[test]
fn parallel_retriever_learns_the_rule_and_recommends() {
    let dir = cycle_db(&[
        "--tokenizer",
        "opq",
        "--levels",
        "8",
        "--codebook-size",
        "16",
    ]);
    let p = |s: &str| dir.path().join(s).display().to_string();
    let db = p("db");
    let recommend = |args: &[&str]| {
        let mut all = vec!["recommend", "--db", &db];
        all.extend_from_slice(args);
        adasid(&all)
    };
    let (ok, _, err) = recommend(&["--history", "item0"]);
    assert!(
        !ok && err.contains("gen-train --retriever parallel"),
        "{err}"
    );

    std::fs::write(p("par.toml"), SMALL_PARALLEL).unwrap();
    let t = json(&[
        "gen-train",
        "--retriever",
        "parallel",
        "--db",
        &p("db"),
        "--data",
        &p("data"),
        "--config",
        &p("par.toml"),
        "--epochs",
        "30",
        "--json",
    ]);
    let history = t["history"].as_array().unwrap();
    assert_eq!(history.len(), 30);
    let (first, last) = (
        history[0]["loss"].as_f64().unwrap(),
        history[29]["loss"].as_f64().unwrap(),
    );
    assert!(last < first * 0.5, "loss {first} → {last}");
    let best = t["best_valid_ndcg10"].as_f64().unwrap();
    assert!(
        history
            .iter()
            .all(|h| h["valid_ndcg10"].as_f64().unwrap() <= best)
    );

    let e = json(&[
        "gen-eval",
        "--retriever",
        "parallel",
        "--db",
        &p("db"),
        "--data",
        &p("data"),
        "--json",
    ]);
    assert_eq!(e["overall"]["users"], 400);
    let r10 = e["overall"]["recall"][1].as_f64().unwrap();
    assert!(r10 > 0.5, "R@10 {r10}");

    // User 0 walks 0 → 3 → 24 → 171 → ...: after item3 comes item24.
    let (ok, out, err) = recommend(&["--history", "nobody,item0,item3", "--k", "5", "--json"]);
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["skipped_history"], 1);
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert!(items.iter().any(|i| i["key"] == "item24"), "{items:?}");
    let scores: Vec<f64> = items.iter().map(|i| i["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));
    // A snapshot of the database answers exactly as the database does.
    let (ok, _, err) = adasid(&["snapshot", "--db", &db, "--out", &p("snap")]);
    assert!(ok, "{err}");
    let (ok, from_snapshot, err) = recommend(&[
        "--history",
        "nobody,item0,item3",
        "--k",
        "5",
        "--snapshot",
        &p("snap"),
        "--json",
    ]);
    assert!(ok, "{err}");
    let s: serde_json::Value = serde_json::from_str(&from_snapshot).unwrap();
    assert_eq!(s["items"], r["items"]);
    for (args, want) in [
        (vec!["--history", "item0", "--k", "0"], "at least 1"),
        (vec!["--history", " , "], "names no item"),
        (
            vec!["--history", "nobody,ghost"],
            "none of the 2 history keys",
        ),
        (
            vec!["--history", "item0", "--filter", "brand:x"],
            "needs item metadata",
        ),
    ] {
        let (ok, _, err) = recommend(&args);
        assert!(!ok && err.contains(want), "{args:?}: {err}");
    }
}
