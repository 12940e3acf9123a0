//! Opening sled: waiting out its lock, refusing a full disk, and clearing
//! what a killed sled leaves that sled itself would misread.

use std::path::{Path, PathBuf};

use super::store_error;
use crate::error::{Error, Result};

/// Folders this process has opened. sled releases its file lock from a
/// background thread some time after the last handle is dropped (sled issues
/// #1234, #1289), so reopening a folder this process had open waits up to
/// [`REOPEN_WAIT`]; a lock held by another process is reported after
/// [`FOREIGN_WAIT`].
static OPENED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
const REOPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(20);
const FOREIGN_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

/// Free space an open needs. sled writes on every open (recovery, a new
/// snapshot file); run out of space doing so, it can leave a log that it
/// reads as corrupt ever after (seen on a full tmpfs: a `stats` there made
/// the database unreadable once space was back).
const OPEN_ROOM_BYTES: u64 = 1 << 20;

/// Refuses to open a store on a disk with less than [`OPEN_ROOM_BYTES`]
/// available to this process.
pub(super) fn ensure_room(dir: &Path) -> Result<()> {
    let available = fs2::available_space(dir).map_err(|e| Error::io(dir, e))?;
    if available < OPEN_ROOM_BYTES {
        let why = format!(
            "{available} bytes free on its disk; opening needs {OPEN_ROOM_BYTES} for the store's own recovery writes"
        );
        return Err(Error::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::StorageFull, why),
        ));
    }
    Ok(())
}

/// Records that this process had `path` open, so a reopen waits for sled
/// to release its lock rather than report another process's.
pub(super) fn mark_opened(path: &Path) {
    let mut opened = OPENED.lock().unwrap_or_else(|p| p.into_inner());
    if !opened.iter().any(|p| p == path) {
        opened.push(path.to_path_buf());
    }
}

/// Removes the `snap.*.generating` files sled leaves when it is killed
/// while writing one of its snapshots. sled 0.34 takes the newest `snap.*`
/// file on open, a `.generating` one included, and reports an unfinished
/// one as corruption (a killed create did so about once in 150 kills),
/// although its log holds everything and an older snapshot, or none, is
/// enough. Done under the lock sled takes on `db`, so a live writer's file
/// is never touched; best effort, as the open that follows reports what
/// is left.
pub(super) fn remove_unfinished_sled_snapshots(path: &Path) {
    use fs2::FileExt;
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    let unfinished: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snap.") && n.ends_with(".generating"))
        })
        .collect();
    if unfinished.is_empty() {
        return;
    }
    let Ok(log) = std::fs::File::open(path.join("db")) else {
        return;
    };
    if log.try_lock_exclusive().is_err() {
        return; // a live writer: its file is its own
    }
    for file in unfinished {
        let _ = std::fs::remove_file(file);
    }
    let _ = std::fs::File::open(path).and_then(|d| d.sync_all());
    let _ = FileExt::unlock(&log);
}

pub(super) fn open_sled(path: &Path) -> Result<sled::Db> {
    let ours = OPENED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .any(|p| p == path);
    let wait = if ours { REOPEN_WAIT } else { FOREIGN_WAIT };
    let start = std::time::Instant::now();
    let db = loop {
        let opened = sled::Config::new()
            .path(path)
            .mode(sled::Mode::LowSpace)
            // Every commit flushes itself; no background flusher thread is needed.
            .flush_every_ms(None)
            .open();
        match opened {
            Ok(db) => break db,
            Err(sled::Error::Io(io)) if io.to_string().contains("could not acquire lock") => {
                if start.elapsed() >= wait {
                    return Err(Error::Locked {
                        path: path.to_path_buf(),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(sled::Error::Io(io)) => return Err(open_error(path, io)),
            Err(other) => return Err(store_error(other)),
        }
    };
    mark_opened(path);
    Ok(db)
}

/// What an I/O error opening the store at `path` means to the caller.
fn open_error(path: &Path, io: std::io::Error) -> Error {
    match io.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            Error::ReadOnly {
                path: path.to_path_buf(),
            }
        }
        _ => Error::io(path, io),
    }
}
