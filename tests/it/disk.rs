//! A full disk: a small tmpfs, where this machine lets the test mount one
//! (as root; elsewhere the test says it cannot and passes without checking).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use adasid::{Database, NewItem, SidLayout};

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
        assert_eq!(reopened.read().index.len(), 50);
    }
}
