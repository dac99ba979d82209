//! riskgrad writes a file by replacing it (a temporary file renamed over it), so it must
//! never be pointed at something that is not a regular file: as root, `bench --json
//! /dev/full` once replaced the device node with a JSON file. A named pipe stands in for
//! a device here (the same check refuses both, and a failing test must not harm /dev).

use crate::common::{riskgrad, stderr, TempDir};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

fn fifo(path: &Path) {
    let name = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo");
}

fn still_a_fifo(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

#[test]
fn the_library_never_replaces_a_special_file() {
    let dir = TempDir::new("special-lib");
    let pipe = dir.join("pipe");
    fifo(&pipe);
    let e = riskgrad::files::write_atomically(&pipe, b"results").unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    assert!(still_a_fifo(&pipe));
    assert!(
        riskgrad::files::write_atomically(dir.as_ref(), b"results").is_err(),
        "a directory is not replaced either"
    );
    let listed: Vec<_> = std::fs::read_dir(dir.as_ref()).unwrap().collect();
    assert_eq!(listed.len(), 1, "no temporary file left: {listed:?}");
}

#[test]
fn bench_refuses_a_json_path_that_is_not_a_regular_file_before_measuring() {
    let dir = TempDir::new("special-bench");
    let pipe = dir.join("pipe");
    fifo(&pipe);
    let p = pipe.to_str().unwrap();
    let out = riskgrad(&[
        "bench",
        "matmul",
        "--sizes",
        "3",
        "--devices",
        "cpu",
        "--budget",
        "0.01",
        "--no-peak",
        "--json",
        p,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("--json") && message.contains("not a regular file"),
        "{message}"
    );
    assert!(out.stdout.is_empty(), "nothing was measured first");
    assert!(still_a_fifo(&pipe));
}
