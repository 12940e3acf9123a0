//! SIGKILL of the `adasid` program on every write path, at random moments:
//! an ingest into an existing database (in batches), `meta`, `snapshot` and
//! `train` into a new folder. After each kill the database opens with the
//! old or the new state of what was killed (whole batches), its published
//! view agrees, the same command then succeeds, and nothing is left over.
//!
//! `ADASID_CRASH_TRIALS` sets the kills per path (default 4; the long run
//! in `docs/RESULTS.md` used 100).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adasid::data::embeddings::{DataSpec, write};
use adasid::snapshot::Snapshot;
use adasid::{Database, ReadView, Reader, SidIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::common::{catalog, trials};

const ITEMS: usize = 3000;
const BATCH: usize = 500;

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_adasid"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn run(args: &[&str]) {
    assert!(spawn(args).wait().unwrap().success(), "{args:?}");
}

/// How long `args` takes when left alone (the window kills are drawn from).
fn duration(args: &[&str], undo: impl Fn()) -> Duration {
    let t = Instant::now();
    run(args);
    let d = t.elapsed();
    undo();
    d
}

/// Kills `args` after a random share of `window`, `trials()` times; after
/// each kill `check(trial)` checks the state and names what it found,
/// tallied on stderr.
fn kill_at_random(
    args: &[&str],
    window: Duration,
    seed: u64,
    mut check: impl FnMut(usize) -> &'static str,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut found = std::collections::BTreeMap::new();
    for trial in 0..trials(4) {
        let mut child = spawn(args);
        std::thread::sleep(window.mul_f64(rng.gen_range(0.0..1.2)));
        let _ = child.kill();
        child.wait().unwrap();
        *found.entry(check(trial)).or_insert(0) += 1;
    }
    eprintln!("{} (window {window:?}): {found:?}", args[0]);
}

