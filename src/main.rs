//! The riskgrad command line: train, evaluate, predict, explain, monitor, list devices,
//! benchmark kernels.

use riskgrad::cli as cmd;

use clap::{Parser, Subcommand};
use riskgrad::engine::gpu::DeviceChoice;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "riskgrad",
    version,
    about = "Train credit-default prediction models on any GPU (Vulkan, Metal, DX12) or on the CPU",
    after_help = "Exit status: 0 success; 1 internal error or a device that failed; 2 a bad flag or value, or sizes beyond the machine's memory; \
3 input data that cannot be used, or a file that cannot be read or written; 4 a model directory that \
cannot be used; 5 training diverged; 6 `bench compare --fail-on-slow` found a case slower than its \
threshold."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Threads of the native CPU backend (kernels, and the host work that splits over
    /// cores). Default: one per core (or RAYON_NUM_THREADS). With 2, small kernels are
    /// split between the caller and one spinning helper; with more, the large products
    /// split over the pool. Accepted by every command
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Subcommand)]
enum Command {
    /// List the GPU adapters wgpu finds, and the native CPU backend.
    Devices,
    /// Show the schema inferred from a CSV: each column's type, missing and distinct
    /// counts, range or top categories, and the target's positive rate.
    Inspect(cmd::inspect::InspectArgs),
    /// Train a model on a CSV file (default: the bundled Taiwan credit-card data).
    Train(Box<cmd::train::TrainArgs>),
    /// Metrics of a saved model on a labelled CSV: AUC with a bootstrap interval, KS,
    /// Gini, log loss, Brier, threshold metrics, confusion matrix, calibration.
    Eval(cmd::eval::EvalArgs),
    /// Score a CSV file of any size with a saved model, in batches, into a CSV file.
    Predict(cmd::predict::PredictArgs),
    /// Reason codes per applicant (integrated gradients) and global importance.
    Explain(cmd::explain::ExplainArgs),
    /// How far a new file has moved from the model's training rows: the score's
    /// population stability index (PSI) and every input column's (CSI), with their bands.
    Monitor(cmd::monitor::MonitorArgs),
    /// Benchmark kernels on the chosen devices.
    Bench(cmd::bench::BenchArgs),
}

impl Command {
    /// The device a command was asked to compute on, for those that take `--device`.
    fn device(&self) -> Option<&DeviceChoice> {
        match self {
            Command::Train(args) => Some(&args.device),
            Command::Eval(args) => Some(&args.device),
            Command::Predict(args) => Some(&args.device),
            Command::Explain(args) => Some(&args.device),
            Command::Monitor(args) => Some(&args.device),
            Command::Devices | Command::Inspect(_) | Command::Bench(_) => None,
        }
    }
}

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // Mesa's device-select layer only picks a default adapter (riskgrad chooses its
        // own) and warns on headless machines without XDG_RUNTIME_DIR. Set before any
        // thread starts, so nothing else reads the environment concurrently.
        std::env::set_var("NODEVICE_SELECT", "1");
    }
    // Rust ignores SIGPIPE, so printing into a closed pipe (`riskgrad bench | head`)
    // panicked; a command-line tool ends quietly there, as the default action does.
    #[cfg(unix)]
    // SAFETY: called before any other thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // clap prints --help and --version itself and ignores a failed write; a help text
    // that could not be written (`--help > /dev/full`) is not a success.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let printed = e
                .print()
                .and_then(|()| std::io::Write::flush(&mut std::io::stdout()));
            let code = match (printed, e.exit_code()) {
                (Err(_), 0) => cmd::exit::DATA as i32,
                (_, code) => code,
            };
            std::process::exit(code);
        }
    };
    // A command that may run on a GPU looks for adapters while it reads its data.
    let may_use_gpu = cli
        .command
        .device()
        .is_some_and(|d| *d != DeviceChoice::Cpu)
        || matches!(cli.command, Command::Devices | Command::Bench(_));
    if may_use_gpu {
        riskgrad::engine::gpu::prefetch_adapters();
    }
    let threads = cli
        .threads
        .map_or(Ok(()), riskgrad::engine::cpu::use_threads);
    if matches!(cli.command, Command::Train(_)) {
        // A training whose log reader went away (`train | head -1`) is not killed where
        // it stands, leaving an empty model directory: its next print fails and the run
        // ends through `catch_failed_prints`, cleaning up as any error does.
        #[cfg(unix)]
        // SAFETY: no other thread exists yet; SIG_IGN is a valid disposition.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        }
    } else {
        // `train` stops at a signal by writing a checkpoint (`cmd::signals`).
        cmd::signals::remove_temporaries_on_stop();
    }
    let run = || {
        threads.and_then(|()| match cli.command {
            Command::Devices => cmd::devices::run(),
            Command::Inspect(args) => cmd::inspect::run(&args),
            Command::Train(args) => cmd::train::run(&args),
            Command::Eval(args) => cmd::eval::run(&args),
            Command::Predict(args) => cmd::predict::run(&args),
            Command::Explain(args) => cmd::explain::run(&args),
            Command::Monitor(args) => cmd::monitor::run(&args),
            Command::Bench(args) => cmd::bench::run(&args, started),
        })
    };
    let result = match cmd::stdout::catch_failed_prints(run) {
        Ok(result) => result,
        Err(failed) => {
            // Standard error may be the stream that failed: said if it can be.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "error: could not write to {failed}");
            print_notes_after_error();
            return ExitCode::from(cmd::exit::DATA);
        }
    };
    riskgrad::engine::gpu::finish_adapter_prefetch();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Standard output may be what failed (the reader of `--log json` gone).
            let _ = cmd::log::try_event(
                "error",
                serde_json::json!({"message": cmd::message(&e), "exit": cmd::exit_code(&e)}),
            );
            eprintln!("error: {}", cmd::message(&e));
            print_notes_after_error();
            ExitCode::from(cmd::exit_code(&e))
        }
    }
}

/// What a failed command left behind (`cmd::note_after_error`), after its error line.
fn print_notes_after_error() {
    use std::io::Write;
    for note in cmd::notes_after_error() {
        let _ = writeln!(std::io::stderr(), "note: {note}");
    }
}
