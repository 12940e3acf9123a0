//! `adasid train` and `adasid encode` end to end on a synthetic data folder:
//! train on 90% of a catalogue, encode the other 10% later.

use crate::common::{adasid, catalog, json, sid_text};

use adasid::data::embeddings::{DataSpec, write};
use serde_json::Value;

const CONFIG: &str = "codebook_size = 32\nshared_experts = 1\ncontent_experts = 1\nbehavior_experts = 2\n\
hidden = 64\nwidth = 32\ncode_dim = 16\nepochs = 12\nbatch_size = 256\nkmeans_sample = 1024\n";

#[test]
fn train_on_90_percent_then_encode_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s).display().to_string();
    let all = catalog(1500, 9);
    let spec = DataSpec::default();
    let old: Vec<usize> = (0..1350).collect();
    let new: Vec<usize> = (1350..1500).collect();
    write(&dir.path().join("old"), &all.subset(&old), &spec).unwrap();
    write(&dir.path().join("new"), &all.subset(&new), &spec).unwrap();
    std::fs::write(p("cfg.toml"), CONFIG).unwrap();

    let (ok, out, err) = adasid(&[
        "train",
        "--data",
        &p("old"),
        "--db",
        &p("db"),
        "--config",
        &p("cfg.toml"),
        "--json",
    ]);
    assert!(ok, "{err}");
    // Without a terminal, progress is a line per epoch on stderr, --json or not.
    for epoch in 1..=12 {
        assert!(
            err.contains(&format!("adasid {epoch}/12 ")),
            "epoch {epoch} not reported: {err}"
        );
    }
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (r["steps"].as_u64(), r["step"].as_str()),
        (Some(12), Some("epoch"))
    );
    assert_eq!(r["items"], 1350);
    assert_eq!(r["history"].as_array().unwrap().len(), 12);
    assert!(r["norm_popularity_spearman"].as_f64().unwrap() > 0.0);
    assert!(r["quality"]["collision_rate"].as_f64().unwrap() < 0.5);
    let before = json(&[
        "lookup",
        "--db",
        &p("db"),
        "--prefix",
        "",
        "--limit",
        "100000",
        "--json",
    ]);

    // Training again into the same database is refused before any work.
    let (ok, _, err) = adasid(&[
        "train",
        "--data",
        &p("old"),
        "--db",
        &p("db"),
        "--config",
        &p("cfg.toml"),
    ]);
    assert!(!ok && err.contains("already exists"), "{err}");

    let r = json(&["encode", "--db", &p("db"), "--data", &p("new"), "--json"]);
    assert_eq!(
        (r["inserted"].as_u64(), r["items"].as_u64()),
        (Some(150), Some(1500))
    );
    let after = json(&[
        "lookup",
        "--db",
        &p("db"),
        "--prefix",
        "",
        "--limit",
        "100000",
        "--json",
    ]);
    let sids = |v: &Value| -> std::collections::HashMap<String, String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["key"].as_str().unwrap().to_string(), sid_text(&i["sid"])))
            .collect()
    };
    let (b, a) = (sids(&before), sids(&after));
    for (key, sid) in &b {
        assert_eq!(a.get(key), Some(sid), "existing item {key} changed its SID");
    }
    for i in new {
        let key = format!("item{i}");
        let sid = a.get(&key).unwrap_or_else(|| panic!("{key} missing"));
        let tokens: Vec<&str> = sid.split(',').collect();
        let prefix = tokens[..2].join(",");
        let under = json(&[
            "lookup",
            "--db",
            &p("db"),
            "--prefix",
            &prefix,
            "--limit",
            "100000",
            "--json",
        ]);
        assert!(
            under["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["key"] == key.as_str()),
            "{key} not under {prefix}"
        );
        let next = json(&["next", "--db", &p("db"), "--prefix", &prefix, "--json"]);
        assert!(
            sid_text(&next["next_tokens"])
                .split(',')
                .any(|t| t == tokens[2])
        );
        if i % 50 == 0 {
            let sim = json(&[
                "similar",
                "--db",
                &p("db"),
                "--item",
                &key,
                "--k",
                "5",
                "--mode",
                "overlap",
                "--json",
            ]);
            assert_eq!(sim["candidates"].as_array().unwrap().len(), 5);
        }
    }
}

