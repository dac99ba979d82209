//! Where a command may write its `--out` file: a new file, or an existing regular file
//! that is none of the command's inputs. Checked before any work is done, so a mistyped
//! path can never destroy the data being scored, the model scoring it, a device file or
//! whatever a symbolic link points at. And where `train` may write its model directory:
//! a new or empty one, or an earlier model's.

use riskgrad::checkpoint::CHECKPOINT_FILE;
use riskgrad::files::{lock_path, real_dir, AtomicWriter, DirLock, FileSet, OLD_LOCK_FILE};
use riskgrad::model_io::WEIGHTS_FILE;
use riskgrad::train::cross_validation::FOLDS_FILE;
use riskgrad::{Error, Result};
use std::path::Path;

/// Opens `out` for an atomic write after checking it against `inputs` (files, or
/// directories standing for every file in them).
pub fn open_output(out: &Path, inputs: &[&Path]) -> Result<AtomicWriter> {
    // An input, a link or a device named is said first: it matters more than the name.
    check_output_for("--out", out, inputs)?;
    check_table_name(out)?;
    open_output_for("--out", out, inputs)
}

/// Names whose ending promises a format riskgrad does not write (`scores.csv.gz` was
/// plain CSV, which riskgrad itself then could not read back).
const OTHER_FORMATS: [(&str, &str); 10] = [
    ("gz", "gzip"),
    ("bz2", "bzip2"),
    ("xz", "xz"),
    ("zst", "zstd"),
    ("zip", "zip"),
    ("xlsx", "Excel"),
    ("xls", "Excel"),
    ("json", "JSON"),
    ("arrow", "Arrow IPC"),
    ("feather", "Feather"),
];

/// Refuses a table output (`predict`'s and `explain`'s `--out`, written as CSV, or
/// Parquet when named `.parquet`) named as another format.
fn check_table_name(out: &Path) -> Result<()> {
    let Some(ext) = out.extension().and_then(|e| e.to_str()) else {
        return Ok(());
    };
    match OTHER_FORMATS.iter().find(|(e, _)| e.eq_ignore_ascii_case(ext)) {
        Some((_, format)) => Err(Error::flag(
            "--out",
            format!(
                "{}: a name ending in .{ext} promises {format}, which riskgrad does not write; it writes CSV (name it .csv), or Parquet when the name ends in .parquet",
                out.display()
            ),
        )),
        None => Ok(()),
    }
}

/// [`open_output`] for an output named by another flag (`--json`, `--html`), which its
/// refusals name.
pub fn open_output_for(flag: &str, out: &Path, inputs: &[&Path]) -> Result<AtomicWriter> {
    let dir = check_output_for(flag, out, inputs)?;
    AtomicWriter::create(out).map_err(|e| match e {
        Error::Io { source, .. } => Error::flag(
            flag,
            format!(
                "{}: cannot create a file in {} ({}); name a file in a writable directory",
                out.display(),
                dir.display(),
                why_not_writable(&source)
            ),
        ),
        e => e,
    })
}

/// The checks of [`open_output_for`], creating nothing: for a command that works a while
/// before it writes (`bench --json`), so that a bad path is refused at once. Returns the
/// directory the file goes in.
pub fn check_output_for<'a>(flag: &str, out: &'a Path, inputs: &[&Path]) -> Result<&'a Path> {
    let refuse = |why: String| Err(Error::flag(flag, format!("{}: {why}", out.display())));
    if out.as_os_str().is_empty() {
        return Err(Error::flag(flag, "is empty; name a file"));
    }
    if out.as_os_str() == "-" {
        // Read as standard output by many tools; here it would be a file named "-".
        return Err(Error::flag(
            flag,
            "is \"-\", which riskgrad does not read as standard output; name a file",
        ));
    }
    match std::fs::symlink_metadata(out) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return refuse(
                "is a symbolic link; name the file itself (riskgrad never writes through a link)"
                    .into(),
            )
        }
        Ok(meta) if meta.is_dir() => return refuse("is a directory; name a file".into()),
        Ok(meta) if !meta.is_file() => {
            return refuse(
                "is not a regular file (a device, pipe or socket); name a regular file".into(),
            )
        }
        Ok(meta) => {
            for input in inputs {
                if let Some(same) = same_file_in(&meta, input) {
                    return refuse(format!(
                        "is {}, an input of this command; name another file",
                        same.display()
                    ));
                }
            }
        }
        // A parent that is not a directory is said so below.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) => {}
        Err(e) => return Err(Error::io(out, e)),
    }
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return refuse(format!("{} is not a directory", dir.display())),
        Err(_) => return refuse(format!("the directory {} does not exist", dir.display())),
    }
    Ok(dir)
}

