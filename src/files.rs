//! Files written so that a crash, a full disk or an error on the way never leaves one
//! half-written: the bytes go to a temporary file beside the target, which is synced to
//! disk and then renamed over the target; the directory is synced too, so the rename
//! itself survives a power cut. The target is always either all of its old contents or
//! all of the new ones. A model directory goes one step further ([`FileSet::replacing`]):
//! the new one is built beside it and swapped in whole, so a reader sees the old model or
//! the new one, never a mix; [`DirLock`] keeps two runs from writing one directory.
//!
//! A temporary file's name is riskgrad's alone (`NAME.riskgrad-PID-N.tmp`, created only
//! if new), so a user's own `NAME.tmp` is never touched, and the ones being written are
//! listed ([`remove_temporary_files_and_exit`]) so that a command stopped by a signal
//! leaves none behind.

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
    /// Opens a new temporary file beside `path` ([`temp_name`]) for writing.
    pub fn create(path: &Path) -> Result<Self> {
        // The rename at the end replaces whatever `path` names: never a device, pipe,
        // socket or directory (as root, `--json /dev/full` once replaced the device).
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            let kind = meta.file_type();
            if !(kind.is_file() || kind.is_symlink()) {
                return Err(Error::io(
                    path,
                    std::io::Error::other(
                        "not a regular file (a directory, device, pipe or socket): riskgrad writes a file by replacing it, and will not replace this",
                    ),
                ));
            }
        }
        let replaced = std::fs::metadata(path).ok();
        if replaced
            .as_ref()
            .is_some_and(|m| m.permissions().readonly())
        {
            return Err(Error::io(
                path,
                std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "read-only: riskgrad will not replace a file made read-only; make it writable or choose another path",
                ),
            ));
        }
        remove_orphaned_temporaries(path);
        // Named by the file the user asked for: the temporary name is ours.
        let (tmp, file) = create_temporary(path).map_err(|e| Error::io(path, e))?;
        if let Some(old) = &replaced {
            // The new file takes the old one's mode and owners: private scores stay
            // private (a new file would get the umask's mode, often world-readable).
            keep_access_of(old, &file);
        }
        Ok(AtomicWriter {
            path: path.to_path_buf(),
            tmp,
            out: Some(std::io::BufWriter::new(file)),
            synced: false,
        })
    }

    /// Appends bytes to the temporary file (an error names the file asked for: the
    /// temporary name is riskgrad's business).
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let out = self.out.as_mut().expect("open until commit");
        out.write_all(bytes).map_err(|e| Error::io(&self.path, e))
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
            .map_err(|e| Error::io(&self.path, e));
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
        self.rename_to(&self.path)?;
        sync_dir_of(&self.path)
    }

    /// Takes the temporary file off the live list, returning the list's lock: held
    /// while the file is renamed or removed, so a signal's cleanup cannot race it.
    fn unlist(&self) -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
        let mut live = live_temporaries();
        live.retain(|t| *t != self.tmp);
        live
    }

    /// Renames the synced temporary file to `target` (removing it if that fails), while
    /// no signal's cleanup can remove it meanwhile.
    fn rename_to(&self, target: &Path) -> Result<()> {
        let _live = self.unlist();
        if let Err(e) = std::fs::rename(&self.tmp, target) {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(Error::io(&self.path, e));
        }
        Ok(())
    }

    /// Syncs the temporary file and renames it to `target` (a staging directory's file on
    /// the same file system) instead of its own path.
    fn move_to(mut self, target: &Path) -> Result<()> {
        self.sync()?;
        drop(self.out.take());
        self.rename_to(target)
    }
}

