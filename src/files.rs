//! Files written so that a crash, a full disk or an error on the way never leaves one
//! half-written: the bytes go to a temporary file beside the target, which is synced to
//! disk and then renamed over the target; the directory is synced too, so the rename
//! itself survives a power cut. The target is always either all of its old contents or
//! all of the new ones.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically (see the module docs).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut writer = AtomicWriter::create(path)?;
    writer.write_all(bytes)?;
    writer.commit()
}

/// A file written through a temporary name: `commit` syncs it and renames it into place;
/// dropped without `commit` (an error on the way), the temporary file is removed and
/// whatever was at `path` before stays as it was.
pub struct AtomicWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
    /// Set once `sync` has put every byte on disk: only the rename is left.
    synced: bool,
}

impl AtomicWriter {
    /// Opens the temporary file `<path>.tmp` for writing.
    pub fn create(path: &Path) -> Result<Self> {
        let tmp = temp_name(path);
        // Named by the file the user asked for: the temporary name is ours.
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io(path, e))?;
        Ok(AtomicWriter {
            path: path.to_path_buf(),
            tmp,
            out: Some(std::io::BufWriter::new(file)),
            synced: false,
        })
    }

    /// Appends bytes to the temporary file.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let out = self.out.as_mut().expect("open until commit");
        out.write_all(bytes).map_err(|e| Error::io(&self.tmp, e))
    }

    /// Flushes the temporary file and syncs it to disk, so that a full disk shows here,
    /// before anything is renamed. On an error the temporary file is removed.
    pub fn sync(&mut self) -> Result<()> {
        if self.synced {
            return Ok(());
        }
        let out = self.out.as_mut().expect("open until commit");
        let synced = out
            .flush()
            .and_then(|()| out.get_ref().sync_all())
            .map_err(|e| Error::io(&self.tmp, e));
        if synced.is_err() {
            self.out = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
        self.synced = synced.is_ok();
        synced
    }

    /// Syncs the temporary file, renames it over the target and syncs the directory.
    pub fn commit(mut self) -> Result<()> {
        self.sync()?;
        drop(self.out.take());
        if let Err(e) = std::fs::rename(&self.tmp, &self.path) {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(Error::io(&self.path, e));
        }
        sync_dir_of(&self.path)
    }
}

/// Files that belong together (a model directory's weights, config, metrics and report):
/// each is written and synced under its temporary name first, and only when all of them
/// are on disk are they renamed into place, in the order added. A full disk or an error
/// while writing any of them leaves every old file as it was; the renames, which need no
/// space, come last. Put the file that makes the set count (a model's config.json) last.
#[derive(Default)]
pub struct FileSet {
    staged: Vec<AtomicWriter>,
}

impl FileSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `bytes` for `path` under its temporary name and syncs them.
    pub fn add(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        let mut w = AtomicWriter::create(path)?;
        w.write_all(bytes)?;
        w.sync()?;
        self.staged.push(w);
        Ok(())
    }

    /// Adds a writer already filled (e.g. one written in pieces), syncing it.
    pub fn add_writer(&mut self, mut writer: AtomicWriter) -> Result<()> {
        writer.sync()?;
        self.staged.push(writer);
        Ok(())
    }

    /// Renames every file into place, in the order added.
    pub fn commit(self) -> Result<()> {
        for w in self.staged {
            w.commit()?;
        }
        Ok(())
    }
}

/// Bytes written through [`AtomicWriter::write_all`], for writers that take any
/// `std::io::Write` (a Parquet writer); errors are the file system's own.
impl Write for AtomicWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.out.as_mut() {
            Some(out) => out.write(buf),
            None => Err(std::io::Error::other("the file was already closed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The lock file a [`DirLock`] holds in its directory.
pub const LOCK_FILE: &str = ".riskgrad.lock";

/// One process's claim on a directory (a model directory being written): the operating
/// system's exclusive lock on `DIR/.riskgrad.lock`, released when this is dropped or the
/// process ends, however it ends (so a killed run leaves no stale lock). The file itself
/// stays; it is empty.
pub struct DirLock {
    _file: std::fs::File,
}

impl DirLock {
    /// Takes the lock of `dir` (which must exist); `None` when another process holds it.
    pub fn try_acquire(dir: &Path) -> Result<Option<DirLock>> {
        let path = dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(DirLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }
}

/// `path` with `.tmp` appended to its file name.
pub fn temp_name(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Syncs the directory holding `path`, so a rename into it is on disk. Platforms that
/// cannot open a directory as a file (Windows) skip this: their renames are durable
/// through the file system's own journal.
pub fn sync_dir_of(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    #[cfg(unix)]
    {
        let handle = std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
        handle.sync_all().map_err(|e| Error::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_keep_the_extension() {
        assert_eq!(
            temp_name(Path::new("d/model.safetensors")),
            Path::new("d/model.safetensors.tmp")
        );
    }

    #[test]
    fn a_dropped_writer_leaves_the_old_file_and_no_temporary() {
        let dir = std::env::temp_dir().join(format!("riskgrad-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kept.txt");
        write_atomically(&path, b"old").unwrap();
        {
            let mut w = AtomicWriter::create(&path).unwrap();
            w.write_all(b"new, never committed").unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert!(!temp_name(&path).exists());
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
