//! Tokenizers, evaluation and comparison: every tokenizer round-trips through
//! the store; leave-one-out ranks on a hand-built database; `train
//! --tokenizer`, `eval` and `compare` end to end on a synthetic data folder.

use crate::common::{adasid, catalog, json};

use adasid::SidIndex;
use adasid::data::embeddings::{DataSpec, Dataset, write};
use adasid::eval::{RankMetrics, Split, Task, recon_error};
use adasid::pipeline;
use adasid::tokenizer::{
    AdaSidConfig, Inputs, ItemIdConfig, OpqConfig, RqKmeansConfig, RqVaeConfig, Tokenizer,
    TokenizerConfig,
};
use adasid::{CandidateMode, Database, NewItem, SidLayout};
use candle_core::Device;

fn small_adasid() -> AdaSidConfig {
    AdaSidConfig::from_toml(
        "test",
        "codebook_size = 32\nshared_experts = 1\ncontent_experts = 1\nbehavior_experts = 2\n\
         hidden = 64\nwidth = 32\ncode_dim = 16\nepochs = 4\nbatch_size = 256\nkmeans_sample = 1024\n",
    )
    .unwrap()
}

fn small_rq_vae(inputs: Inputs) -> RqVaeConfig {
    RqVaeConfig {
        codebook_size: 32,
        hidden: vec![32],
        latent: 8,
        epochs: 4,
        inputs,
        ..Default::default()
    }
}

fn small_rq_kmeans(levels: usize) -> RqKmeansConfig {
    RqKmeansConfig {
        levels,
        codebook_size: 32,
        ..Default::default()
    }
}

#[test]
fn every_tokenizer_round_trips_through_the_store() {
    let data = catalog(600, 3);
    let configs = [
        TokenizerConfig::AdaSid(small_adasid()),
        TokenizerConfig::RqKmeans(small_rq_kmeans(3)),
        TokenizerConfig::RqVae(small_rq_vae(Inputs::Content)),
        TokenizerConfig::RqVae(small_rq_vae(Inputs::All)),
        // LETTER: the same RQ-VAE with its two regularisers.
        TokenizerConfig::RqVae(RqVaeConfig {
            collaborative: 0.1,
            diversity: 1e-4,
            ..small_rq_vae(Inputs::Content)
        }),
        // MM-RQ-VAE: a residual quantiser per modality (two content, behavior);
        // three encoders with 12 steps between them reconstruct nothing yet.
        TokenizerConfig::RqVae(RqVaeConfig {
            per_modality: true,
            epochs: 16,
            ..small_rq_vae(Inputs::All)
        }),
        // 40 content columns in 8 sub-spaces of 5: a long, unordered SID.
        TokenizerConfig::Opq(OpqConfig {
            subspaces: 8,
            codebook_size: 16,
            rotations: 3,
            ..Default::default()
        }),
        TokenizerConfig::ItemIds(ItemIdConfig::default()),
    ];
    for cfg in configs {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let built = pipeline::train_database(&path, &cfg, &data, &[], Device::Cpu, |_| {}).unwrap();
        let recon = built.recon(&data).unwrap();
        let model = built.trained.tokenizer;
        let items = model.encode(&data).unwrap();
        assert_eq!(built.report.inserted, items.len());
        drop(built.db);
        // The blobs a training run returns load the same model without a database.
        let blobs = model.to_blobs().unwrap();
        let from_blobs = Tokenizer::from_blobs(blobs.as_slice(), Device::Cpu).unwrap();
        assert_eq!(from_blobs.encode(&data).unwrap(), items);

        let db = Database::open(&path).unwrap();
        let loaded = Tokenizer::from_blobs(&db, Device::Cpu).unwrap();
        assert_eq!(loaded.name(), model.name());
        assert_eq!(loaded.layout(), model.layout());
        let again = loaded.encode(&data).unwrap();
        assert_eq!(
            again,
            items,
            "{}: stored model encodes the same SIDs",
            model.name()
        );
        let state = db.read();
        let levels = model.layout().levels();
        for item in &items {
            let (sid, weights) = state.sid(state.id(&item.key).unwrap()).unwrap();
            assert_eq!(&sid[..levels], &item.tokens[..]);
            assert_eq!(weights, &item.weights[..]);
        }
        let recon_again = loaded
            .reconstruct(&data)
            .unwrap()
            .map(|r| recon_error(&data, &r).unwrap());
        assert_eq!(recon_again, recon);
        // Item ids reconstruct nothing; every other tokenizer does.
        let Some(recon) = recon else {
            assert!(matches!(cfg, TokenizerConfig::ItemIds(_)));
            continue;
        };
        // Only tokenizers that read behavior reconstruct it.
        let reads_behavior = match &cfg {
            TokenizerConfig::RqVae(c) => c.inputs == Inputs::All,
            TokenizerConfig::Opq(c) => c.inputs == Inputs::All,
            _ => true,
        };
        assert_eq!(recon.behavior.is_some(), reads_behavior, "{}", model.name());
        assert!(recon.content > 0.0 && recon.content < 2.0, "{recon:?}");
    }
}

