//! A full disk: a small tmpfs, where this machine lets the test mount one
//! (as root; elsewhere the test says it cannot and passes without checking).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use adasid::SidIndex;
use adasid::{Database, NewItem, SidLayout};

use crate::common::tree_bytes;

struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_tmpfs(at: &Path, size: &str) -> Option<Mounted> {
    std::fs::create_dir_all(at).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .status()
        .is_ok_and(|s| s.success());
    ok.then(|| Mounted(at.to_path_buf()))
}

/// Writes zeros to `path` until the disk is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).and_then(|_| f.sync_all()).is_ok() {}
}

#[test]
fn a_full_disk_refuses_an_open_and_never_damages_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mnt) = mount_tmpfs(&dir.path().join("mnt"), "4m") else {
        eprintln!("cannot mount a tmpfs here: the full-disk check did not run");
        return;
    };
    let db = mnt.0.join("db");
    let items: Vec<NewItem> = (0..50)
        .map(|i| NewItem {
            key: format!("k{i}"),
            tokens: vec![i % 8, i / 8 % 8],
            weights: vec![],
        })
        .collect();
    drop(
        Database::create_with(&db, SidLayout::new(2, 8, 0).unwrap(), &items, &[], vec![]).unwrap(),
    );
    let pad = mnt.0.join("pad");
    for round in 0..3 {
        fill(&pad);
        // Before the room check, sled's recovery writes here left a log it
        // then read as corrupt once space was back.
        let err = Database::open(&db).err().expect("no room to open");
        assert!(err.to_string().contains("opening needs 1048576"), "{err}");
        std::fs::remove_file(&pad).unwrap();
        let reopened = Database::open(&db).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(reopened.read().len(), 50);
    }
}

/// Runs the binary as an unprivileged user: itself when it is not root,
/// `nobody` through setpriv when it is. `None` when root cannot drop.
fn run_unprivileged(args: &[&str]) -> Option<std::process::Output> {
    let exe = env!("CARGO_BIN_EXE_adasid");
    let root = Command::new("id").arg("-u").output().ok()?.stdout == b"0\n";
    let mut cmd = match root {
        false => Command::new(exe),
        true => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", exe]);
            c
        }
    };
    cmd.args(args).output().ok()
}

/// Sets `path` and everything under it to `mode` (folders also traversable).
fn chmod_tree(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.is_dir();
    let m = if dir { mode | 0o111 } else { mode };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
    if dir {
        for e in std::fs::read_dir(path).unwrap() {
            chmod_tree(&e.unwrap().path(), mode);
        }
    }
}

#[test]
fn a_read_only_database_is_read_from_its_published_view_or_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let items: Vec<NewItem> = (0..20)
        .map(|i| NewItem {
            key: format!("k{i}"),
            tokens: vec![i % 4, i / 4],
            weights: vec![],
        })
        .collect();
    drop(
        Database::create_with(&db, SidLayout::new(2, 8, 0).unwrap(), &items, &[], vec![]).unwrap(),
    );
    let db_arg = db.display().to_string();
    // Its published view needs read access only.
    chmod_tree(dir.path(), 0o444);
    let before = tree_bytes(&db);
    let Some(out) = run_unprivileged(&["stats", "--db", &db_arg, "--json"]) else {
        chmod_tree(dir.path(), 0o644);
        eprintln!("cannot run as an unprivileged user here: the read-only check did not run");
        return;
    };
    chmod_tree(dir.path(), 0o644);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["items"], 20);
    assert_eq!(tree_bytes(&db), before);
    // Without one (a database from before publication), the store is needed.
    std::fs::remove_dir_all(db.join("published")).unwrap();
    chmod_tree(dir.path(), 0o444);
    let before = tree_bytes(&db);
    let out = run_unprivileged(&["stats", "--db", &db_arg, "--json"]).unwrap();
    chmod_tree(dir.path(), 0o644);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let e: serde_json::Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(e["error"]["kind"], "ReadOnly", "{err}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--snapshot"),
        "{err}"
    );
    assert_eq!(tree_bytes(&db), before);
}

/// Metadata written on a disk with little room, at fill levels around what
/// the store commit, the metadata index and the published view need: the
/// write either returns `Ok`, with the metadata durable and searchable
/// once reopened (repaired there if the index update failed), or fails and
/// nothing changed; the database opens every time once space is back.
#[test]
fn metadata_on_a_nearly_full_disk_is_all_or_nothing() {
    const ITEMS: usize = 3000;
    let dir = tempfile::tempdir().unwrap();
    let Some(mnt) = mount_tmpfs(&dir.path().join("mnt"), "32m") else {
        eprintln!("cannot mount a tmpfs here: the full-disk check did not run");
        return;
    };
    let db = mnt.0.join("db");
    let items: Vec<NewItem> = (0..ITEMS)
        .map(|i| NewItem {
            key: format!("k{i}"),
            tokens: vec![(i % 16) as u16, (i / 16 % 16) as u16, (i / 256 % 16) as u16],
            weights: vec![],
        })
        .collect();
    drop(
        Database::create_with(&db, SidLayout::new(3, 16, 0).unwrap(), &items, &[], vec![]).unwrap(),
    );
    let pad = mnt.0.join("pad");
    let mut outcomes = Vec::new();
    for (round, free_kib) in [
        0u64, 900, 1400, 2300, 3600, 3750, 3900, 4050, 4200, 4350, 6000, 12000,
    ]
    .into_iter()
    .enumerate()
    {
        let brand = format!("brand{round}");
        // About 2 MB of metadata: more than the 1 MiB an open requires.
        let meta: String = (0..ITEMS)
            .map(|i| {
                let title: Vec<String> = (0..120)
                    .map(|w| format!("w{}", (i * 31 + w) % 997))
                    .collect();
                format!(
                    "{{\"asin\":\"k{i}\",\"brand\":\"{brand}\",\"title\":\"{}\"}}\n",
                    title.join(" ")
                )
            })
            .collect();
        let file = dir.path().join("m.jsonl");
        std::fs::write(&file, meta).unwrap();
        fill(&pad);
        let len = std::fs::metadata(&pad).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&pad)
            .unwrap()
            .set_len(len.saturating_sub(free_kib * 1024))
            .unwrap();
        let meta = adasid::data::meta::read(&file, None).unwrap();
        let outcome = match Database::open(&db) {
            Err(_) => "open refused",
            Ok(d) => match d.set_meta(&meta) {
                Err(_) => "write failed",
                Ok(_) if d.health().filters_stale.is_some() => "committed, index repaired later",
                Ok(_) if d.health().published_stale.is_some() => "committed, published later",
                Ok(_) => "committed",
            },
        };
        std::fs::remove_file(&pad).unwrap();
        let reopened = Database::open(&db).unwrap_or_else(|e| panic!("{free_kib} KiB: {e}"));
        let found = reopened
            .search(&[], Some(&format!("brand:{brand}")))
            .unwrap()
            .len();
        let want = if outcome.starts_with("committed") {
            ITEMS
        } else {
            0
        };
        assert_eq!(found, want, "{free_kib} KiB, {outcome}: {found} found");
        drop(reopened);
        let reader = adasid::Reader::open(&db).unwrap();
        assert!(!reader.lagging());
        assert_eq!(reader.view().get().len(), ITEMS as u64, "{free_kib} KiB");
        outcomes.push((free_kib, outcome));
    }
    eprintln!("free KiB, outcome: {outcomes:?}");
}