#[test]
fn popularity_source_and_missing_model() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s).display().to_string();
    let all = catalog(600, 3);
    write(&dir.path().join("data"), &all, &DataSpec::default()).unwrap();
    std::fs::write(p("cfg.toml"), CONFIG.replace("epochs = 12", "epochs = 3")).unwrap();
    let r = json(&[
        "train",
        "--data",
        &p("data"),
        "--db",
        &p("db"),
        "--config",
        &p("cfg.toml"),
        "--n-norm",
        "popularity",
        "--json",
    ]);
    assert_eq!(r["items"], 600);
    // A reopened popularity-based model needs the counts to encode.
    std::fs::remove_file(dir.path().join("data/popularity.npy")).unwrap();
    let (ok, _, err) = adasid(&["encode", "--db", &p("db"), "--data", &p("data")]);
    assert!(!ok && err.contains("popularity"), "{err}");

    // A database of imported tokens has no model to encode with.
    std::fs::write(p("t.tsv"), "a\t1,2\n").unwrap();
    json(&[
        "ingest-tokens",
        "--db",
        &p("tok"),
        "--tokens",
        &p("t.tsv"),
        "--k",
        "4",
        "--json",
    ]);
    let (ok, _, err) = adasid(&["encode", "--db", &p("tok"), "--data", &p("data")]);
    assert!(!ok && err.contains("holds no trained model"), "{err}");
}

#[test]
fn bad_metadata_fails_train_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s).display().to_string();
    write(
        &dir.path().join("data"),
        &catalog(300, 3),
        &DataSpec::default(),
    )
    .unwrap();
    std::fs::write(p("cfg.toml"), CONFIG.replace("epochs = 12", "epochs = 1")).unwrap();
    let items = std::fs::read_to_string(dir.path().join("data/items.txt")).unwrap();
    let first = items.lines().next().unwrap();
    for (name, text) in [
        ("malformed", format!("{{\"asin\": \"{first}\"}}\n{{oops\n")),
        (
            "duplicate",
            format!("{{\"asin\": \"{first}\"}}\n{{\"asin\": \"{first}\"}}\n"),
        ),
    ] {
        std::fs::write(dir.path().join("data/meta.jsonl"), text).unwrap();
        let db = p(name);
        let (ok, _, err) = adasid(&[
            "train",
            "--data",
            &p("data"),
            "--db",
            &db,
            "--config",
            &p("cfg.toml"),
        ]);
        assert!(!ok && err.contains("meta.jsonl:2"), "{name}: {err}");
        assert!(
            !dir.path().join(name).exists(),
            "{name}: no database is left"
        );
    }
}

/// The warning that the behavior norm does not follow popularity (and the
/// advice to take N_norm from popularity) is for a run that takes N_norm
/// from the norm; a run already taking it from popularity is not told to.
#[test]
fn the_norm_warning_is_for_runs_that_use_the_norm() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s).display().to_string();
    let mut data = catalog(300, 4);
    // Popularity falling as the norm rises: Spearman −1.
    let norms = data.behavior_norms();
    data.popularity = Some(norms.iter().map(|n| 1.0 / (1.0 + n)).collect());
    write(&dir.path().join("data"), &data, &DataSpec::default()).unwrap();
    let config = CONFIG.replace("epochs = 12", "epochs = 1");
    std::fs::write(p("cfg.toml"), config).unwrap();
    let (data_dir, cfg) = (p("data"), p("cfg.toml"));
    let train = |db: &str, extra: &[&str]| {
        let db = p(db);
        let base = ["train", "--data", &data_dir, "--db", &db, "--config", &cfg];
        let args = [&base[..], extra].concat();
        let (ok, _, err) = adasid(&args);
        assert!(ok, "{err}");
        err
    };
    let warning = "not positively correlated";
    assert!(train("norm", &[]).contains(warning));
    assert!(!train("pop", &["--n-norm", "popularity"]).contains(warning));
}
