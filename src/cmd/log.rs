//! `--log json`: one JSON object per line on stdout for each event of a training run, for
//! log collectors (the human lines stay on stderr). Every object has `event` (its kind)
//! and `time` (Unix seconds); README ("Logs for machines") lists the events and fields.

use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};

static JSON: AtomicBool = AtomicBool::new(false);

/// How a run reports its events.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Lines for a person, on stderr.
    #[default]
    Text,
    /// Also one JSON object per event on stdout.
    Json,
}

/// Turns JSON events on or off for this process.
pub fn set(format: LogFormat) {
    JSON.store(format == LogFormat::Json, Ordering::SeqCst);
}

/// Whether JSON events are on.
pub fn json() -> bool {
    JSON.load(Ordering::SeqCst)
}

/// Prints one event (when JSON events are on): `fields` (an object) with `event` and
/// `time` added. Non-finite numbers become null, as JSON has no NaN. Standard output
/// that cannot be written panics as `println!` does (`cmd::stdout` catches it).
pub fn event(name: &str, fields: Value) {
    if let Err(e) = try_event(name, fields) {
        panic!("failed printing to stdout: {e}");
    }
}

/// A run's last words, once its files are written: the `done` event and `line` for the
/// person (on stdout, or on stderr when stdout holds the JSON events). A reader that went
/// away by then (`train --log json | head -1`, a fast run) does not undo the files, so
/// the error names the directory and says they are written.
pub fn say_done(out: &std::path::Path, fields: Value, line: &str) -> crate::Result<()> {
    use std::io::Write;
    try_event("done", fields)
        .and_then(|()| match json() {
            true => writeln!(std::io::stderr(), "{line}"),
            false => writeln!(std::io::stdout(), "{line}"),
        })
        .map_err(|e| {
            crate::Error::data_file(
                out,
                format!("the run's files are written, but its last line could not be printed: {e}"),
            )
        })
}

/// `event`, returning a failed write.
pub fn try_event(name: &str, fields: Value) -> std::io::Result<()> {
    use std::io::Write;
    if !json() {
        return Ok(());
    }
    let mut object = Map::new();
    object.insert("event".into(), json!(name));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    object.insert("time".into(), json!(now));
    if let Value::Object(rest) = fields {
        object.extend(rest);
    }
    writeln!(std::io::stdout(), "{}", Value::Object(object))
}
