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
        })
    }

    /// Appends bytes to the temporary file.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let out = self.out.as_mut().expect("open until commit");
        out.write_all(bytes).map_err(|e| Error::io(&self.tmp, e))
    }

    /// Syncs the temporary file, renames it over the target and syncs the directory.
    pub fn commit(mut self) -> Result<()> {
        let out = self.out.take().expect("open until commit");
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&self.tmp, e.into_error()))?;
        let synced = file.sync_all().map_err(|e| Error::io(&self.tmp, e));
        drop(file);
        if let Err(e) = synced {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(e);
        }
        if let Err(e) = std::fs::rename(&self.tmp, &self.path) {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(Error::io(&self.path, e));
        }
        sync_dir_of(&self.path)
    }
}

impl Drop for AtomicWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
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
