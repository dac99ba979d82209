//! `riskgrad bench`: the command's flags, `--json` reports and `bench compare`. The
//! suites themselves are in `suites`, which the `cargo bench` targets (benches/) include
//! too.

mod page;
mod suites;

use riskgrad::engine::gpu::tune::Tuning;
use riskgrad::engine::gpu::DeviceChoice;
use riskgrad::engine::graph::CellKind;
use riskgrad::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;
use suites::peak::PeakSource;
use suites::{Case, Report, Stats, Timing};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchKind,
    #[command(flatten)]
    pub tune: super::TuneArg,
}

/// Where the results go, besides the text on standard output.
#[derive(clap::Args, Debug)]
pub struct OutputArgs {
    /// Also write the results as one JSON document to FILE (fields in README,
    /// "Benchmarks"), written atomically.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// The longest `--budget`: an hour of samples a case is already far past what a median
/// needs, and a larger figure is a slip (1e300 ran until it was killed).
const MAX_BUDGET_SECONDS: f64 = 3600.0;

/// How long each case is measured.
#[derive(clap::Args, Debug)]
pub struct TimingArgs {
    /// Seconds of timed samples per case, after warm-up: samples are taken until the
    /// budget is spent (at least 5 of them), or, past 20, until their interquartile range
    /// is within 1 % of their median.
    #[arg(long, value_name = "SECONDS", default_value_t = suites::DEFAULT_BUDGET_SECONDS)]
    budget: f64,
}

impl TimingArgs {
    fn timing(&self) -> Result<Timing> {
        if !(self.budget.is_finite() && self.budget > 0.0) {
            return Err(Error::flag(
                "--budget",
                "the budget must be a positive number of seconds",
            ));
        }
        if self.budget > MAX_BUDGET_SECONDS {
            return Err(Error::flag(
                "--budget",
                format!(
                    "{} seconds a case is over the {MAX_BUDGET_SECONDS} (an hour) a case may take",
                    self.budget
                ),
            ));
        }
        Ok(Timing {
            budget_seconds: self.budget,
        })
    }
}

/// The ceilings of % of peak.
#[derive(clap::Args, Debug)]
pub struct PeakArgs {
    /// Leave out % of peak: no peak measurement before the cases (`peak` and
    /// `percent_of_peak` are null in the JSON).
    #[arg(long, conflicts_with = "peak")]
    no_peak: bool,
    /// Take each device's peaks from a saved `riskgrad bench peak --json FILE` instead of
    /// a short measurement (a device the file lacks is measured).
    #[arg(long, value_name = "FILE")]
    peak: Option<PathBuf>,
}

impl PeakArgs {
    fn source(&self) -> Result<PeakSource> {
        if self.no_peak {
            return Ok(PeakSource::Off);
        }
        match &self.peak {
            None => Ok(PeakSource::Measure),
            Some(path) => {
                let report = read_report(path)?;
                if !report.cases.iter().any(|c| c.suite == "peak") {
                    return Err(Error::flag(
                        "--peak",
                        format!(
                            "{} holds no peak cases; write one with `riskgrad bench peak --json FILE`",
                            path.display()
                        ),
                    ));
                }
                Ok(PeakSource::File {
                    path: path.display().to_string(),
                    report: Box::new(report),
                })
            }
        }
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchKind {
    /// Each device's measured peaks, in the manner of vkpeak and clpeak: fma GFLOP/s (f32;
    /// f16 where the adapter has SHADER_F16) from long independent fma chains, and GB/s of
    /// a copy (read + write) and a read over a buffer far larger than the caches. Each
    /// kernel's output is checked against a host reference before it is timed. The other
    /// suites report their figures as a percentage of these.
    Peak {
        #[arg(long, value_delimiter = ',', default_value = "cpu,gpu")]
        devices: Vec<DeviceChoice>,
        /// Size of the copy and read kernels' buffer, in MiB (on a GPU at most its
        /// largest storage binding).
        #[arg(long, value_name = "MIB", default_value_t = suites::peak::DEFAULT_BUFFER_MIB)]
        buffer_mib: u64,
        #[command(flatten)]
        timing: TimingArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Square f32 matmul GFLOP/s on each device, each size's output checked against an
    /// f64 reference before it is timed.
    Matmul {
        /// Matrix sizes, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "128,256,512,1024,2048")]
        sizes: Vec<usize>,
        /// Devices to run on, comma-separated (each as for --device). Default: the CPU
        /// backend and the best GPU adapter, software ones included.
        #[arg(long, value_delimiter = ',', default_value = "cpu,gpu")]
        devices: Vec<DeviceChoice>,
        #[command(flatten)]
        timing: TimingArgs,
        #[command(flatten)]
        peaks: PeakArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Convolution GFLOP/s (forward, input and weight gradients) at the CNN's shapes and
    /// an image-like 2-D layer, on each device.
    Conv {
        #[arg(long, value_delimiter = ',', default_value = "cpu,gpu")]
        devices: Vec<DeviceChoice>,
        #[command(flatten)]
        timing: TimingArgs,
        #[command(flatten)]
        peaks: PeakArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Max and average pooling GB/s (forward and backward) on each device.
    Pool {
        #[arg(long, value_delimiter = ',', default_value = "cpu,gpu")]
        devices: Vec<DeviceChoice>,
        #[command(flatten)]
        timing: TimingArgs,
        #[command(flatten)]
        peaks: PeakArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// One LSTM layer's training step (forward + backward through time) against its
    /// matmuls alone and its fused cells alone, and launches per step.
    Lstm(RnnBenchArgs),
    /// As lstm, for a GRU layer.
    Gru(RnnBenchArgs),
    /// Training throughput of a model (batch 256, Adam) on the bundled data: rows/s, time
    /// to the end of the first step, peak memory, and where one step's time goes by
    /// kernel family (each launch timed alone: device timestamps on a GPU, the host clock
    /// on the CPU). Each epoch is one sample.
    Train {
        /// The model: mlp (64-32), cnn (the default CNN), lstm or gru (layers of 64 and
        /// 32); the last three over the payment history.
        #[arg(long, value_enum, default_value = "mlp")]
        model: suites::BenchModel,
        #[arg(long, default_value = "cpu")]
        device: DeviceChoice,
        #[arg(long, default_value_t = 10)]
        epochs: usize,
        /// Prepare the data as the peer programs do (23 numeric columns, standardized)
        /// rather than with riskgrad's defaults (one-hot codes, signed-log amounts).
        #[arg(long)]
        peer_features: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Each GPU kernel variant's time on every matmul shape and convolution product of
    /// the models' training and scoring plans (batch 256, the bundled data) and on
    /// square matmuls of --sizes: which variant won each shape, and which were dropped
    /// for disagreeing with the default. Measures every shape afresh (as `--tune full`)
    /// and writes no cache.
    Tune {
        #[arg(long, default_value = "gpu")]
        device: DeviceChoice,
        /// Square matmul sizes to tune besides the models' shapes.
        #[arg(long, value_delimiter = ',', default_value = "256,1024")]
        sizes: Vec<usize>,
        /// The models whose plans are tuned (mlp, cnn, lstm, gru; lstm and gru add about
        /// twenty shapes each).
        #[arg(long, value_delimiter = ',', default_value = "mlp,cnn")]
        models: Vec<suites::BenchModel>,
    },
    /// Every suite on every device in one command: peaks, matmul, conv, pool, lstm, gru
    /// and training, written to DIR as results.json (as --json writes) and index.html
    /// (matmul GFLOP/s against size, a roofline per device, training rows/s per model and
    /// device, every case in a table). `--budget` is per case; the whole run takes about
    /// (cases × 2 × budget) plus the training epochs: minutes on a laptop.
    All {
        /// The directory to write results.json and index.html into (created if new).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[arg(long, value_delimiter = ',', default_value = "cpu,gpu")]
        devices: Vec<DeviceChoice>,
        /// The suites to run, comma-separated (default: all of them).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "peak,matmul,conv,pool,lstm,gru,train"
        )]
        suites: Vec<AllSuite>,
        /// Matrix sizes of the matmul suite.
        #[arg(long, value_delimiter = ',', default_value = "128,256,512,1024")]
        sizes: Vec<usize>,
        /// The models of the train suite.
        #[arg(
            long,
            value_delimiter = ',',
            value_enum,
            default_value = "mlp,cnn,lstm,gru"
        )]
        models: Vec<suites::BenchModel>,
        /// Epochs per model in the train suite (one sample each).
        #[arg(long, default_value_t = 3)]
        epochs: usize,
        #[command(flatten)]
        timing: TimingArgs,
    },
    /// Compare two `--json` results case by case: both medians, NEW/BASE, and a verdict.
    ///
    /// Cases are matched by suite, kernel, shape, dtype, variant and device (name and
    /// backend; --any-device leaves the device out, to compare two devices). The verdict:
    /// UNSURE when either run has fewer than 5 samples or was not timed (wrong); else SAME
    /// when the two interquartile ranges overlap or the ratio is within --threshold of 1;
    /// else SLOW when NEW's median is the larger, FAST when it is the smaller.
    #[command(
        after_help = "Exit status: 0 the comparison was made; 3 a file that cannot be read or is not a \
riskgrad bench JSON document; 6 with --fail-on-slow, a case SLOW by more than PCT %."
    )]
    Compare {
        /// The baseline results.
        base: PathBuf,
        /// The results to judge against it.
        new: PathBuf,
        /// Ratios within this many percent of 1 are SAME whatever the spreads.
        #[arg(long, value_name = "PCT", default_value_t = 5.0)]
        threshold: f64,
        /// Exit with status 6 when any case is SLOW by more than PCT % (NEW/BASE above
        /// 1 + PCT/100).
        #[arg(long, value_name = "PCT")]
        fail_on_slow: Option<f64>,
        /// Match cases without their device (two GPUs, or a GPU against the CPU).
        #[arg(long)]
        any_device: bool,
    },
}

impl BenchKind {
    /// The `--json` file the suite writes its results to, if one was named.
    fn json_out(&self) -> Option<&std::path::Path> {
        let output = match self {
            BenchKind::Peak { output, .. }
            | BenchKind::Conv { output, .. }
            | BenchKind::Pool { output, .. }
            | BenchKind::Matmul { output, .. }
            | BenchKind::Train { output, .. } => output,
            BenchKind::Lstm(a) | BenchKind::Gru(a) => &a.output,
            BenchKind::Tune { .. } | BenchKind::All { .. } | BenchKind::Compare { .. } => {
                return None
            }
        };
        output.json.as_deref()
    }