/// Files that belong together (a model directory's weights, config, metrics and report),
/// written in full before any of them is seen. Two ways:
///
/// - [`FileSet::replacing`] a whole directory (a model directory): the new directory is
///   built as a sibling, `.NAME.staging-PID`, with every file of the set plus whatever
///   the old directory holds that the set does not write (a checkpoint, the user's own
///   files: hard-linked, or copied where a link fails); it is synced, then swapped in by
///   one rename (on Linux `renameat2(RENAME_EXCHANGE)`; a plain rename when the directory
///   is new), and the old tree is removed. Before the swap nothing in the directory
///   changed; after it every new file is there at once.
/// - [`FileSet::new`], files beside others (and the fallback where the swap cannot be
///   done: another OS, a file system without the exchange, a directory that is a mount
///   point or holds the working directory): each file is synced under a temporary name
///   and the renames, which need no space, come in a burst at the end, in the order added. Put the file that makes the
///   set count (a model's config.json) last: a crash within the burst is caught there.
///
/// A full disk or an error while writing any file leaves every old file as it was;
/// dropped without [`FileSet::commit`], the set removes what it wrote.
#[derive(Default)]
pub struct FileSet {
    /// Files written beside their targets, renamed in a burst by `commit`.
    staged: Vec<AtomicWriter>,
    /// The staging directory, when the set replaces a whole directory.
    whole: Option<Staging>,
}

/// A directory being built beside the one it will replace.
struct Staging {
    /// The directory as the caller names it: the files added must be in it.
    named: PathBuf,
    /// Its real path, links resolved: what the swap replaces.
    real: PathBuf,
    /// The sibling the new tree is built in; after the swap it holds the old tree. It is
    /// removed on drop, whichever it holds.
    path: PathBuf,
    /// The file names the set writes, in the order added.
    names: Vec<std::ffi::OsString>,
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

impl FileSet {
    /// An empty set of files that go beside others, renamed in a burst.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set that replaces the whole directory `dir` (created if new; a symbolic
    /// link is followed, and the directory it names is replaced): see the type's docs.
    /// Where a sibling cannot be written (no write permission beside `dir`), or `dir` is a
    /// mount point or holds the working directory, the set falls back to the burst of
    /// [`FileSet::new`].
    pub fn replacing(dir: &Path) -> Result<Self> {
        let real = real_dir(dir)?;
        if let Ok(meta) = std::fs::metadata(&real) {
            if !meta.is_dir() {
                return Err(Error::io(
                    dir,
                    std::io::Error::other("not a directory; a model is written as one"),
                ));
            }
            // A mount point cannot be renamed; a directory that holds the process's working
            // directory (`--out .`) would leave the user's shell in the removed old tree.
            if is_mount_point(&real, &meta) || holds_working_dir(&real) {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                return Ok(Self::new());
            }
        }
        let path = sibling(&real, &format!("{STAGING}{}", std::process::id()))?;
        // A leftover of an earlier process that had our id: it is not a model.
        let _ = std::fs::remove_dir_all(&path);
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                return Ok(Self::new());
            }
            Err(e) => return Err(Error::io(&path, e)),
        }
        Ok(FileSet {
            staged: Vec::new(),
            whole: Some(Staging {
                named: dir.to_path_buf(),
                real,
                path,
                names: Vec::new(),
            }),
        })
    }

    /// Writes `bytes` for `path` (under its temporary name, or into the staging
    /// directory) and syncs them.
    pub fn add(&mut self, path: &Path, bytes: &[u8]) -> Result<()> {
        match &mut self.whole {
            Some(staging) => {
                let target = staging.place(path)?;
                let written = std::fs::File::create(&target).and_then(|mut f| {
                    f.write_all(bytes)?;
                    f.sync_all()
                });
                written.map_err(|e| Error::io(path, e))
            }
            None => {
                let mut w = AtomicWriter::create(path)?;
                w.write_all(bytes)?;
                w.sync()?;
                self.staged.push(w);
                Ok(())
            }
        }
    }

    /// Adds a writer already filled (e.g. one written in pieces), syncing it.
    pub fn add_writer(&mut self, mut writer: AtomicWriter) -> Result<()> {
        match &mut self.whole {
            Some(staging) => {
                let target = staging.place(&writer.path.clone())?;
                writer.move_to(&target)
            }
            None => {
                writer.sync()?;
                self.staged.push(writer);
                Ok(())
            }
        }
    }

    /// Puts the files in place: the directory swapped in one step, or each file renamed
    /// over its old one in the order added.
    pub fn commit(self) -> Result<()> {
        for w in self.staged {
            w.commit()?;
        }
        match self.whole {
            Some(staging) => staging.swap_in(),
            None => Ok(()),
        }
    }
}

