//! Compatibility with checked-in databases, frames and snapshots of older
//! formats (version 1 of each; snapshots of format 2 as well). If one of
//! these fails, the on-disk format changed: bump `codec::FORMAT_VERSION`
//! (or the snapshot's `VERSION`), keep a reader for the old one, and add
//! fixtures.

use std::path::Path;

use adasid::codec::{Kind, Matrix, frame};
use adasid::snapshot::Snapshot;
use adasid::{Database, EMPTY, ReadView, SidIndex};

use crate::common::copy_dir;

#[test]
fn version_1_database_opens_with_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    copy_dir(Path::new("tests/fixtures/v1/db"), &path);
    let db = Database::open(&path).unwrap();
    let layout = db.layout();
    assert_eq!(
        (layout.levels, layout.codebook_size, layout.behavior),
        (3, 8, 1)
    );
    let state = db.read();
    let sid = |key: &str| state.sid(state.id(key).unwrap()).unwrap().0.to_vec();
    assert_eq!(sid("alpha"), vec![1, 2, 3, 0]);
    assert_eq!(sid("beta"), vec![1, 2, EMPTY, 0]);
    assert_eq!(sid("gamma"), vec![4, 5, 6, 0]);
    assert_eq!(sid("delta"), vec![1, 2, 3, 1]);
    assert_eq!(state.sid(state.id("delta").unwrap()).unwrap().1, &[0.25]);
    assert_eq!(&*state.next_tokens(&[1, 2]).unwrap(), &[3, EMPTY]);
}

/// `tests/fixtures/v1/index.snap`: the snapshot of `v1/db` that a build
/// writing snapshot format 1 made.
#[test]
fn version_1_snapshot_opens_with_the_databases_answers() {
    let bytes = std::fs::read("tests/fixtures/v1/index.snap").unwrap();
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    copy_dir(Path::new("tests/fixtures/v1/db"), &path);
    let db = Database::open(&path).unwrap();
    let state = db.read();
    let snap = Snapshot::open(Path::new("tests/fixtures/v1/index.snap")).unwrap();
    snap.verify().unwrap();
    for prefix in [
        &[][..],
        &[1],
        &[1, 2],
        &[1, 2, 3],
        &[1, 2, 3, 1],
        &[4, 5, 6, 0],
        &[7],
    ] {
        assert_eq!(
            SidIndex::items(&snap, prefix).map(|p| p.to_sorted_vec()),
            state.items(prefix).map(|p| p.to_sorted_vec()),
            "items({prefix:?})"
        );
        assert_eq!(
            SidIndex::next_tokens(&snap, prefix).as_deref(),
            state.next_tokens(prefix).as_deref(),
            "next_tokens({prefix:?})"
        );
    }
    for key in ["alpha", "beta", "gamma", "delta"] {
        let id = state.id(key).unwrap();
        assert_eq!(ReadView::id(&snap, key).unwrap(), id);
        assert_eq!(SidIndex::sid(&snap, id), state.sid(id));
    }
}