    /// The saved peaks (`--peak FILE`) a suite reads, if any.
    fn peak_file(&self) -> Option<&std::path::Path> {
        match self {
            BenchKind::Matmul { peaks, .. }
            | BenchKind::Conv { peaks, .. }
            | BenchKind::Pool { peaks, .. } => peaks.peak.as_deref(),
            _ => None,
        }
    }
}

/// The suites `bench all` can run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllSuite {
    Peak,
    Matmul,
    Conv,
    Pool,
    Lstm,
    Gru,
    Train,
}

#[derive(clap::Args, Debug)]
pub struct RnnBenchArgs {
    #[arg(long, value_delimiter = ',', default_value = "cpu,gpu")]
    devices: Vec<DeviceChoice>,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Features per step.
    #[arg(long, default_value_t = 3)]
    input: usize,
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    #[arg(long, default_value_t = 6)]
    steps: usize,
    #[command(flatten)]
    timing: TimingArgs,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(args: &BenchArgs, started: Instant) -> Result<()> {
    if let Some(json) = args.what.json_out() {
        // The saved peaks it reads are an input: never the file it writes.
        let inputs: Vec<&std::path::Path> = args.what.peak_file().into_iter().collect();
        super::output::check_output_for("--json", json, &inputs)?;
        super::output::check_outside_model_dirs("--json", json)?;
    }
    let tuning = super::tuning(args.tune.mode);
    let mut cases = Vec::new();
    let (output, budget) = match &args.what {
        BenchKind::Peak {
            devices,
            buffer_mib,
            timing,
            output,
        } => {
            if *buffer_mib == 0 || *buffer_mib > 1 << 20 {
                return Err(Error::flag(
                    "--buffer-mib",
                    "the buffer must be 1 MiB to 1 TiB",
                ));
            }
            let t = timing.timing()?;
            for choice in &once("--devices", devices) {
                match suites::open_target(choice) {
                    Ok((target, info)) => {
                        suites::peak::peak_suite(&target, &info, buffer_mib << 20, &t, &mut cases)?
                    }
                    Err(e) => eprintln!("skipping device {choice:?}: {e}"),
                }
            }
            (output, Some(t.budget_seconds))
        }
        BenchKind::Conv {
            devices,
            timing,
            peaks,
            output,
        } => {
            let t = timing.timing()?;
            suites::each_device(
                &once("--devices", devices),
                &tuning,
                &peaks.source()?,
                |exec, device| suites::conv_suite(exec, device, &t, &mut cases),
            )?;
            (output, Some(t.budget_seconds))
        }
        BenchKind::Pool {
            devices,
            timing,
            peaks,
            output,
        } => {
            let t = timing.timing()?;
            suites::each_device(
                &once("--devices", devices),
                &tuning,
                &peaks.source()?,
                |exec, device| suites::pool_suite(exec, device, &t, &mut cases),
            )?;
            (output, Some(t.budget_seconds))
        }
        BenchKind::Lstm(a) => (
            &a.output,
            Some(rnn(CellKind::Lstm, a, &tuning, &mut cases)?),
        ),
        BenchKind::Gru(a) => (&a.output, Some(rnn(CellKind::Gru, a, &tuning, &mut cases)?)),
        BenchKind::Matmul {
            sizes,
            devices,
            timing,
            peaks,
            output,
        } => {
            check_sizes(sizes)?;
            let sizes = &once("--sizes", sizes);
            let t = timing.timing()?;
            suites::each_device(
                &once("--devices", devices),
                &tuning,
                &peaks.source()?,
                |exec, device| suites::matmul_suite(exec, device, sizes, &t, &mut cases),
            )?;
            (output, Some(t.budget_seconds))
        }
        BenchKind::Train {
            model,
            device,
            epochs,
            peer_features,
            output,
        } => {
            let (mut exec, info) = suites::open_device(device, &tuning)?;
            let b = suites::train_model(
                exec.as_mut(),
                *model,
                (*epochs).max(1),
                *peer_features,
                started,
            )?;
            suites::print_train(&b, exec.as_ref());
            cases.push(b.case(&info));
            (output, None)
        }
        BenchKind::Tune {
            device,
            sizes,
            models,
        } => return tune(device, &once("--sizes", sizes), &once("--models", models)),
        BenchKind::All {
            out,
            devices,
            suites,
            sizes,
            models,
            epochs,
            timing,
        } => {
            return all(
                out,
                &once("--devices", devices),
                &once("--suites", suites),
                &once("--sizes", sizes),
                &once("--models", models),
                *epochs,
                &timing.timing()?,
                &tuning,
            )
        }
        BenchKind::Compare {
            base,
            new,
            threshold,
            fail_on_slow,
            any_device,
        } => return compare(base, new, *threshold, *fail_on_slow, *any_device),
    };
    let wrong = cases.iter().filter(|c| c.status != "ok").count();
    if let Some(path) = &output.json {
        Report::new(cases, budget).write(path)?;
    }
    if wrong > 0 {
        return Err(Error::Internal(format!(
            "{wrong} case(s) disagreed with the reference and were not timed"
        )));
    }
    Ok(())
}

/// `bench tune`: see `BenchKind::Tune`.
/// Largest square matmul size a suite takes: three 8192² f32 matrices are 0.8 GB, and
/// checking the output against the f64 reference is 5.5·10^11 multiply-adds.
const MAX_SIZE: usize = 8192;

/// `--sizes` of the matmul suites: at least one, each from 1 to [`MAX_SIZE`].
fn check_sizes(sizes: &[usize]) -> Result<()> {
    if sizes.is_empty() || sizes.contains(&0) {
        return Err(Error::flag("--sizes", "sizes must be positive"));
    }
    match sizes.iter().find(|&&n| n > MAX_SIZE) {
        Some(n) => Err(Error::flag(
            "--sizes",
            format!("{n} is over {MAX_SIZE}, the largest square matmul the suite runs"),
        )),
        None => Ok(()),
    }
}

fn tune(choice: &DeviceChoice, sizes: &[usize], models: &[suites::BenchModel]) -> Result<()> {
    use riskgrad::engine::exec::Executor;
    use riskgrad::engine::gpu::tune::TuneMode;
    use riskgrad::engine::gpu::{choose_adapter, GpuExecutor};
    use riskgrad::engine::graph::{Act, Graph};
    use riskgrad::engine::plan::{compile, PlanRequest};
    check_sizes(sizes)?;
    let ctx = choose_adapter(choice)?
        .ok_or_else(|| Error::flag("--device", "bench tune needs a GPU adapter"))?;
    fn note(line: &str) {
        eprintln!("{line}");
    }
    ctx.set_tuning(Tuning::new(TuneMode::Full, None, None, Some(note)));
    let ctx = std::sync::Arc::new(ctx);
    let device = GpuExecutor::new(ctx.clone()).device_name();
    println!("GEMM kernel variants on {device}");
    // The models' plans (loading them tunes their shapes), each on an executor of its
    // own (an executor's plans share one parameter layout).
    let mut model_lines = Vec::new();
    for &which in models {
        let (data, model) = suites::model_and_data(which, false)?;
        let before = ctx.tune_choices().len();
        let started = Instant::now();
        let mut exec = GpuExecutor::new(ctx.clone());
        let config = suites::train_config(1);
        riskgrad::train::Trainer::new(&mut exec, &model, &data.train, &data.val, config)?;
        model_lines.push(format!(
            "{} new shapes of the {} tuned in {:.2} s (pipeline builds included)",
            ctx.tune_choices().len() - before,
            which.label(),
            started.elapsed().as_secs_f64()
        ));
    }
    for &n in sizes {
        let mut g = Graph::new();
        let a = g.input("a", &[n, n])?;
        let b = g.input("b", &[n, n])?;
        let y = g.matmul_ex(a, b, None, false, false, Act::Identity)?;
        let plan = compile(
            &g,
            &PlanRequest {
                keep: vec![y],
                ..Default::default()
            },
        )?;
        GpuExecutor::new(ctx.clone()).load(plan)?;
    }
    let mut choices = ctx.tune_choices();
    choices.sort_by_key(|c| (c.shape.macs(), c.shape.key()));
    for (kind, heading) in [
        ("matmul", "matmul (m x n x k, op, bias, act)"),
        (
            "convolution",
            "convolution product (sizes, splits, bias, act)",
        ),
    ] {
        let of_kind: Vec<_> = choices.iter().filter(|c| c.shape.kind() == kind).collect();
        let Some(first) = of_kind.first() else {
            continue;
        };
        let all_variants = first.shape.variants();
        let variants: Vec<usize> = (0..all_variants.len())
            .filter(|&v| !all_variants[v].test_only)
            .collect();
        let width = of_kind
            .iter()
            .map(|c| c.shape.key().len())
            .max()
            .unwrap_or(0);
        println!();
        println!("{heading}");
        print!("{:<width$}", "shape");
        for &v in &variants {
            print!(" {:>14}", all_variants[v].name);
        }
        println!(
            "  winner (µs per launch, * timed again in turn with the others within {:.0} % of the fastest; GFLOP/s of the winner)",
            100.0 * (riskgrad::engine::gpu::tune::CONFIRM_WITHIN - 1.0)
        );
        for c in of_kind {
            print!("{:<width$}", c.shape.key());
            for &v in &variants {
                let cell = match c.times.iter().find(|t| t.variant == v) {
                    Some(t) => match (t.seconds, &t.dropped) {
                        (Some(s), _) if t.confirmed => format!("{:.1}*", s * 1e6),
                        (Some(s), _) => format!("{:.1}", s * 1e6),
                        (None, Some(_)) => "dropped".into(),
                        (None, None) => "-".into(),
                    },
                    None => "-".into(),
                };
                print!(" {cell:>14}");
            }
            let best = c
                .times
                .iter()
                .find(|t| t.variant == c.variant)
                .and_then(|t| t.seconds)
                .unwrap_or(f64::NAN);
            let flops = 2.0 * c.shape.macs() as f64;
            println!(
                "  {} ({:.2})",
                all_variants[c.variant].name,
                flops / best / 1e9
            );
            for t in &c.times {
                if let Some(why) = &t.dropped {
                    println!("    {} dropped: {why}", all_variants[t.variant].name);
                }
            }
        }
    }
    print_step_forms(&ctx.step_form_choices());
    print_widths(&ctx);
    println!();
    for line in model_lines {
        println!("{line}");
    }
    let tuning: f64 = choices.iter().map(|c| c.seconds).sum();
    println!("{tuning:.2} s of tuning in all");
    Ok(())
}

/// The flat kernels' workgroup widths as timed on `ctx`, kind by kind, and the ones
/// taken.
fn print_widths(ctx: &riskgrad::engine::gpu::GpuContext) {
    use riskgrad::engine::gpu::flat_width::{WidthKind, WIDTH_MARGIN};
    for kind in WidthKind::ALL {
        let width = ctx.width(kind);
        println!();
        println!(
            "workgroup width of the {} (µs per launch at {}; another width must take ≤ {:.0} % of {}'s summed)",
            kind.name(),
            kind.probe_sizes()
                .map(|n| format!("{n} {}", kind.probe_unit()))
                .join(" and "),
            100.0 * WIDTH_MARGIN,
            kind.default_width()
        );
        let Some(choice) = ctx.width_choice(kind).filter(|c| !c.times.is_empty()) else {
            println!("{width} (not timed in this run)");
            continue;
        };
        for (w, time) in &choice.times {
            match time {
                Ok(per_probe) => {
                    let cells: Vec<String> = per_probe
                        .iter()
                        .map(|s| format!("{:>9.1}", s * 1e6))
                        .collect();
                    println!("{w:>5} {}", cells.join(" "));
                }
                Err(why) => println!("{w:>5} dropped: {why}"),
            }
        }
        println!("taken: {width}");
    }
}

/// The training and scoring steps whose row launches can run as the row program: each
/// form's time for the row stage, and the one chosen.
fn print_step_forms(choices: &[riskgrad::engine::gpu::tune::StepFormChoice]) {
    use riskgrad::engine::gpu::tune::StepForm;
    if choices.is_empty() {
        return;
    }
    println!();
    println!("step forms: a step's row launches one by one, or fused into one row program (µs per row stage; fused must take ≤ {:.0} % of the launches' time)", 100.0 * riskgrad::engine::gpu::tune::FUSED_FORM_MARGIN);
    print!("{:<8}", "rows");
    for form in StepForm::all() {
        print!(" {:>16}", form.name());
    }
    println!("  chosen  (row launches)");
    for c in choices {
        let batch = c.key.split_whitespace().nth(2).unwrap_or("");
        print!("{batch:<8}");
        for form in StepForm::all() {
            let cell = match c.times.iter().find(|t| t.0 == form) {
                Some(t) => format!("{:.1}", t.1 * 1e6),
                None => "-".into(),
            };
            print!(" {cell:>16}");
        }
        let ops = c.key.splitn(4, ' ').nth(3).unwrap_or("");
        println!("  {}  ({ops})", c.form.name());
    }
}

/// `list` with repeats left out, saying so: a case measured twice would be in the
/// report twice, which `bench compare` refuses.
fn once<T: PartialEq + Clone + std::fmt::Debug>(flag: &str, list: &[T]) -> Vec<T> {
    let mut kept: Vec<T> = Vec::with_capacity(list.len());
    for item in list {
        if kept.contains(item) {
            let named = format!("{item:?}").to_lowercase();
            eprintln!("note: {flag} names {named} more than once; measured once");
        } else {
            kept.push(item.clone());
        }
    }
    kept
}

/// `bench all`: the chosen suites on every device, then DIR/results.json and
/// DIR/index.html. The peaks measured first are the ceilings of the later suites' % of
/// peak and the page's roofline. GPU matmuls tune as `tuning` says.
#[allow(clippy::too_many_arguments)]
fn all(
    out: &Path,
    devices: &[DeviceChoice],
    chosen: &[AllSuite],
    sizes: &[usize],
    models: &[suites::BenchModel],
    epochs: usize,
    t: &Timing,
    tuning: &Tuning,
) -> Result<()> {
    check_sizes(sizes)?;
    if epochs == 0 {
        return Err(Error::flag("--epochs", "must be at least 1"));
    }
    if out.exists() && !out.is_dir() {
        return Err(Error::flag(
            "--out",
            format!("{} is not a directory", out.display()),
        ));
    }
    // Only an earlier `bench all`'s files are replaced: a directory's own index.html or
    // results.json (a web page, another tool's results) is the user's.
    for (name, mark) in [
        ("index.html", page::TITLE),
        ("results.json", "\"created_unix\""),
    ] {
        let path = out.join(name);
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            let ours = meta.is_file()
                && std::fs::read_to_string(&path).is_ok_and(|text| text.contains(mark));
            if !ours {
                return Err(Error::flag(
                    "--out",
                    format!(
                        "{} is not from an earlier `riskgrad bench all`, and would be replaced: choose another directory",
                        path.display()
                    ),
                ));
            }
        }
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let has = |s: AllSuite| chosen.contains(&s);
    let mut cases = Vec::new();
    if has(AllSuite::Peak) {
        for choice in devices {
            match suites::open_target(choice) {
                Ok((target, info)) => suites::peak::peak_suite(
                    &target,
                    &info,
                    suites::peak::DEFAULT_BUFFER_MIB << 20,
                    t,
                    &mut cases,
                )?,
                Err(e) => eprintln!("skipping device {choice:?}: {e}"),
            }
        }
    }
    let peaks = match cases.is_empty() {
        true => PeakSource::Off,
        false => PeakSource::File {
            path: "this run's bench peak".into(),
            report: Box::new(Report::new(cases.clone(), Some(t.budget_seconds))),
        },
    };
    suites::each_device(devices, tuning, &peaks, |exec, device| {
        if has(AllSuite::Matmul) {
            suites::matmul_suite(exec, device, sizes, t, &mut cases)?;
        }
        if has(AllSuite::Conv) {
            suites::conv_suite(exec, device, t, &mut cases)?;
        }
        if has(AllSuite::Pool) {
            suites::pool_suite(exec, device, t, &mut cases)?;
        }
        Ok(())
    })?;
    for (suite, kind) in [
        (AllSuite::Lstm, CellKind::Lstm),
        (AllSuite::Gru, CellKind::Gru),
    ] {
        if has(suite) {
            suites::recurrent_on_devices(kind, devices, tuning, 256, 3, 64, 6, t, &mut cases)?;
        }
    }
    if has(AllSuite::Train) {
        for choice in devices {
            for &model in models {
                let (mut exec, info) = match suites::open_device(choice, tuning) {
                    Ok(opened) => opened,
                    Err(e) => {
                        eprintln!("skipping device {choice:?}: {e}");
                        break;
                    }
                };
                let b = suites::train_model(exec.as_mut(), model, epochs, false, Instant::now())?;
                suites::print_train(&b, exec.as_ref());
                cases.push(b.case(&info));
            }
        }
    }
    let wrong = cases.iter().filter(|c| c.status != "ok").count();
    let report = Report::new(cases, Some(t.budget_seconds));
    report.write(&out.join("results.json"))?;
    riskgrad::files::write_atomically(&out.join("index.html"), page::html(&report)?.as_bytes())?;
    println!(
        "wrote {} and {}",
        out.join("results.json").display(),
        out.join("index.html").display()
    );
    if wrong > 0 {
        return Err(Error::Internal(format!(
            "{wrong} case(s) disagreed with the reference and were not timed"
        )));
    }
    Ok(())
}

/// Runs an LSTM or GRU bench; returns the budget used.
fn rnn(kind: CellKind, args: &RnnBenchArgs, tuning: &Tuning, cases: &mut Vec<Case>) -> Result<f64> {
    let t = args.timing.timing()?;
    suites::recurrent_on_devices(
        kind,
        &args.devices,
        tuning,
        args.batch,
        args.input,
        args.hidden,
        args.steps,
        &t,
        cases,
    )?;
    Ok(t.budget_seconds)
}

/// Reads a `--json` report, naming the file in any error (exit status 3).
fn read_report(path: &Path) -> Result<Report> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let bad = |line: Option<u64>, message: String| Error::Data {
        path: path.to_path_buf(),
        line,
        row: None,
        column: None,
        setting: None,
        message,
    };
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| bad(Some(e.line() as u64), format!("not JSON: {e}")))?;
    match value.get("schema").and_then(|s| s.as_u64()) {
        Some(s) if s == suites::SCHEMA as u64 => {}
        Some(s) => {
            return Err(bad(
                None,
                format!(
                    "a bench report of schema {s}; this riskgrad reads schema {}",
                    suites::SCHEMA
                ),
            ))
        }
        None => {
            return Err(bad(
                None,
                "not a riskgrad bench report (no \"schema\" number; write one with `riskgrad bench ... --json FILE`)".into(),
            ))
        }
    }
    let report: Report = serde_json::from_value(value)
        .map_err(|e| bad(None, format!("not a riskgrad bench report: {e}")))?;
    // Times riskgrad could not have measured, or a case twice, would be compared as
    // if they were (a median of 0 read as an infinite slowdown, SAME).
    let mut seen = std::collections::HashSet::new();
    for (i, c) in report.cases.iter().enumerate() {
        let case = format!("case {} ({} {} {})", i + 1, c.suite, c.kernel, c.shape);
        if let Some(t) = &c.stats {
            let ordered = [t.min, t.q1, t.median, t.q3, t.max]
                .windows(2)
                .all(|w| w[0] <= w[1]);
            if !(t.min > 0.0 && t.max.is_finite() && ordered && t.samples > 0) {
                return Err(bad(
                    None,
                    format!(
                        "{case}: its times are no measurement (min {}, quartiles {} and {}, median {}, max {}, {} samples): not a report riskgrad wrote as it stands",
                        t.min, t.q1, t.q3, t.median, t.max, t.samples
                    ),
                ));
            }
        }
        let key = (
            &c.suite,
            &c.kernel,
            &c.shape,
            &c.dtype,
            &c.variant,
            &c.device.name,
            &c.device.backend,
        );
        if !seen.insert(key) {
            return Err(bad(None, format!("{case} is in the report twice")));
        }
    }
    Ok(report)
}