impl Staging {
    /// Where `path` (a file of the directory being replaced) is written in the staging
    /// directory; records its name.
    fn place(&mut self, path: &Path) -> Result<PathBuf> {
        let name = match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) if parent == self.named => name.to_os_string(),
            _ => {
                return Err(Error::Internal(format!(
                    "{} is not a file of {}, the directory this set replaces",
                    path.display(),
                    self.named.display()
                )))
            }
        };
        if !self.names.contains(&name) {
            self.names.push(name.clone());
        }
        Ok(self.path.join(name))
    }

    /// Completes the staging directory with what the old one holds beyond this set's
    /// files, syncs it and swaps it in; then the old tree is removed (on drop).
    fn swap_in(self) -> Result<()> {
        let old_exists = std::fs::symlink_metadata(&self.real).is_ok();
        if old_exists {
            carry_over(&self.real, &self.path, &self.names)?;
            if let Ok(meta) = std::fs::metadata(&self.real) {
                let _ = std::fs::set_permissions(&self.path, meta.permissions());
            }
        }
        sync_dir(&self.path)?;
        let swapped = match old_exists {
            true => exchange(&self.path, &self.real),
            false => std::fs::rename(&self.path, &self.real),
        };
        match swapped {
            Ok(()) => sync_dir_of(&self.real),
            Err(e) if exchange_unsupported(&e) => self.rename_each(),
            Err(e) => Err(Error::io(&self.real, e)),
        }
    }

    /// The fallback where the directories cannot be exchanged: each staged file renamed
    /// into the old directory in the order added (config.json last).
    fn rename_each(&self) -> Result<()> {
        for name in &self.names {
            let target = self.real.join(name);
            std::fs::rename(self.path.join(name), &target)
                .map_err(|e| Error::io(self.named.join(name), e))?;
        }
        sync_dir(&self.real)
    }
}

/// Whether the process's working directory is `real` or inside it.
fn holds_working_dir(real: &Path) -> bool {
    std::env::current_dir()
        .and_then(std::fs::canonicalize)
        .is_ok_and(|cwd| cwd.starts_with(real))
}

