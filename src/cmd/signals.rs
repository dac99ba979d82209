//! Stop requests from the operating system. SIGINT (Ctrl-C) and SIGTERM (what a job
//! scheduler, `docker stop` or a spot instance's reclaim sends) ask a training run to
//! stop after its current run of steps, write a checkpoint there and exit 130 or 143
//! (128 + the signal, as a shell reports it). A second signal ends the process at once.
//! The other commands end at the first signal, as they would by default, but remove
//! the temporary files of the outputs they were writing first
//! ([`remove_temporaries_on_stop`]).

use riskgrad::train::StopRequest;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

struct Handlers {
    stop: StopRequest,
    /// The last signal that arrived (0 before any).
    last: Arc<AtomicUsize>,
}

static HANDLERS: OnceLock<Option<Handlers>> = OnceLock::new();

/// Installs the handlers (once) and returns the flag they set; `None` where signals
/// cannot be caught (then a signal ends the process as it would have).
pub fn stop_request() -> Option<StopRequest> {
    HANDLERS
        .get_or_init(install)
        .as_ref()
        .map(|h| Arc::clone(&h.stop))
}

/// The exit status for a run stopped by a signal: 128 + the signal's number.
pub fn exit_status() -> Option<u8> {
    let last = HANDLERS.get()?.as_ref()?.last.load(Ordering::SeqCst);
    (last > 0).then(|| (128 + last).min(255) as u8)
}

#[cfg(unix)]
fn install() -> Option<Handlers> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use signal_hook::flag;
    let stop = Arc::new(AtomicBool::new(false));
    let last = Arc::new(AtomicUsize::new(0));
    for signal in [SIGINT, SIGTERM] {
        // The shutdown goes first: on the first signal `stop` is still false, so it only
        // arms it for the second.
        let installed = flag::register_conditional_shutdown(signal, 128 + signal, stop.clone())
            .and_then(|_| flag::register_usize(signal, last.clone(), signal as usize))
            .and_then(|_| flag::register(signal, stop.clone()));
        if installed.is_err() {
            return None;
        }
    }
    Some(Handlers { stop, last })
}

#[cfg(not(unix))]
fn install() -> Option<Handlers> {
    None
}

/// For every command but `train`: SIGINT and SIGTERM end the process with 130 or 143 as
/// they would by default, but the temporary files of the outputs being written go
/// first (`predict` into a large file left a partial `scores.csv.riskgrad-….tmp`).
#[cfg(unix)]
pub fn remove_temporaries_on_stop() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::Builder::new()
        .name("riskgrad-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                use std::io::Write;
                let name = if signal == SIGINT { "SIGINT" } else { "SIGTERM" };
                let _ = writeln!(
                    std::io::stderr(),
                    "stopped by {name}: the outputs being written were removed; files from before are as they were"
                );
                riskgrad::files::remove_temporary_files_and_exit(128 + signal);
            }
        })
        .ok();
}

#[cfg(not(unix))]
pub fn remove_temporaries_on_stop() {}