/// A comparison's verdict on one case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Fast,
    Slow,
    Same,
    Unsure,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Fast => "FAST",
            Verdict::Slow => "SLOW",
            Verdict::Same => "SAME",
            Verdict::Unsure => "UNSURE",
        }
    }
}

/// The rule of `bench compare` (its --help and README state it): UNSURE with fewer than
/// `MIN_SAMPLES` samples on either side; SAME when the interquartile ranges overlap or
/// the ratio of medians is within `threshold` (a fraction) of 1; else SLOW or FAST.
pub fn verdict(base: &Stats, new: &Stats, threshold: f64) -> Verdict {
    if base.samples < suites::MIN_SAMPLES || new.samples < suites::MIN_SAMPLES {
        return Verdict::Unsure;
    }
    let ratio = new.median / base.median;
    let overlap = base.q1 <= new.q3 && new.q1 <= base.q3;
    if overlap || (ratio - 1.0).abs() <= threshold {
        Verdict::Same
    } else if ratio > 1.0 {
        Verdict::Slow
    } else {
        Verdict::Fast
    }
}

/// Seconds in the unit that suits them.
fn seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.3} µs", s * 1e6)
    }
}

fn compare(
    base_path: &Path,
    new_path: &Path,
    threshold_pct: f64,
    fail_on_slow: Option<f64>,
    any_device: bool,
) -> Result<()> {
    if !(threshold_pct.is_finite() && threshold_pct >= 0.0) {
        return Err(Error::flag(
            "--threshold",
            "must be a percentage, 0 or more",
        ));
    }
    if fail_on_slow.is_some_and(|p| !(p.is_finite() && p >= 0.0)) {
        return Err(Error::flag(
            "--fail-on-slow",
            "must be a percentage, 0 or more",
        ));
    }
    let (base, new) = (read_report(base_path)?, read_report(new_path)?);
    // A matmul case's variant is the one the GPU's tuner chose (or `default`): the same
    // product either way, so a tuned run is compared with an untuned one or an older
    // one. Elsewhere the variant names different work (a convolution's grad_input).
    let variant_of = |c: &Case| match c.suite.as_str() {
        "matmul" => String::new(),
        _ => c.variant.clone(),
    };
    let key = |c: &Case| {
        let device = if any_device {
            String::new()
        } else {
            format!("{} ({})", c.device.name, c.device.backend)
        };
        (
            c.suite.clone(),
            c.kernel.clone(),
            c.shape.clone(),
            c.dtype.clone(),
            variant_of(c),
            device,
        )
    };
    let threshold = threshold_pct / 100.0;
    println!(
        "{:<8} {:<44} {:<24} {:>12} {:>12} {:>7}  verdict",
        "suite", "case", "device", "base", "new", "new/base"
    );
    let mut worst_slow: Option<f64> = None;
    let mut failing = 0;
    let mut matched = vec![false; new.cases.len()];
    let label = |c: &Case, variant: &str| format!("{} {variant} {} {}", c.kernel, c.shape, c.dtype);
    for b in &base.cases {
        let mut name = label(b, &b.variant);
        let device = if any_device {
            String::from("-")
        } else {
            suites::device_label(&b.device)
        };
        let Some(i) = new.cases.iter().position(|n| key(n) == key(b)) else {
            println!(
                "{:<8} {name:<44} {device:<24} only in {}",
                b.suite,
                base_path.display()
            );
            continue;
        };
        matched[i] = true;
        let n = &new.cases[i];
        if n.variant != b.variant {
            name = label(b, &format!("{}->{}", b.variant, n.variant));
        }
        match (&b.stats, &n.stats) {
            (Some(bs), Some(ns)) => {
                let ratio = ns.median / bs.median;
                let v = verdict(bs, ns, threshold);
                if v == Verdict::Slow {
                    worst_slow = Some(worst_slow.map_or(ratio, |w| w.max(ratio)));
                    if fail_on_slow.is_some_and(|p| ratio > 1.0 + p / 100.0) {
                        failing += 1;
                    }
                }
                println!(
                    "{:<8} {name:<44} {device:<24} {:>12} {:>12} {ratio:>7.3}x  {}",
                    b.suite,
                    seconds(bs.median),
                    seconds(ns.median),
                    v.label()
                );
            }
            _ => println!(
                "{:<8} {name:<44} {device:<24} {:>12} {:>12} {:>8}  UNSURE (not timed: {} in base, {} in new)",
                b.suite,
                b.stats.as_ref().map_or("-".into(), |s| seconds(s.median)),
                n.stats.as_ref().map_or("-".into(), |s| seconds(s.median)),
                "-",
                b.status,
                n.status
            ),
        }
    }
    for (n, _) in new.cases.iter().zip(&matched).filter(|(_, m)| !**m) {
        let name = label(n, &n.variant);
        let device = if any_device {
            String::from("-")
        } else {
            suites::device_label(&n.device)
        };
        println!(
            "{:<8} {name:<44} {device:<24} only in {}",
            n.suite,
            new_path.display()
        );
    }
    if let Some(pct) = fail_on_slow {
        if failing > 0 {
            println!(
                "{failing} case(s) SLOW by more than {pct} % (worst {:.3}x)",
                worst_slow.unwrap_or(f64::NAN)
            );
            use std::io::Write;
            let _ = std::io::stdout().flush();
            std::process::exit(super::exit::SLOWER.into());
        }
    }
    Ok(())
}