fn tokens(dir: &Path, name: &str, shift: usize) -> String {
    let text: String = (0..ITEMS)
        .map(|i| {
            let j = i + shift;
            format!("k{i}\t{},{},{}\n", j % 256, j / 256 % 256, j * 7 % 256)
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Items of `view` whose SID is what the file shifted by `shift` gives them.
fn count_shifted(view: &dyn ReadView, shift: usize) -> usize {
    (0..ITEMS)
        .filter(|&i| {
            let j = i + shift;
            let want = [
                (j % 256) as u16,
                (j / 256 % 256) as u16,
                (j * 7 % 256) as u16,
            ];
            let id = view.id(&format!("k{i}")).expect("every key stays");
            view.sid(id).is_some_and(|(sid, _)| sid[..3] == want)
        })
        .count()
}

#[test]
fn a_killed_batched_ingest_leaves_whole_batches_in_the_store_and_the_published_view() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let d = db.to_str().unwrap();
    let old = tokens(dir.path(), "old.tsv", 0);
    let new = tokens(dir.path(), "new.tsv", 1);
    run(&["ingest-tokens", "--db", d, "--tokens", &old, "--k", "256"]);
    let args = [
        "ingest-tokens",
        "--db",
        d,
        "--tokens",
        &new,
        "--batch",
        "500",
    ];
    let window = duration(&args, || {
        run(&["ingest-tokens", "--db", d, "--tokens", &old])
    });
    kill_at_random(&args, window, 1, |trial| {
        // Published view first, as the kill left it: whole batches.
        let reader = Reader::open(&db).unwrap();
        let view = reader.view();
        let moved = count_shifted(view.get(), 1);
        assert_eq!(moved % BATCH, 0, "trial {trial}: {moved} re-encoded");
        assert_eq!(moved + count_shifted(view.get(), 0), ITEMS, "trial {trial}");
        drop(view);
        drop(reader);
        let store = Database::open(&db).unwrap();
        let stored = count_shifted(&*store.read(), 1);
        assert_eq!(stored % BATCH, 0, "trial {trial}: store {stored}");
        assert!(
            stored >= moved,
            "trial {trial}: published {moved} > stored {stored}"
        );
        drop(store);
        run(&["ingest-tokens", "--db", d, "--tokens", &old]);
        match stored {
            0 => "none",
            ITEMS => "all",
            _ => "some batches",
        }
    });
}

/// The database `d` of the catalogue `tokens(dir, "t.tsv", 0)` writes.
fn ingest_catalogue(dir: &Path, d: &str) {
    let t = tokens(dir, "t.tsv", 0);
    run(&["ingest-tokens", "--db", d, "--tokens", &t, "--k", "256"]);
}

#[test]
fn a_killed_meta_leaves_the_old_or_the_new_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let d = db.to_str().unwrap();
    ingest_catalogue(dir.path(), d);
    let meta = |name: &str, brand: &str| {
        let text: String = (0..ITEMS)
            .map(|i| format!("{{\"asin\":\"k{i}\",\"brand\":\"{brand}\"}}\n"))
            .collect();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (old, new) = (meta("old.jsonl", "acme"), meta("new.jsonl", "zenith"));
    run(&["meta", "--db", d, "--file", &old]);
    let args = ["meta", "--db", d, "--file", &new];
    let window = duration(&args, || run(&["meta", "--db", d, "--file", &old]));
    kill_at_random(&args, window, 2, |trial| {
        let store = Database::open(&db).unwrap();
        let acme = store.search(&[], Some("brand:acme")).unwrap().len();
        let zenith = store.search(&[], Some("brand:zenith")).unwrap().len();
        assert!(
            (acme, zenith) == (ITEMS, 0) || (acme, zenith) == (0, ITEMS),
            "trial {trial}: {acme} old, {zenith} new"
        );
        drop(store);
        run(&["meta", "--db", d, "--file", &old]);
        if zenith == 0 { "old" } else { "new" }
    });
}

#[test]
fn a_killed_snapshot_leaves_no_file_or_a_whole_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let d = db.to_str().unwrap();
    ingest_catalogue(dir.path(), d);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let snap = out.join("s.snap");
    let s = snap.to_str().unwrap();
    let args = ["snapshot", "--db", d, "--out", s];
    let window = duration(&args, || std::fs::remove_file(&snap).unwrap());
    kill_at_random(&args, window, 3, |trial| {
        let written = snap.exists();
        if written {
            let file = Snapshot::open(&snap).unwrap();
            file.verify().unwrap();
            assert_eq!(SidIndex::len(&file), ITEMS as u64, "trial {trial}");
            std::fs::remove_file(&snap).unwrap();
        }
        run(&args);
        let left: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("s.snap")],
            "trial {trial}"
        );
        std::fs::remove_file(&snap).unwrap();
        if written { "whole file" } else { "no file" }
    });
}

#[test]
fn a_killed_train_leaves_no_database_or_a_whole_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write(&data, &catalog(600, 4), &DataSpec::default()).unwrap();
    let cfg = dir.path().join("cfg.toml");
    std::fs::write(
        &cfg,
        "codebook_size = 32\nshared_experts = 1\ncontent_experts = 1\nbehavior_experts = 1\n\
         hidden = 32\nwidth = 16\ncode_dim = 8\nepochs = 2\nbatch_size = 256\nkmeans_sample = 512\n",
    )
    .unwrap();
    let db = dir.path().join("db");
    let (d, data, cfg) = (
        db.to_str().unwrap(),
        data.to_str().unwrap(),
        cfg.to_str().unwrap(),
    );
    let args = ["train", "--db", d, "--data", data, "--config", cfg];
    let window = duration(&args, || std::fs::remove_dir_all(&db).unwrap());
    kill_at_random(&args, window, 4, |trial| {
        let created = db.exists();
        if created {
            let reader = Reader::open(&db).unwrap();
            assert_eq!(reader.view().get().len(), 600, "trial {trial}");
            drop(reader);
            std::fs::remove_dir_all(&db).unwrap();
        }
        run(&args);
        std::fs::remove_dir_all(&db).unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "trial {trial}: {left:?}");
        if created {
            "whole database"
        } else {
            "no database"
        }
    });
}
