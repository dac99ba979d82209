//! `riskgrad bench`

use riskgrad::bench;
use riskgrad::engine::gpu::DeviceChoice;
use riskgrad::{Error, Result};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchKind,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchKind {
    /// Square f32 matmul GFLOP/s on each device.
    Matmul {
        /// Matrix sizes, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "128,256,512,1024,2048")]
        sizes: Vec<usize>,
        /// Devices to run on, comma-separated (each as for --device). Default: the CPU
        /// backend and the best GPU adapter, software ones included.
        #[arg(long, value_delimiter = ',', default_value = "cpu,gpu")]
        devices: Vec<DeviceChoice>,
    },
    /// Convolution GFLOP/s (forward, input and weight gradients) at the CNN's shapes and
    /// an image-like 2-D layer, on each device.
    Conv {
        #[arg(long, value_delimiter = ',', default_value = "cpu,gpu")]
        devices: Vec<DeviceChoice>,
    },
    /// Max and average pooling GB/s (forward and backward) on each device.
    Pool {
        #[arg(long, value_delimiter = ',', default_value = "cpu,gpu")]
        devices: Vec<DeviceChoice>,
    },
    /// One LSTM layer's training step (forward + backward through time) against its
    /// matmuls alone and its fused cells alone, and launches per step.
    Lstm(RnnBenchArgs),
    /// As lstm, for a GRU layer.
    Gru(RnnBenchArgs),
    /// Training throughput of the default MLP (64-32, batch 256, Adam) on the bundled
    /// data: rows/s, time to the end of the first step, peak memory.
    Train {
        #[arg(long, default_value = "cpu")]
        device: DeviceChoice,
        #[arg(long, default_value_t = 10)]
        epochs: usize,
        /// Prepare the data as the peer programs do (23 numeric columns, standardized)
        /// rather than with riskgrad's defaults (one-hot codes, signed-log amounts).
        #[arg(long)]
        peer_features: bool,
    },
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
}

/// An executor for each device the user listed; one that is not there is skipped with
/// a line saying so.
fn each_device(
    devices: &[DeviceChoice],
    mut body: impl FnMut(&mut dyn riskgrad::engine::exec::Executor) -> Result<()>,
) -> Result<()> {
    for choice in devices {
        match super::executor_strict(choice) {
            Ok(mut exec) => body(exec.as_mut())?,
            Err(e) => eprintln!("skipping device {choice:?}: {e}"),
        }
    }
    Ok(())
}

fn print_measurement(m: &bench::Measurement) {
    println!(
        "{:<44} {:<40} {:>9.2} {}  ({:.3} ms)",
        m.name,
        m.device,
        m.rate,
        m.unit,
        m.median_seconds * 1e3
    );
}

fn rnn(kind: &str, args: &RnnBenchArgs) -> Result<()> {
    each_device(&args.devices, |exec| {
        let b = if kind == "lstm" {
            bench::lstm(exec, args.batch, args.input, args.hidden, args.steps)?
        } else {
            bench::gru(exec, args.batch, args.input, args.hidden, args.steps)?
        };
        println!(
            "{} on {}: step {:.3} ms (forward + backward through time); its {} matmul launches alone {:.3} ms, its {} fused cell launches alone {:.3} ms; {} launches per step",
            b.name, b.device, b.step_seconds * 1e3, b.matmul_launches, b.matmul_seconds * 1e3, b.cell_launches, b.cell_seconds * 1e3, b.launches
        );
        Ok(())
    })
}

pub fn run(args: &BenchArgs, started: Instant) -> Result<()> {
    match &args.what {
        BenchKind::Conv { devices } => each_device(devices, |exec| {
            bench::conv_suite(exec, 2e9)?
                .iter()
                .for_each(print_measurement);
            Ok(())
        }),
        BenchKind::Pool { devices } => each_device(devices, |exec| {
            bench::pool_suite(exec, 2e8)?
                .iter()
                .for_each(print_measurement);
            Ok(())
        }),
        BenchKind::Lstm(a) => rnn("lstm", a),
        BenchKind::Gru(a) => rnn("gru", a),
        BenchKind::Matmul { sizes, devices } => {
            if sizes.contains(&0) {
                return Err(Error::flag("--sizes", "sizes must be positive"));
            }
            each_device(devices, |exec| {
                for &size in sizes {
                    // About 2 s of work per round on the CPU; a round is one submission.
                    print_measurement(&bench::matmul(exec, size, 2e10)?);
                }
                Ok(())
            })
        }
        BenchKind::Train {
            device,
            epochs,
            peer_features,
        } => {
            let mut exec = super::executor_strict(device)?;
            let b =
                bench::train_default_mlp(exec.as_mut(), (*epochs).max(1), *peer_features, started)?;
            println!("device: {}; {} input features", b.device, b.features);
            println!(
                "training throughput: {:.0} rows/s (median of {} epochs)",
                b.rows_per_second, b.epochs
            );
            println!(
                "process start to end of first training step: {:.3} s (data prepared {:.3} s, device ready and plans loaded {:.3} s)",
                b.first_step_seconds, b.data_ready_seconds, b.plans_loaded_seconds
            );
            println!("validation AUC after {} epochs: {:.4}", b.epochs, b.val_auc);
            if let Some(host) = exec.host_seconds_per_step() {
                println!(
                    "host time per training step (recording + submitting): {:.1} µs",
                    host * 1e6
                );
            }
            if let Some(rss) = b.peak_rss_mib {
                println!("peak resident memory: {rss:.1} MiB");
            }
            Ok(())
        }
    }
}
