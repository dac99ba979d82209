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
/// `time` added. Non-finite numbers become null, as JSON has no NaN.
pub fn event(name: &str, fields: Value) {
    if !json() {
        return;
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
    println!("{}", Value::Object(object));
}