/// LETTER's regularisers change what the RQ-VAE learns (the same seed
/// without them gives other SIDs), and a catalogue without behavior
/// embeddings is refused rather than trained without the collaborative term.
#[test]
fn letter_regularisers_shape_the_rq_vae() {
    let data = catalog(600, 3);
    let plain = small_rq_vae(Inputs::Content);
    let letter = RqVaeConfig {
        collaborative: 1.0,
        diversity: 0.1,
        ..plain.clone()
    };
    let sids = |c: &RqVaeConfig| {
        let (model, history) =
            adasid::tokenizer::RqVae::train(c.clone(), &data, Device::Cpu, |_| {}).unwrap();
        assert!(
            history
                .iter()
                .all(|e| e.recon.is_finite() && e.vq.is_finite())
        );
        model.encode(&data).unwrap()
    };
    assert_ne!(sids(&plain), sids(&letter));
    let mut no_behavior = catalog(600, 3);
    no_behavior.behavior.dim = 0;
    no_behavior.behavior.data.clear();
    let err = adasid::tokenizer::RqVae::train(letter, &no_behavior, Device::Cpu, |_| {})
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("behavior embedding"), "{err}");
}

/// MM-RQ-VAE quantises each modality by itself: `levels` tokens per
/// modality, and changing one modality's embeddings changes only that
/// modality's tokens. It does not combine with LETTER's regularisers.
#[test]
fn mm_rq_vae_tokens_follow_their_own_modality() {
    let data = catalog(600, 3);
    let cfg = RqVaeConfig {
        per_modality: true,
        ..small_rq_vae(Inputs::All)
    };
    let (model, _) =
        adasid::tokenizer::RqVae::train(cfg.clone(), &data, Device::Cpu, |_| {}).unwrap();
    assert_eq!(model.layout().levels(), 3 * cfg.levels);
    let before = model.encode(&data).unwrap();
    let mut shifted = data.clone();
    shifted.behavior.data.iter_mut().for_each(|x| *x = -*x);
    let after = model.encode(&shifted).unwrap();
    let content = 2 * cfg.levels;
    let changed = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b.tokens[content..] != a.tokens[content..])
        .count();
    assert!(
        changed > 300,
        "behavior tokens of {changed} of 600 items changed"
    );
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b.tokens[..content], a.tokens[..content], "{}", b.key);
    }
    let letter = RqVaeConfig {
        collaborative: 0.1,
        ..cfg
    };
    let err = letter.validate().unwrap_err().to_string();
    assert!(err.contains("per_modality"), "{err}");
}

#[test]
fn rq_kmeans_error_falls_with_each_level() {
    let data = catalog(1500, 5);
    let errors: Vec<f64> = (1..=3)
        .map(|levels| {
            let cfg = TokenizerConfig::RqKmeans(small_rq_kmeans(levels));
            let model = cfg.train(&data, Device::Cpu, |_| {}).unwrap().tokenizer;
            recon_error(&data, &model.reconstruct(&data).unwrap().unwrap())
                .unwrap()
                .content
        })
        .collect();
    assert!(errors.windows(2).all(|w| w[1] < w[0]), "{errors:?}");
}

