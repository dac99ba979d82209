//! Standard output or error that cannot be written (`> /dev/full`, a full disk behind
//! `> file`, a reader that went away from `train | head -1`):
//! Rust's print macros panic there, with a backtrace and exit 101. A command's prints
//! are many and scattered, so the panic is caught once, around the whole command:
//! unwinding runs every destructor (temporary files removed, staging directories gone)
//! and the process ends with one line and the exit status of a file that cannot be
//! written ([`super::exit::DATA`]).

use std::any::Any;

/// Runs `run`; `Err(what)` ("standard output: CAUSE") when it stopped because standard
/// output or standard error could not be written. Any other panic goes on as before.
pub fn catch_failed_prints<T>(run: impl FnOnce() -> T) -> Result<T, String> {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if print_failure(info.payload()).is_none() {
            default(info)
        }
    }));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(value) => Ok(value),
        Err(payload) => match print_failure(payload.as_ref()) {
            Some(cause) => Err(cause),
            None => std::panic::resume_unwind(payload),
        },
    }
}

/// The stream and the cause, when `payload` is the panic of a print that failed.
fn print_failure(payload: &(dyn Any + Send)) -> Option<String> {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())?;
    [("stdout", "standard output"), ("stderr", "standard error")]
        .into_iter()
        .find_map(|(stream, name)| {
            let cause = text.strip_prefix(&format!("failed printing to {stream}: "))?;
            Some(format!("{name}: {cause}"))
        })
}