/// The directory `dir` names, with every symbolic link resolved. A directory that does
/// not exist yet gets its parent created and resolved.
pub fn real_dir(dir: &Path) -> Result<PathBuf> {
    match std::fs::canonicalize(dir) {
        Ok(real) => Ok(real),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let name = dir.file_name().ok_or_else(|| Error::io(dir, e))?;
            let parent = match dir.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            let parent = std::fs::canonicalize(parent).map_err(|e| Error::io(parent, e))?;
            Ok(parent.join(name))
        }
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// The name of a sibling of the directory `real`: `.NAME<suffix>` beside it.
fn sibling(real: &Path, suffix: &str) -> Result<PathBuf> {
    let name = real.file_name().ok_or_else(|| {
        Error::io(
            real,
            std::io::Error::other("the root directory cannot be a model directory"),
        )
    })?;
    let mut sibling = std::ffi::OsString::from(".");
    sibling.push(name);
    sibling.push(suffix);
    Ok(real.with_file_name(sibling))
}

/// What the staging directory's name adds to the model directory's (then a process id).
const STAGING: &str = ".staging-";

/// Removes the staging directories that runs into `dir` left when they were killed (a
/// half-built new tree, or an old tree not yet removed). Only the holder of `dir`'s
/// [`DirLock`] may call it: any other run's staging directory would be in use.
fn remove_leftover_staging(real: &Path) {
    let (Some(parent), Ok(prefix)) = (real.parent(), sibling(real, STAGING)) else {
        return;
    };
    let Some(prefix) = prefix.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix(&prefix).unwrap_or("");
        if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The lock file a model directory had inside it before the lock moved beside it; not
/// carried into a new tree, nor copied with a model.
pub const OLD_LOCK_FILE: &str = ".riskgrad.lock";

/// Links (or copies) into `to` every entry of `from` that is not one of `written` (the
/// set's own files) or a temporary file of one of them.
fn carry_over(from: &Path, to: &Path, written: &[std::ffi::OsString]) -> Result<()> {
    let entries = std::fs::read_dir(from).map_err(|e| Error::io(from, e))?;
    for entry in entries {
        let name = entry.map_err(|e| Error::io(from, e))?.file_name();
        let ours = written
            .iter()
            .any(|w| name == *w || is_temp_name_of(&name, w));
        if !ours && name != OLD_LOCK_FILE {
            carry_entry(&from.join(&name), &to.join(&name))?;
        }
    }
    Ok(())
}

/// One entry carried into the new tree: a file hard-linked (copied where the link
/// fails), a directory rebuilt entry by entry, a symbolic link recreated as it reads.
fn carry_entry(from: &Path, to: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(from).map_err(|e| Error::io(from, e))?;
    let kind = meta.file_type();
    if kind.is_dir() {
        std::fs::create_dir(to).map_err(|e| Error::io(to, e))?;
        for entry in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
            let name = entry.map_err(|e| Error::io(from, e))?.file_name();
            carry_entry(&from.join(&name), &to.join(&name))?;
        }
        let _ = std::fs::set_permissions(to, meta.permissions());
        return sync_dir(to);
    }
    #[cfg(unix)]
    if kind.is_symlink() {
        let target = std::fs::read_link(from).map_err(|e| Error::io(from, e))?;
        return std::os::unix::fs::symlink(target, to).map_err(|e| Error::io(to, e));
    }
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    // Only a regular file is copied: reading a pipe or a device could block or never end.
    if !kind.is_file() {
        return Err(Error::io(
            from,
            std::io::Error::other(
                "cannot be linked into the new model directory, and only regular files are copied",
            ),
        ));
    }
    std::fs::copy(from, to)
        .and_then(|_| std::fs::File::open(to)?.sync_all())
        .map_err(|e| Error::io(to, e))
}

/// Swaps the directories `a` and `b` in one step.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c =
        |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// No exchange outside Linux: the caller renames file by file.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// Whether an exchange failed because it cannot be done here (the system or the file
/// system lacks it, or a directory is a mount point), not because of the files.
fn exchange_unsupported(e: &std::io::Error) -> bool {
    if e.kind() == std::io::ErrorKind::Unsupported {
        return true;
    }
    #[cfg(unix)]
    if let Some(code) = e.raw_os_error() {
        return [
            libc::EINVAL,
            libc::ENOSYS,
            libc::EOPNOTSUPP,
            libc::ENOTSUP,
            libc::EXDEV,
            libc::EBUSY,
        ]
        .contains(&code);
    }
    false
}

/// Whether the directory `real` is a mount point: another file system than its parent's,
/// so no sibling can be renamed over it.
fn is_mount_point(real: &Path, meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        real.parent()
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|parent| parent.dev() != meta.dev())
    }
    #[cfg(not(unix))]
    {
        let _ = (real, meta);
        false
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
            let _live = self.unlist();
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The number in this process's next temporary name.
static NEXT_TEMPORARY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The temporary files being written now: created, not yet renamed or removed.
fn live_temporaries() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    static LIVE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Creates a new temporary file for `path` ([`temp_name`]; never an existing file) and
/// lists it as live.
/// Gives `file` the mode of `old` and, where allowed, its owner and group (a failure
/// leaves the new file as created: a user may not give files to others).
fn keep_access_of(old: &std::fs::Metadata, file: &std::fs::File) {
    let _ = file.set_permissions(old.permissions());
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let _ = std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()));
    }
}

