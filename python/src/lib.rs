//! `riskgrad._riskgrad`: the Python package's extension module, a thin layer over the
//! riskgrad library. Training, evaluation and explanations run the command layer's own
//! functions (`riskgrad::cli`: the same defaults, files and messages as the CLI), from
//! an argument list the Python side builds from keyword arguments; scoring reads Arrow
//! batches handed over through the Arrow C stream interface (no copy) and returns the
//! scores the same way. Every library error becomes an exception of the `RiskgradError`
//! family carrying the message the CLI prints.

use std::ffi::CStr;
use std::path::PathBuf;
use std::sync::{Mutex, TryLockError};

use arrow_array::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use arrow_array::{RecordBatch, RecordBatchIterator, RecordBatchReader};
use clap::Parser;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict, PyList};
use riskgrad::cli::{self, eval::EvalArgs, explain::ExplainArgs, train::TrainArgs};
use riskgrad::data::PredictReader;
use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::shaders::Precision;
use riskgrad::engine::gpu::tune::Tuning;
use riskgrad::engine::gpu::DeviceChoice;
use riskgrad::engine::{select_executor_tuned, WhenNoGpu};
use riskgrad::model_io::SavedModel;
use riskgrad::scoring::{plan_rows, KeptPlans, Scorer as ScoringPass};

create_exception!(
    _riskgrad,
    RiskgradError,
    PyException,
    "Any error riskgrad reports; `exit_status` is the status the CLI exits with for it."
);
create_exception!(
    _riskgrad,
    UsageError,
    RiskgradError,
    "An option or value that makes no sense (the CLI's exit status 2)."
);
create_exception!(
    _riskgrad,
    DataError,
    RiskgradError,
    "Input data that cannot be used, or a file that cannot be read or written (status 3)."
);
create_exception!(
    _riskgrad,
    ModelError,
    RiskgradError,
    "A model directory that cannot be used: missing, damaged, another format (status 4)."
);
create_exception!(
    _riskgrad,
    DivergedError,
    RiskgradError,
    "Training diverged: the loss stopped being a finite, sane number (status 5)."
);
create_exception!(
    _riskgrad,
    StoppedError,
    RiskgradError,
    "Training stopped by SIGINT or SIGTERM after writing a checkpoint (status 130, 143)."
);
create_exception!(
    _riskgrad,
    InternalError,
    RiskgradError,
    "An internal error, or a device that failed (status 1)."
);

/// A library error as the exception of its kind, with the CLI's message and exit status.
fn raise(error: riskgrad::Error) -> PyErr {
    let message = cli::message(&error);
    let status = cli::exit_code(&error);
    let err = match status {
        cli::exit::USAGE => UsageError::new_err(message),
        cli::exit::DATA => DataError::new_err(message),
        cli::exit::MODEL => ModelError::new_err(message),
        cli::exit::DIVERGED => DivergedError::new_err(message),
        cli::exit::INTERNAL => InternalError::new_err(message),
        _ => StoppedError::new_err(message),
    };
    Python::attach(|py| {
        let _ = err.value(py).setattr("exit_status", status);
    });
    err
}

/// A command line that clap refused (an unknown option, a value of the wrong kind), as
/// a `UsageError` with clap's message.
fn usage(error: clap::Error) -> PyErr {
    let text = error.render().to_string();
    let text = text.trim().trim_start_matches("error: ");
    let err = UsageError::new_err(text.to_string());
    Python::attach(|py| {
        let _ = err.value(py).setattr("exit_status", cli::exit::USAGE);
    });
    err
}

#[derive(Parser)]
#[command(name = "train", no_binary_name = true)]
struct Train {
    #[command(flatten)]
    args: TrainArgs,
}

#[derive(Parser)]
#[command(name = "eval", no_binary_name = true)]
struct Eval {
    #[command(flatten)]
    args: EvalArgs,
}

#[derive(Parser)]
#[command(name = "explain", no_binary_name = true)]
struct Explain {
    #[command(flatten)]
    args: ExplainArgs,
}

/// Runs `riskgrad train` with these arguments (as on the command line, without the
/// command's name), the GIL released; the model directory is written as the CLI
/// writes it.
#[pyfunction]
fn run_train(py: Python<'_>, argv: Vec<String>) -> PyResult<()> {
    let args = Train::try_parse_from(argv).map_err(usage)?.args;
    py.detach(|| cli::train::run(&args)).map_err(raise)
}

/// Runs `riskgrad eval --json` with these arguments; returns the JSON document.
#[pyfunction]
fn run_eval(py: Python<'_>, argv: Vec<String>) -> PyResult<String> {
    let mut args = Eval::try_parse_from(argv).map_err(usage)?.args;
    args.json = true;
    let mut doc = String::new();
    py.detach(|| cli::eval::run_with(&args, &mut |d| doc = d.to_string()))
        .map_err(raise)?;
    Ok(doc)
}