/// Why a file could not be created in an existing directory, in words: the system's own
/// text for a missing file would read as if the directory were not there.
fn why_not_writable(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::ReadOnlyFilesystem => "a read-only file system".into(),
        ErrorKind::NotFound => {
            "it takes no new files: a virtual file system such as /proc or /sys".into()
        }
        ErrorKind::StorageFull => "the disk is full".into(),
        _ => e.to_string(),
    }
}

/// The input path that is the same file as `meta` describes: `input` itself, or, for a
/// directory, any file in it.
fn same_file_in(meta: &std::fs::Metadata, input: &Path) -> Option<std::path::PathBuf> {
    let Ok(input_meta) = std::fs::metadata(input) else {
        return None;
    };
    if input_meta.is_dir() {
        let entries = std::fs::read_dir(input).ok()?;
        return entries
            .flatten()
            .map(|e| e.path())
            .find(|p| std::fs::metadata(p).is_ok_and(|m| same_file(meta, &m)));
    }
    same_file(meta, &input_meta).then(|| input.to_path_buf())
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Without inode numbers, a file is itself when size and modification time agree; a
/// false match only refuses a path, it never overwrites one.
#[cfg(not(unix))]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}

/// A model directory claimed for a run: its lock, held until the claim is dropped, and
/// whether the run created the directory.
pub struct ModelDirClaim {
    _lock: DirLock,
    created: Option<std::path::PathBuf>,
}

impl Drop for ModelDirClaim {
    /// A directory this run created and left empty (it failed before its files were
    /// written) goes, so that a failed first run leaves nothing behind.
    fn drop(&mut self) {
        if let Some(dir) = &self.created {
            // Refused, as it should be, once the run's files are in it.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Creates the model directory `out` if needed and takes its lock for this run, so that
/// two trainings into one directory do not interleave their files.
pub fn claim_model_dir(out: &Path) -> Result<ModelDirClaim> {
    check_model_dir_target(out)?;
    let created = (!out.exists()).then(|| out.to_path_buf());
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    match DirLock::try_acquire(out)? {
        Some(lock) => {
            let claim = ModelDirClaim {
                _lock: lock,
                created,
            };
            check_writable(out)?;
            Ok(claim)
        }
        None => Err(Error::flag(
            "--out",
            format!(
                "{} is being written by another riskgrad run (it holds {}); wait for that run to end or choose another --out",
                out.display(),
                lock_path(out)?.display()
            ),
        )),
    }
}

/// Fails if no file can be created in `dir` (a read-only directory): said before
/// training, not after its first epoch, when the checkpoint is written.
fn check_writable(dir: &Path) -> Result<()> {
    let probe = dir.join(format!(".riskgrad-write-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => std::fs::remove_file(&probe).map_err(|e| Error::io(&probe, e)),
        Err(e) => Err(Error::io(
            dir,
            std::io::Error::new(e.kind(), format!("no file can be written here ({e})")),
        )),
    }
}

/// Refuses an output file `out` inside a model directory (one holding a model's weights,
/// a checkpoint or folds): a report written there replaces a file of the model or mixes
/// into it (`bench --json MODEL/config.json` left a model that no longer loads).
pub fn check_outside_model_dirs(flag: &str, out: &Path) -> Result<()> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match MODEL_DIR_MARKERS.iter().find(|m| dir.join(m).exists()) {
        Some(marker) => Err(Error::flag(
            flag,
            format!(
                "{}: {} holds {marker}, a model's directory: riskgrad writes only a model's own files there; name a file elsewhere",
                out.display(),
                dir.display()
            ),
        )),
        None => Ok(()),
    }
}

/// Files only riskgrad writes into a model directory: one of them marks a directory as a
/// model's, a cross-validation's or a killed run's (its checkpoint).
const MODEL_DIR_MARKERS: [&str; 3] = [WEIGHTS_FILE, CHECKPOINT_FILE, FOLDS_FILE];

/// Refuses a model directory `out` that exists, holds files and is no riskgrad output (a
/// home directory, the data's directory, a project with `.git`, `--out .`): a model
/// directory is replaced whole, its other files carried over by a rebuild of the whole
/// tree, which is no way to treat a directory that is not a model's. A new directory, an
/// empty one and an earlier model's pass.
pub fn check_model_dir_target(out: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(out) else {
        // New, or not a directory or unreadable: the writing says which, with the path.
        return Ok(());
    };
    if MODEL_DIR_MARKERS.iter().any(|m| out.join(m).exists()) {
        return Ok(());
    }
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // Lock files are riskgrad's own: the old one inside, `.NAME.riskgrad.lock` of
        // model directories beside others.
        .filter(|n| !n.ends_with(OLD_LOCK_FILE))
        .take(4)
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    let shown = match names.len() {
        4 => format!("{}, ...", names[..3].join(", ")),
        _ => names.join(", "),
    };
    Err(Error::flag(
        "--out",
        format!(
            "{} already holds files that are not a riskgrad model ({shown}); a model directory is replaced whole, so name a new or empty directory, or an earlier model's",
            out.display()
        ),
    ))
}

/// Refuses a model directory `out` that holds the training data `data` (by name, a hard
/// link or a link to it): the run replaces the files it writes there, and a table named
/// like one of them (`folds.csv`) would be lost.
pub fn check_data_outside_model_dir(out: &Path, data: &Path) -> Result<()> {
    let Ok(data_meta) = std::fs::metadata(data) else {
        // Missing data is said when it is read, with its path.
        return Ok(());
    };
    if data_meta.is_dir() || !out.is_dir() {
        return Ok(());
    }
    match same_file_in(&data_meta, out) {
        Some(inside) => Err(Error::flag(
            "--out",
            format!(
                "{} holds {}, the data this run trains on; a model directory's files are replaced by the run's, so keep the data elsewhere or name another --out",
                out.display(),
                inside.display()
            ),
        )),
        None => Ok(()),
    }
}

/// Refuses to replace a trained model in `out` by a cross-validation that saves none
/// (without `--ensemble`): the directory is replaced whole, and the model would be lost.
pub fn check_cv_keeps_model(out: &Path, saves_model: bool) -> Result<()> {
    if saves_model || !out.join(WEIGHTS_FILE).exists() {
        return Ok(());
    }
    Err(Error::flag(
        "--out",
        format!(
            "{} holds a trained model, and a cross-validation without --ensemble saves none: it would replace the model with its folds and report; name another --out, or add --ensemble to save the folds' models there",
            out.display()
        ),
    ))
}

/// Saves a copy of the model directory `from` as `to` the way a training writes one:
/// `from` is checked to load as a model, `to`'s lock is taken (the message of a second
/// training into it when another run holds it), and `from`'s files are staged beside `to`
/// and swapped in at once ([`FileSet::replacing`]), so `to` is the old model or the new
/// one, never a mix. A model saved onto its own directory is left as it is.
pub fn copy_model_dir(from: &Path, to: &Path) -> Result<()> {
    super::load_model(from)?;
    if std::fs::metadata(to).is_ok_and(|m| !m.is_dir()) {
        return Err(Error::io(
            to,
            std::io::Error::other("not a directory; a model is saved as one"),
        ));
    }
    let _lock = claim_model_dir(to)?;
    if real_dir(from)? == real_dir(to)? {
        return Ok(());
    }
    // Every file of the model, config.json last (it makes the directory a model).
    let mut names = Vec::new();
    for entry in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let path = entry.map_err(|e| Error::io(from, e))?.path();
        let name = path.file_name().unwrap_or_default();
        if name != OLD_LOCK_FILE && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            names.push(name.to_os_string());
        }
    }
    names.sort_by_key(|n| (n == "config.json", n.clone()));
    let mut files = FileSet::replacing(to)?;
    for name in names {
        let bytes = std::fs::read(from.join(&name)).map_err(|e| Error::io(from.join(&name), e))?;
        files.add(&to.join(&name), &bytes)?;
    }
    files.commit()
}