fn create_temporary(path: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    loop {
        let n = NEXT_TEMPORARY.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = temp_name(path, n);
        let mut live = live_temporaries();
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(file) => {
                live.push(tmp.clone());
                return Ok((tmp, file));
            }
            // A leftover of a killed process that had this id.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Removes every temporary file being written and ends the process with `code`: for a
/// signal that stops a command between its writes. The list stays locked, so no
/// rename or new temporary file can follow.
pub fn remove_temporary_files_and_exit(code: i32) -> ! {
    let live = live_temporaries();
    for tmp in live.iter() {
        let _ = std::fs::remove_file(tmp);
    }
    std::process::exit(code)
}

/// One process's claim on a directory (a model directory being written): the operating
/// system's exclusive lock on a file beside it, `.NAME.riskgrad.lock` ([`lock_path`]),
/// released when this is dropped or the process ends, however it ends (so a killed run
/// leaves no stale lock). The lock is beside the directory, not in it, so that it stays
/// where it is when a [`FileSet::replacing`] swaps a new directory in. The file stays;
/// it is empty.
pub struct DirLock {
    _file: std::fs::File,
}

impl DirLock {
    /// Takes the lock of `dir` (a symbolic link is followed to the directory it names);
    /// `None` when another process holds it. Whoever takes it also removes the staging
    /// directories runs into `dir` left behind when they were killed.
    pub fn try_acquire(dir: &Path) -> Result<Option<DirLock>> {
        let path = lock_path(dir)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {
                remove_leftover_staging(&real_dir(dir)?);
                Ok(Some(DirLock { _file: file }))
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
        }
    }
}

/// The lock file of the directory `dir`: `.NAME.riskgrad.lock` beside the directory
/// `dir` names (links resolved).
pub fn lock_path(dir: &Path) -> Result<PathBuf> {
    sibling(&real_dir(dir)?, ".riskgrad.lock")
}

/// The `n`-th temporary name of this process for `path`: `NAME.riskgrad-PID-N.tmp`
/// beside it (a name no user file is likely to have, and [`is_temp_name_of`] knows).
pub fn temp_name(path: &Path, n: u64) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!("{TEMP_INFIX}{}-{n}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// What a temporary name puts between the file's name and the process id.
const TEMP_INFIX: &str = ".riskgrad-";

/// The process id in `name` where it is a temporary name of `file`
/// (`FILE.riskgrad-PID-N.tmp`).
fn temp_name_pid(name: &std::ffi::OsStr, file: &std::ffi::OsStr) -> Option<u32> {
    let rest = name
        .to_str()?
        .strip_prefix(file.to_str()?)?
        .strip_prefix(TEMP_INFIX)?
        .strip_suffix(".tmp")?;
    rest.split_once('-')?.0.parse().ok()
}

/// Removes the temporary files of `path` that processes no longer running left (a
/// `kill -9` mid-write): nothing will ever finish or remove them.
fn remove_orphaned_temporaries(path: &Path) {
    let Some(file) = path.file_name() else {
        return;
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let pid = temp_name_pid(&entry.file_name(), file);
        if pid.is_some_and(|pid| pid != std::process::id() && !process_runs(pid)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a process `pid` runs on this machine (`kill(pid, 0)` sends no signal, it
/// only asks). Where that cannot be asked, every process is taken to run.
fn process_runs(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 delivers nothing; the call only checks the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Whether `name` is a temporary name of the file `file` (of any process).
pub fn is_temp_name_of(name: &std::ffi::OsStr, file: &std::ffi::OsStr) -> bool {
    let (Some(name), Some(file)) = (name.to_str(), file.to_str()) else {
        return false;
    };
    name.strip_prefix(file)
        .and_then(|rest| rest.strip_prefix(TEMP_INFIX))
        .is_some_and(|rest| rest.ends_with(".tmp"))
}

/// Syncs the directory holding `path`, so a rename into it is on disk. Platforms that
/// cannot open a directory as a file (Windows) skip this: their renames are durable
/// through the file system's own journal.
pub fn sync_dir_of(path: &Path) -> Result<()> {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => sync_dir(d),
        _ => sync_dir(Path::new(".")),
    }
}

/// Syncs the directory `dir` itself (its entries), where the platform can.
fn sync_dir(dir: &Path) -> Result<()> {
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

    /// A replaced file keeps its mode (private scores stay private); a read-only one is
    /// refused and left as it was.
    #[cfg(unix)]
    #[test]
    fn a_replaced_file_keeps_its_mode_and_a_read_only_one_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("riskgrad-modes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let private = dir.join("scores.csv");
        std::fs::write(&private, "old").unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomically(&private, b"new").unwrap();
        let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            (std::fs::read(&private).unwrap(), mode),
            (b"new".to_vec(), 0o600)
        );
        let frozen = dir.join("frozen.csv");
        std::fs::write(&frozen, "kept").unwrap();
        std::fs::set_permissions(&frozen, std::fs::Permissions::from_mode(0o444)).unwrap();
        let err = write_atomically(&frozen, b"new").unwrap_err().to_string();
        assert!(
            err.contains("frozen.csv") && err.contains("read-only"),
            "{err}"
        );
        assert_eq!(std::fs::read(&frozen).unwrap(), b"kept");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 2, "no temporary file left");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A temporary file of a process that no longer runs (killed mid-write) is removed
    /// when the file is next written; one of a running process, or another file's, stays.
    #[test]
    fn orphaned_temporaries_go_when_the_file_is_next_written() {
        let dir = std::env::temp_dir().join(format!("riskgrad-orphans-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("scores.csv");
        // Process ids above the kernel's pid_max (4194304) never run.
        let orphan = dir.join("scores.csv.riskgrad-2000000000-0.tmp");
        let running = dir.join(format!("scores.csv.riskgrad-{}-99.tmp", std::process::id()));
        let other = dir.join("other.csv.riskgrad-2000000000-0.tmp");
        for f in [&orphan, &running, &other] {
            std::fs::write(f, "partial").unwrap();
        }
        assert_eq!(
            temp_name_pid(orphan.file_name().unwrap(), "scores.csv".as_ref()),
            Some(2_000_000_000)
        );
        write_atomically(&target, b"whole").unwrap();
        assert!(!orphan.exists(), "the killed process's file went");
        assert!(running.exists() && other.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temp_names_are_riskgrads_and_known_as_such() {
        let tmp = temp_name(Path::new("d/model.safetensors"), 3);
        assert_eq!(
            tmp,
            Path::new(&format!(
                "d/model.safetensors.riskgrad-{}-3.tmp",
                std::process::id()
            ))
        );
        let name = tmp.file_name().unwrap();
        assert!(is_temp_name_of(name, "model.safetensors".as_ref()));
        assert!(!is_temp_name_of(name, "model".as_ref()));
        assert!(!is_temp_name_of(
            "model.safetensors.tmp".as_ref(),
            "model.safetensors".as_ref()
        ));
    }

    /// A user's own `NAME.tmp`, or a leftover with the name this process would take
    /// first, is never written over.
    #[test]
    fn a_file_with_a_temporary_looking_name_is_left_alone() {
        let dir = std::env::temp_dir().join(format!("riskgrad-tmpname-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("scores.csv");
        let users = dir.join("scores.csv.tmp");
        std::fs::write(&users, "the user's notes").unwrap();
        // The names this process takes next (other tests may take some meanwhile).
        let next = NEXT_TEMPORARY.load(std::sync::atomic::Ordering::Relaxed);
        let taken = next..next + 64;
        for n in taken.clone() {
            std::fs::write(temp_name(&path, n), "a leftover").unwrap();
        }
        write_atomically(&path, b"scores").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"scores");
        assert_eq!(std::fs::read(&users).unwrap(), b"the user's notes");
        for n in taken {
            assert_eq!(std::fs::read(temp_name(&path, n)).unwrap(), b"a leftover");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The fallback where directories cannot be exchanged (other OSes, some file
    /// systems): the staged files are renamed into the old directory, which keeps its
    /// other files, and the staging directory goes.
    #[test]
    fn without_the_exchange_the_files_are_renamed_in_one_by_one() {
        let root = std::env::temp_dir().join(format!("riskgrad-burst-{}", std::process::id()));
        let dir = root.join("model");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), "old config").unwrap();
        std::fs::write(dir.join("notes.txt"), "kept").unwrap();
        let mut files = FileSet::replacing(&dir).unwrap();
        files
            .add(&dir.join("metrics.json"), b"new metrics")
            .unwrap();
        files.add(&dir.join("config.json"), b"new config").unwrap();
        let staging = files.whole.take().expect("a staging directory");
        let staged = staging.path.clone();
        staging.rename_each().unwrap();
        drop(staging);
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        assert_eq!(read("metrics.json"), "new metrics");
        assert_eq!(read("config.json"), "new config");
        assert_eq!(read("notes.txt"), "kept");
        assert!(!staged.exists());
        std::fs::remove_dir_all(&root).unwrap();
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
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