/// Runs `riskgrad explain --json` with these arguments; returns the JSON document.
#[pyfunction]
fn run_explain(py: Python<'_>, argv: Vec<String>) -> PyResult<String> {
    let mut args = Explain::try_parse_from(argv).map_err(usage)?.args;
    args.json = true;
    let mut doc = String::new();
    py.detach(|| cli::explain::run_with(&args, &mut |d| doc = d.to_string()))
        .map_err(raise)?;
    Ok(doc)
}

/// Saves a copy of the model directory `from` as `to` as the CLI writes a model
/// directory: under `to`'s lock, staged beside it and swapped in at once
/// (`cli::output::copy_model_dir`), the GIL released.
#[pyfunction]
fn save_model(py: Python<'_>, from: PathBuf, to: PathBuf) -> PyResult<()> {
    py.detach(|| cli::output::copy_model_dir(&from, &to))
        .map_err(raise)
}

/// The GPU adapters wgpu finds and the native CPU backend, as `riskgrad devices`
/// lists them: one dict each.
#[pyfunction]
fn devices(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    let adapters = py.detach(riskgrad::engine::gpu::list_adapters);
    let list = PyList::empty(py);
    for a in adapters {
        let d = PyDict::new(py);
        d.set_item("index", a.index)?;
        d.set_item("name", &a.name)?;
        d.set_item("backend", &a.backend)?;
        d.set_item("device_type", &a.device_type)?;
        d.set_item("driver", format!("{} {}", a.driver, a.driver_info).trim())?;
        d.set_item("software", a.is_software)?;
        d.set_item("f16", a.f16)?;
        d.set_item("subgroups", a.subgroups)?;
        d.set_item(
            "max_storage_buffer_binding_size",
            a.max_storage_buffer_binding_size,
        )?;
        d.set_item("max_buffer_size", a.max_buffer_size)?;
        list.append(d)?;
    }
    let cpu = PyDict::new(py);
    cpu.set_item("index", "cpu")?;
    cpu.set_item("name", "native CPU backend")?;
    cpu.set_item("backend", "native")?;
    cpu.set_item("device_type", "cpu")?;
    cpu.set_item("threads", rayon::current_num_threads())?;
    list.append(cpu)?;
    Ok(list)
}

const STREAM: &CStr = c"arrow_array_stream";

/// A saved model loaded for scoring: `riskgrad predict` over Arrow batches in memory.
#[pyclass(frozen)]
struct Scorer {
    model: SavedModel,
    /// Whether the device note (a CPU fallback, a software adapter) was printed.
    said: Mutex<bool>,
    /// The executor of the last device asked for, with the model's plans loaded into
    /// it: a Ray actor or Spark worker calls `predict` once per batch, and opening an
    /// executor and compiling the plan each time cost a fifth of a 4096-row call.
    kept: Mutex<Option<(DeviceChoice, KeptPlans)>>,
    /// The model's own thread pool when `threads` was given: a Ray actor or Spark task
    /// granted one CPU scores on one thread instead of every core of the machine (which
    /// the other actors are scoring on too).
    pool: Option<rayon::ThreadPool>,
}

