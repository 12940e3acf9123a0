//! Temporary files and folders named for the process writing them
//! (`PREFIX` + pid + `-`…), and removing those whose writer no longer runs
//! (killed mid-write): on Linux `/proc` tells which processes run; elsewhere
//! nothing is removed.

use std::path::{Path, PathBuf};

/// `PREFIX{pid}-` for this process: what its temporary names start with.
pub(crate) fn own_prefix(prefix: &str) -> String {
    format!("{prefix}{}-", std::process::id())
}

/// `dir/PREFIX{pid}-` for this process.
#[cfg(any(feature = "store", test))]
pub(crate) fn own_name(dir: &Path, prefix: &str) -> PathBuf {
    dir.join(own_prefix(prefix))
}

/// A temporary file in `dir` named for this process (see [`own_prefix`]),
/// created like any file (0666 less the umask), so that a reader running
/// as another user can open it once it is renamed into place.
pub(crate) fn temp_file(dir: &Path, prefix: &str) -> std::io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    let prefix = own_prefix(prefix);
    builder.prefix(&prefix);
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    builder.tempfile_in(dir)
}

/// Replaces `path` with what `fill` writes, so that `path` is always the
/// old file or the whole new one: a temporary file beside it (named
/// `prefix` + this pid; what dead writers left under that prefix is removed
/// first), fsynced, renamed over `path`, the folder fsynced. Returns the
/// new file's size.
pub(crate) fn replace(
    path: &Path,
    prefix: &str,
    fill: impl FnOnce(&mut std::io::BufWriter<&mut std::fs::File>) -> std::io::Result<()>,
) -> crate::error::Result<u64> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let io = |e| crate::error::Error::io(path, e);
    for stale in left_by_dead_writers(dir, prefix) {
        // Best effort: a file another cleaner took first is gone either way.
        let _ = std::fs::remove_file(stale);
    }
    let mut tmp = temp_file(dir, prefix).map_err(io)?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        fill(&mut w).map_err(io)?;
        w.flush().map_err(io)?;
    }
    tmp.as_file().sync_all().map_err(io)?;
    let size = tmp.as_file().metadata().map_err(io)?.len();
    tmp.persist(path).map_err(|e| io(e.error))?;
    sync_dir(dir)?;
    Ok(size)
}

/// Makes the entries of `dir` (a rename, a removal) durable.
pub(crate) fn sync_dir(dir: &Path) -> crate::error::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| crate::error::Error::io(dir, e))
}

/// The entries of `dir` named `prefix` + the pid of a process that no longer runs.
pub(crate) fn left_by_dead_writers(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            name.to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| !proc.join(pid.to_string()).exists())
        })
        .map(|entry| entry.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn only_dead_writers_leave_stale_entries() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(".t-999999999-x");
        std::fs::write(&dead, b"").unwrap();
        std::fs::write(own_name(dir.path(), ".t-"), b"").unwrap();
        std::fs::write(dir.path().join(".t-notapid-z"), b"").unwrap();
        std::fs::write(dir.path().join("other-999999999-x"), b"").unwrap();
        assert_eq!(left_by_dead_writers(dir.path(), ".t-"), vec![dead]);
    }
}