/// `tests/fixtures/v2/index.snap`: a snapshot of format 2 (no key hash
/// table; six items share a semantic SID of K = 4, so counters reach K)
/// of a database made from `v2/tokens.tsv`. It answers as a database this
/// build makes from the same file, keys included (found by binary search),
/// and so does this build's snapshot of that database (format 3, keys
/// found through the hash table).
#[test]
fn version_2_snapshot_opens_with_the_databases_answers() {
    let bytes = std::fs::read("tests/fixtures/v2/index.snap").unwrap();
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 2);
    let text = std::fs::read_to_string("tests/fixtures/v2/tokens.tsv").unwrap();
    let lines = adasid::data::tokens::parse("tokens.tsv", &text).unwrap();
    let layout = adasid::SidLayout::new(2, 4, 0).unwrap();
    let items = adasid::data::tokens::validate("tokens.tsv", lines, &layout).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (db, _) =
        Database::create_with(&dir.path().join("db"), layout, &items, &[], Vec::new()).unwrap();
    let state = db.read();
    let old = Snapshot::open(Path::new("tests/fixtures/v2/index.snap")).unwrap();
    old.verify().unwrap();
    let new_path = dir.path().join("new.snap");
    db.snapshot(&new_path).unwrap();
    let new = Snapshot::open(&new_path).unwrap();
    assert_eq!(new.as_bytes()[8], adasid::snapshot::VERSION as u8);
    for snap in [&old, &new] {
        for prefix in [&[][..], &[1], &[1, 2], &[1, 2, 5], &[3], &[3, 3, 0], &[0]] {
            assert_eq!(
                SidIndex::items(snap, prefix).map(|p| p.to_sorted_vec()),
                state.items(prefix).map(|p| p.to_sorted_vec()),
                "items({prefix:?})"
            );
            assert_eq!(
                SidIndex::next_tokens(snap, prefix).as_deref(),
                state.next_tokens(prefix).as_deref(),
                "next_tokens({prefix:?})"
            );
        }
        for item in &items {
            let id = state.id(&item.key).unwrap();
            assert_eq!(ReadView::id(snap, &item.key).unwrap(), id, "{}", item.key);
            assert_eq!(SidIndex::sid(snap, id), state.sid(id));
        }
        for absent in ["", "a", "a6", "ключи", "e\0"] {
            assert!(ReadView::id(snap, absent).is_err(), "{absent}");
        }
    }
    assert_eq!(state.sid(state.id("a5").unwrap()).unwrap().0, &[1, 2, 5]);
}

#[test]
fn version_1_matrix_frame_is_stable() {
    let m = Matrix::new(2, 3, vec![0.0, 1.5, -2.0, 3.25, f32::MIN_POSITIVE, 1e9]).unwrap();
    let bytes = std::fs::read("tests/fixtures/v1/matrix.bin").unwrap();
    assert_eq!(Matrix::decode(&bytes).unwrap(), m);
    assert_eq!(m.encode(), bytes, "matrix encoding changed");
    assert!(frame::decode(Kind::Matrix, &bytes).is_ok());
}

/// Writes the matrix fixture (run once with `--ignored` when adding a format version).
#[test]
#[ignore = "writes fixtures"]
fn write_matrix_fixture() {
    let m = Matrix::new(2, 3, vec![0.0, 1.5, -2.0, 3.25, f32::MIN_POSITIVE, 1e9]).unwrap();
    std::fs::write("tests/fixtures/v1/matrix.bin", m.encode()).unwrap();
}

#[test]
fn newer_format_version_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    copy_dir(Path::new("tests/fixtures/v1/db"), &path);
    {
        // Rewrite the layout frame as a future version 2 would (valid checksum, newer version).
        let raw = sled::open(&path).unwrap();
        let mut bytes = raw.get(b"m/layout").unwrap().unwrap().to_vec();
        bytes[5..7].copy_from_slice(&2u16.to_le_bytes());
        let body = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
        raw.insert(b"m/layout", bytes).unwrap();
        raw.flush().unwrap();
    }
    let err = Database::open(&path)
        .err()
        .expect("a version-2 database must be refused");
    assert!(
        matches!(
            err,
            adasid::Error::VersionMismatch {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("format version 2"), "{err}");
}

#[test]
fn damaged_record_is_reported_as_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    copy_dir(Path::new("tests/fixtures/v1/db"), &path);
    {
        let raw = sled::open(&path).unwrap();
        let key = [b'c', b'/', 0, 0, 0, 0];
        let mut bytes = raw.get(key).unwrap().unwrap().to_vec();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x10;
        raw.insert(key, bytes).unwrap();
        raw.flush().unwrap();
    }
    let err = Database::open(&path)
        .err()
        .expect("a damaged chunk must be refused");
    assert!(matches!(err, adasid::Error::DataCorruption { .. }), "{err}");
}