#[pymethods]
impl Scorer {
    /// Loads the model directory `dir` (as `riskgrad predict --model DIR` does).
    /// `threads`: the CPU threads it scores with on the CPU backend (default: the
    /// process's pool, every core or `RAYON_NUM_THREADS`).
    #[new]
    #[pyo3(signature = (dir, threads=None))]
    fn new(py: Python<'_>, dir: PathBuf, threads: Option<usize>) -> PyResult<Self> {
        let model = py.detach(|| cli::load_model(&dir)).map_err(raise)?;
        let pool = match threads {
            None => None,
            Some(n) if !(1..=riskgrad::engine::cpu::MAX_THREADS).contains(&n) => {
                return Err(raise(riskgrad::Error::flag(
                    "threads",
                    format!(
                        "{n} must be between 1 and {}",
                        riskgrad::engine::cpu::MAX_THREADS
                    ),
                )))
            }
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|k| format!("riskgrad-score-{k}"))
                    .build()
                    .map_err(|e| InternalError::new_err(format!("threads={n}: {e}")))?,
            ),
        };
        Ok(Scorer {
            model,
            said: Mutex::new(false),
            kept: Mutex::new(None),
            pool,
        })
    }

    /// Scores the rows of `stream` (a PyCapsule of an ArrowArrayStream, as
    /// `__arrow_c_stream__` returns) as `riskgrad predict` would score the same table
    /// saved as Parquet: returns a capsule of a stream of the scores (the id column or
    /// `row`, probability_of_default, and points with `points` "BASE:ODDS:PDO").
    /// `name` names the data in messages.
    #[pyo3(signature = (stream, name, device="auto", batch=4096, points=None))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        stream: &Bound<'py, PyCapsule>,
        name: &str,
        device: &str,
        batch: usize,
        points: Option<&str>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        if batch == 0 {
            return Err(raise(riskgrad::Error::flag(
                "--batch",
                "must be at least 1",
            )));
        }
        let choice: DeviceChoice = device
            .parse()
            .map_err(|e| raise(riskgrad::Error::flag("--device", format!("{e}"))))?;
        let points = points
            .map(cli::predict::parse_points)
            .transpose()
            .map_err(raise)?;
        let ptr = stream.pointer_checked(Some(STREAM))?;
        // SAFETY: the capsule holds an ArrowArrayStream (checked by its name, as the
        // PyCapsule protocol names it); from_raw moves it out and leaves a released one.
        let reader = unsafe { RecordBatchStreamReader::from_raw(ptr.as_ptr().cast()) }
            .map_err(|e| DataError::new_err(format!("{name}: {e}")))?;
        let schema = reader.schema();
        // Collected with the GIL held (a stream may call back into Python); the arrays
        // are pyarrow's own buffers, not copies.
        let batches: Vec<RecordBatch> = reader
            .collect::<Result<_, _>>()
            .map_err(|e| DataError::new_err(format!("{name}: {e}")))?;
        let model = &self.model;
        let said = &self.said;
        let kept = &self.kept;
        let score = move || -> riskgrad::Result<RecordBatch> {
            let mut reader =
                PredictReader::from_batches(name, schema, batches, &model.preprocessing)?;
            let open = || {
                let mut said = said.lock().unwrap_or_else(|p| p.into_inner());
                match *said {
                    // The CLI's notes (a CPU fallback, a software adapter, the tuner's)
                    // once per model; the matmuls tuned as the CLI's default either way.
                    false => {
                        *said = true;
                        cli::executor_tuned(&choice, cli::DEFAULT_TUNE)
                    }
                    true => {
                        let quiet = Tuning {
                            note: None,
                            ..cli::tuning(cli::DEFAULT_TUNE)
                        };
                        // Scores are computed in f32: saved models are f32.
                        let scored = select_executor_tuned(
                            &choice,
                            WhenNoGpu::UseCpu,
                            quiet,
                            Precision::F32,
                        )?;
                        Ok(scored.executor)
                    }
                }
            };
            let row_ids = !reader.has_id_column();
            let schema = cli::scores_out::scores_schema(
                &cli::predict::id_header(&reader, model),
                row_ids,
                points.is_some(),
            );
            let (mut ids, mut probs) = (Vec::new(), Vec::new());
            let mut sink = |i: &[String], p: &[f32]| {
                ids.extend_from_slice(i);
                probs.extend_from_slice(p);
                Ok(())
            };
            let first = reader.next_batch(batch)?;
            let rows = plan_rows(first.as_ref());
            // The model's kept executor and plans when no other thread is scoring
            // with them (else, or for a batch size beyond those kept, an executor of
            // this call's own, as the CLI opens one per run).
            let mut kept = match kept.try_lock() {
                Ok(guard) => Some(guard),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            };
            if let Some(slot) = kept.as_deref_mut() {
                if slot.as_ref().is_none_or(|(c, _)| *c != choice) {
                    *slot = Some((choice.clone(), KeptPlans::new(open()?)));
                }
            }
            let mut own: Option<Box<dyn Executor>> = None;
            let scorer = match kept.as_deref_mut().and_then(|slot| slot.as_mut()) {
                Some((_, plans)) => plans.scorer(model, rows)?,
                None => None,
            };
            let scorer = match scorer {
                Some(scorer) => scorer,
                None => ScoringPass::new(own.insert(open()?).as_mut(), model, rows)?,
            };
            cli::predict::score_from(scorer, first, model, &mut reader, &mut sink)?;
            cli::data_args::report_scoring_notes(reader.odd_cells(), &reader.unused_columns());
            cli::scores_out::scores_batch(&schema, row_ids, &ids, &probs, points.as_ref())
        };
        // In the model's pool, if it has one: the CPU kernels split their work across
        // the pool they run in, and the executor sizes its lanes by it.
        let scores = py
            .detach(|| match &self.pool {
                Some(pool) => pool.install(score),
                None => score(),
            })
            .map_err(raise)?;
        let schema = scores.schema();
        let out =
            FFI_ArrowArrayStream::new(Box::new(RecordBatchIterator::new([Ok(scores)], schema)));
        PyCapsule::new_with_value(py, out, STREAM)
    }

    /// The model's input columns, in its order.
    #[getter]
    fn columns(&self) -> Vec<String> {
        self.model.source_names()
    }
}

/// The extension module.
#[pymodule]
fn _riskgrad(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(run_train, m)?)?;
    m.add_function(wrap_pyfunction!(run_eval, m)?)?;
    m.add_function(wrap_pyfunction!(run_explain, m)?)?;
    m.add_function(wrap_pyfunction!(devices, m)?)?;
    m.add_function(wrap_pyfunction!(save_model, m)?)?;
    m.add_class::<Scorer>()?;
    m.add("RiskgradError", py.get_type::<RiskgradError>())?;
    m.add("UsageError", py.get_type::<UsageError>())?;
    m.add("DataError", py.get_type::<DataError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("DivergedError", py.get_type::<DivergedError>())?;
    m.add("StoppedError", py.get_type::<StoppedError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}