#[test]
fn leave_one_out_ranks_on_a_hand_built_database() {
    let dir = tempfile::tempdir().unwrap();
    let item = |key: &str, tokens: Vec<u16>| NewItem {
        key: key.into(),
        tokens,
        weights: vec![],
    };
    // From `a`, prefix backoff ranks b (shares 2 tokens), c (1), d (0).
    let items = [
        item("a", vec![1, 2, 3]),
        item("b", vec![1, 2, 4]),
        item("c", vec![1, 5, 6]),
        item("d", vec![7, 8, 9]),
    ];
    let layout = SidLayout::new(3, 16, 0).unwrap();
    let (db, _) =
        Database::create_with(&dir.path().join("db"), layout, &items, &[], vec![]).unwrap();
    let state = db.read();
    let ids: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|k| state.find(k))
        .collect();
    // Catalogue rows 0..=4 = a, b, c, d, e (e not stored). Test target = last item.
    let sequences = vec![
        vec![3, 2, 0, 1], // a → b: rank 0
        vec![1, 3, 0, 2], // a → c: rank 1
        vec![1, 2, 0, 3], // a → d: rank 2
        vec![0, 1, 3, 4], // target e not stored: skipped
        vec![0, 1],       // too short: not counted
    ];
    let quartiles = [0u8, 0, 1, 3, 3];
    let task = Task {
        state: &*state,
        ids: &ids,
        sequences: &sequences,
        quartiles: &quartiles,
        split: Split::Test,
        cutoffs: &[1, 2, 3],
    };
    let r = task.run(CandidateMode::Prefix);
    assert_eq!(r.skipped, 1);
    let expect = |users: usize, recall: [f64; 3], ndcg: [f64; 3]| RankMetrics {
        users,
        cutoffs: vec![1, 2, 3],
        recall: recall.to_vec(),
        ndcg: ndcg.to_vec(),
    };
    let (g0, g1, g2) = (1.0, 1.0 / 3f64.log2(), 0.5);
    let third = 1.0 / 3.0;
    let m = &r.overall;
    assert_eq!(m.users, 3);
    for (got, want) in m.recall.iter().zip([third, 2.0 * third, 1.0]) {
        assert!((got - want).abs() < 1e-12, "{m:?}");
    }
    for (got, want) in m
        .ndcg
        .iter()
        .zip([g0 / 3.0, (g0 + g1) / 3.0, (g0 + g1 + g2) / 3.0])
    {
        assert!((got - want).abs() < 1e-12, "{m:?}");
    }
    // Quartile of the target: b → 0, c → 1, d → 3.
    assert_eq!(r.quartiles[0], expect(1, [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]));
    assert_eq!(r.quartiles[1], expect(1, [0.0, 1.0, 1.0], [0.0, g1, g1]));
    assert_eq!(r.quartiles[2].users, 0);
    assert_eq!(r.quartiles[3], expect(1, [0.0, 0.0, 1.0], [0.0, 0.0, g2]));
    // The validation split targets the second-to-last item: a in each case,
    // queried from the item before it.
    let v = Task {
        split: Split::Validation,
        ..task
    }
    .run(CandidateMode::Prefix);
    assert_eq!(v.overall.users + v.skipped, 4);
}

/// Sequences whose items are content neighbours of each other, so a
/// tokenizer that keeps content structure should retrieve far above chance.
fn neighbour_sequences(data: &Dataset, users: usize) -> String {
    let text = &data.content[0];
    let cos = |a: usize, b: usize| -> f32 {
        text.row(a)
            .iter()
            .zip(text.row(b))
            .map(|(x, y)| x * y)
            .sum()
    };
    let mut out = String::new();
    for u in 0..users {
        let start = (u * 7919) % data.len();
        let mut near: Vec<usize> = (0..data.len()).filter(|&j| j != start).collect();
        near.sort_by(|&a, &b| cos(start, b).total_cmp(&cos(start, a)));
        let seq: Vec<String> = [near[2], near[1], start, near[0]]
            .iter()
            .map(|i| i.to_string())
            .collect();
        out += &format!("{u}\t{}\n", seq.join(" "));
    }
    out
}

