//! A model directory is replaced as a whole or not at all: the new one is built beside
//! it and swapped in by one rename, carrying over what the old one held that the run
//! does not write (the checkpoint, the user's files). A run that fails or is killed
//! before the swap leaves every file of the previous model byte for byte, and what a
//! killed run left beside the directory is removed by the next one, never read.

use crate::common::{fixture, stderr, train_small};
use crate::lifecycle_common::temp_dir;
use riskgrad::files::{lock_path, FileSet};
use riskgrad::model_io::SavedModel;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every file under `dir` (relative name, bytes), symbolic links as their target.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(root).unwrap().to_path_buf();
            let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
            if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(name, target.to_string_lossy().as_bytes().to_vec());
            } else if kind.is_dir() {
                out.insert(name, b"<dir>".to_vec());
                walk(root, &path, out);
            } else {
                out.insert(name, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The entries beside `dir` whose names start with `.NAME.staging-`.
fn staging_leftovers(dir: &Path) -> Vec<String> {
    let prefix = format!(".{}.staging-", dir.file_name().unwrap().to_string_lossy());
    std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

#[cfg(unix)]
fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

/// The library's set: nothing in the directory changes until `commit`, then every new
/// file is there at once (one rename: the directory itself is a new one), the files it
/// did not write are carried over as they were, and no staging directory is left.
#[test]
fn a_replaced_directory_changes_in_one_step_and_keeps_what_it_did_not_write() {
    let root = temp_dir("swap-library");
    let dir = root.join("model");
    std::fs::create_dir_all(dir.join("notes")).unwrap();
    std::fs::write(dir.join("config.json"), "old config").unwrap();
    std::fs::write(dir.join("metrics.json"), "old metrics").unwrap();
    std::fs::write(dir.join("checkpoint.safetensors"), "the run's checkpoint").unwrap();
    std::fs::write(dir.join("notes").join("why.txt"), "the user's notes").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("notes/why.txt", dir.join("why")).unwrap();
    let before = tree(&dir);

    let mut files = FileSet::replacing(&dir).unwrap();
    files
        .add(&dir.join("metrics.json"), b"new metrics")
        .unwrap();
    files.add(&dir.join("report.html"), b"new report").unwrap();
    files.add(&dir.join("config.json"), b"new config").unwrap();
    assert!(
        files.add(&root.join("elsewhere.txt"), b"x").is_err(),
        "a file outside the directory is refused"
    );
    assert_eq!(tree(&dir), before, "nothing changes before the commit");
    assert_eq!(
        staging_leftovers(&dir).len(),
        1,
        "built beside the directory"
    );
    #[cfg(unix)]
    let (old_dir, old_checkpoint) = (inode(&dir), inode(&dir.join("checkpoint.safetensors")));
    files.commit().unwrap();

    let after = tree(&dir);
    let mut expected = before.clone();
    expected.insert("metrics.json".into(), b"new metrics".to_vec());
    expected.insert("report.html".into(), b"new report".to_vec());
    expected.insert("config.json".into(), b"new config".to_vec());
    assert_eq!(after, expected);
    #[cfg(unix)]
    {
        assert_ne!(
            inode(&dir),
            old_dir,
            "the directory was swapped, not rewritten"
        );
        assert_eq!(
            inode(&dir.join("checkpoint.safetensors")),
            old_checkpoint,
            "a carried-over file is the same file (a hard link)"
        );
    }
    assert!(
        staging_leftovers(&dir).is_empty(),
        "the old tree was removed"
    );

    // Dropped without a commit (an error on the way), the set leaves the directory as
    // it was and nothing beside it.
    let mut files = FileSet::replacing(&dir).unwrap();
    files
        .add(&dir.join("config.json"), b"never committed")
        .unwrap();
    drop(files);
    assert_eq!(tree(&dir), after);
    assert!(staging_leftovers(&dir).is_empty());

    // A directory that does not exist yet is renamed into place whole.
    let fresh = root.join("runs").join("fresh");
    let mut files = FileSet::replacing(&fresh).unwrap();
    files.add(&fresh.join("config.json"), b"first").unwrap();
    assert!(!fresh.exists(), "not there before the commit");
    files.commit().unwrap();
    assert_eq!(std::fs::read(fresh.join("config.json")).unwrap(), b"first");
    assert!(staging_leftovers(&fresh).is_empty());
}

/// Runs `riskgrad train` (small, on the CPU) into `out` with files limited to 64 KiB:
/// the checkpoint, the metrics and the plots fit, report.html (about 110 KiB) does not,
/// so the save fails in the middle of writing the new files. With `killed`, the run dies
/// there (SIGXFSZ, like a crash or a kill -9); otherwise the write fails with EFBIG,
/// as on a full disk, and the run ends with an error.
#[cfg(unix)]
pub fn train_with_files_limited(
    data: &Path,
    out: &Path,
    extra: &[&str],
    killed: bool,
) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_riskgrad"));
    cmd.args(["train", "--data", data.to_str().unwrap(), "--device", "cpu"])
        .args(["--hidden", "4", "--out", out.to_str().unwrap()])
        .args(extra)
        .env("NODEVICE_SELECT", "1");
    // SAFETY: only async-signal-safe calls (setrlimit, signal) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = |bytes| libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &limit(0));
            if !killed {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            }
            match libc::setrlimit(libc::RLIMIT_FSIZE, &limit(64 << 10)) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    cmd.output().unwrap()
}

/// The CLI: a second training into the same --out that runs out of space while saving,
/// or is killed there, leaves every file of the first model byte for byte, its checkpoint
/// included (the second run's, written while training for --resume, is
/// checkpoint.next.safetensors beside it); the
/// killed run's half-built directory is never read and the next run removes it; a run
/// that succeeds replaces the directory in one rename, through a symbolic link to it.
#[cfg(unix)]
#[test]
fn a_save_that_fails_or_is_killed_leaves_the_previous_model_byte_for_byte() {
    let root = temp_dir("swap-cli");
    let model = root.join("model");
    let data = fixture("credit_mixed.csv");
    let first = train_small(&data, &model, &["--epochs", "2", "--seed", "1"]);
    assert!(first.status.success(), "{}", stderr(&first));
    std::fs::write(model.join("notes.txt"), "the user's notes").unwrap();
    let model_files = |dir: &Path| {
        let mut t = tree(dir);
        t.remove(Path::new("checkpoint.next.safetensors"));
        t
    };
    let before = model_files(&model);
    assert!(before.contains_key(Path::new("report.html")));

    let failed = train_with_files_limited(&data, &model, &["--epochs", "2", "--seed", "2"], false);
    assert_eq!(failed.status.code(), Some(3), "{}", stderr(&failed));
    assert_eq!(model_files(&model), before, "a full disk changed the model");
    assert!(
        staging_leftovers(&model).is_empty(),
        "the failed run cleaned up"
    );

    let killed = train_with_files_limited(&data, &model, &["--epochs", "2", "--seed", "2"], true);
    assert_eq!(killed.status.code(), None, "killed by SIGXFSZ");
    assert_eq!(
        model_files(&model),
        before,
        "a killed save changed the model"
    );
    let leftovers = staging_leftovers(&model);
    assert_eq!(leftovers.len(), 1, "the killed run's half-built tree");
    SavedModel::load(&model).unwrap();

    // Through a symbolic link to the directory, the next run replaces the directory the
    // link names (the link stays a link), removes the leftover, and every new file
    // appears with the new directory.
    let link = root.join("latest");
    std::os::unix::fs::symlink("model", &link).unwrap();
    let old_inode = inode(&model);
    let second = train_small(&data, &link, &["--epochs", "2", "--seed", "2"]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_ne!(
        inode(&model),
        old_inode,
        "one rename swapped the directory in"
    );
    assert!(
        staging_leftovers(&model).is_empty(),
        "{leftovers:?} was removed"
    );
    let after = model_files(&model);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    assert_eq!(after[Path::new("notes.txt")], b"the user's notes");
    for name in [
        "config.json",
        "model.safetensors",
        "metrics.json",
        "report.html",
    ] {
        assert_ne!(
            after[Path::new(name)],
            before[Path::new(name)],
            "{name} is new"
        );
    }
    SavedModel::load(&model).unwrap();
    // The lock is beside the directory, so it stayed put through the swap.
    assert_eq!(
        lock_path(&link).unwrap(),
        root.canonicalize().unwrap().join(".model.riskgrad.lock")
    );
    assert!(!model.join(".riskgrad.lock").exists());
}

/// `--out` naming a directory that holds other files and no riskgrad output (the data's
/// directory, a project with `.git`, `--out .`) is refused before anything is read or
/// written, naming the flag and some of the files; the directory is left as it was. A
/// model directory that is the working directory (`cd model && riskgrad train --out .`)
/// is written in place, not swapped, so the user's shell is not left in a removed tree.
#[cfg(unix)]
#[test]
fn a_directory_that_is_not_a_model_is_refused_and_the_working_directory_kept() {
    let root = temp_dir("not-a-model");
    let project = root.join("project");
    std::fs::create_dir_all(project.join(".git")).unwrap();
    std::fs::write(project.join(".git").join("HEAD"), "ref: refs/heads/main").unwrap();
    let data = project.join("data.csv");
    std::fs::copy(fixture("credit_mixed.csv"), &data).unwrap();
    let before = tree(&project);
    let old_inode = inode(&project);
    for out in [project.clone(), project.join(".")] {
        let refused = train_small(&data, &out, &["--epochs", "1"]);
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
        let message = stderr(&refused);
        for part in ["--out", "not a riskgrad model", ".git", "data.csv"] {
            assert!(message.contains(part), "{part:?} missing from {message}");
        }
        assert_eq!(
            tree(&project),
            before,
            "a refused run changed the directory"
        );
        assert_eq!(inode(&project), old_inode);
        assert!(staging_leftovers(&project).is_empty());
    }

    // An empty directory is a fine model directory; run again from inside it.
    let model = root.join("model");
    std::fs::create_dir(&model).unwrap();
    let first = train_small(&data, &model, &["--epochs", "1"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let model_inode = inode(&model);
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_riskgrad"))
        .args(["train", "--data", data.to_str().unwrap(), "--device", "cpu"])
        .args([
            "--hidden", "4", "--epochs", "1", "--seed", "3", "--out", ".",
        ])
        .current_dir(&model)
        .env("NODEVICE_SELECT", "1")
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        inode(&model),
        model_inode,
        "the working directory was written in place, not swapped"
    );
    SavedModel::load(&model).unwrap();
    assert!(staging_leftovers(&model).is_empty());

    // A directory holding only riskgrad's lock files (of model directories that were
    // beside them) is as good as empty.
    let runs = root.join("runs");
    std::fs::create_dir(&runs).unwrap();
    std::fs::write(runs.join(".gone.riskgrad.lock"), "").unwrap();
    let into_runs = train_small(&data, &runs, &["--epochs", "1"]);
    assert!(into_runs.status.success(), "{}", stderr(&into_runs));
    SavedModel::load(&runs).unwrap();
}