#[test]
fn train_eval_and_compare_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s).display().to_string();
    let data = catalog(1000, 11);
    write(&dir.path().join("data"), &data, &DataSpec::default()).unwrap();
    std::fs::write(p("data/sequences.tsv"), neighbour_sequences(&data, 300)).unwrap();

    let r = json(&[
        "train",
        "--tokenizer",
        "rq-kmeans",
        "--k",
        "32",
        "--levels",
        "3",
        "--data",
        &p("data"),
        "--db",
        &p("rqk"),
        "--json",
    ]);
    assert_eq!(r["tokenizer"], "rq-kmeans");
    assert_eq!(
        (r["steps"].as_u64(), r["step"].as_str()),
        (Some(3), Some("level"))
    );
    assert!(r["quality"]["recon"]["behavior"].is_number());

    let e = json(&["eval", "--db", &p("rqk"), "--data", &p("data"), "--json"]);
    assert_eq!(e["tokenizer"], "rq-kmeans");
    let modes = e["retrieval"].as_array().unwrap();
    assert_eq!(modes.len(), 2);
    for m in modes {
        let users = m["overall"]["users"].as_u64().unwrap();
        assert_eq!(users, 300);
        let per_quartile: u64 = m["quartiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["users"].as_u64().unwrap())
            .sum();
        assert_eq!(per_quartile, users);
        // Chance is 100 / 999 ≈ 0.1 at R@100; neighbours must do far better.
        let r100 = m["overall"]["recall"][2].as_f64().unwrap();
        assert!(r100 > 0.5, "{}: R@100 {r100}", m["mode"]);
    }

    // The same SIDs imported without a model: retrieval figures only, and
    // the same ones.
    let (ok, tsv, err) = adasid(&["export", "--db", &p("rqk"), "--format", "tsv"]);
    assert!(ok, "{err}");
    std::fs::write(p("sids.tsv"), tsv).unwrap();
    json(&[
        "ingest-tokens",
        "--db",
        &p("imported"),
        "--tokens",
        &p("sids.tsv"),
        "--json",
    ]);
    let i = json(&[
        "eval",
        "--db",
        &p("imported"),
        "--data",
        &p("data"),
        "--json",
    ]);
    assert_eq!(i["tokenizer"], "imported");
    assert!(i["quantization"]["recon"].is_null());
    assert_eq!(i["retrieval"], e["retrieval"]);

    // Options that do not fit the tokenizer are refused before any work.
    let (ok, _, err) = adasid(&[
        "train",
        "--data",
        &p("data"),
        "--db",
        &p("x"),
        "--levels",
        "3",
    ]);
    assert!(
        !ok && err.contains("--levels does not apply to --tokenizer adasid"),
        "{err}"
    );
    let (ok, _, err) = adasid(&[
        "train",
        "--tokenizer",
        "rq-kmeans",
        "--data",
        &p("data"),
        "--db",
        &p("x"),
        "--epochs",
        "3",
    ]);
    assert!(!ok && err.contains("--epochs"), "{err}");
    assert!(!dir.path().join("x").exists());
    // OPQ: sub-spaces must divide the input width (the data folder's
    // content is 40 columns wide); a fitting count trains and stores.
    let opq = |levels: &str, db: &str| {
        adasid(&[
            "train",
            "--tokenizer",
            "opq",
            "--levels",
            levels,
            "--codebook-size",
            "8",
            "--data",
            &p("data"),
            "--db",
            &p(db),
            "--json",
        ])
    };
    let (ok, _, err) = opq("7", "x");
    assert!(
        !ok && err.contains("not a multiple of subspaces = 7"),
        "{err}"
    );
    assert!(!dir.path().join("x").exists());
    let (ok, out, err) = opq("10", "opq");
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (r["tokenizer"].as_str(), r["step"].as_str()),
        (Some("opq"), Some("fit"))
    );
    assert_eq!(r["quality"]["utilisation"].as_array().unwrap().len(), 10);

    // A bad sequences file names its line.
    std::fs::write(p("data/bad.tsv"), "0\t1 2 3\n1\t4 5 100000\n").unwrap();
    let (ok, _, err) = adasid(&[
        "eval",
        "--db",
        &p("rqk"),
        "--data",
        &p("data"),
        "--sequences",
        "bad.tsv",
    ]);
    assert!(
        !ok && err.contains("bad.tsv:2:") && err.contains("out of range"),
        "{err}"
    );

    let c = json(&[
        "compare",
        "--data",
        &p("data"),
        "--epochs",
        "2",
        "--only",
        "adasid,rq-kmeans,rq-vae",
        "--out",
        &p("cmp"),
        "--json",
    ]);
    let rows = c["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["adasid", "rq-kmeans", "rq-vae"]);
    for r in rows {
        for mode in ["prefix", "overlap"] {
            assert_eq!(r["modes"][mode]["recall"].as_array().unwrap().len(), 3);
            assert!(r["modes"][mode]["tail_recall_100"].is_number());
        }
        assert!(r["train_seconds"].as_f64().unwrap() > 0.0);
        assert!(
            dir.path()
                .join("cmp")
                .join(r["name"].as_str().unwrap())
                .exists()
        );
    }
    let (ok, _, err) = adasid(&["compare", "--data", &p("data"), "--only", "nope"]);
    assert!(!ok && err.contains("--only nope"), "{err}");
}
