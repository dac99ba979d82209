//! `riskgrad bench`: the command's flags. The suites themselves are in `suites`, which
//! the `cargo bench` targets (benches/) include too.

mod suites;

use riskgrad::engine::gpu::DeviceChoice;
use riskgrad::engine::graph::CellKind;
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

pub fn run(args: &BenchArgs, started: Instant) -> Result<()> {
    match &args.what {
        BenchKind::Conv { devices } => suites::each_device(devices, |exec| {
            suites::conv_suite(exec, suites::CONV_BUDGET_FLOPS)?
                .iter()
                .for_each(suites::print_measurement);
            Ok(())
        }),
        BenchKind::Pool { devices } => suites::each_device(devices, |exec| {
            suites::pool_suite(exec, suites::POOL_BUDGET_BYTES)?
                .iter()
                .for_each(suites::print_measurement);
            Ok(())
        }),
        BenchKind::Lstm(a) => rnn(CellKind::Lstm, a),
        BenchKind::Gru(a) => rnn(CellKind::Gru, a),
        BenchKind::Matmul { sizes, devices } => {
            if sizes.contains(&0) {
                return Err(Error::flag("--sizes", "sizes must be positive"));
            }
            suites::each_device(devices, |exec| {
                suites::matmul_suite(exec, sizes, suites::MATMUL_BUDGET_FLOPS)
            })
        }
        BenchKind::Train {
            device,
            epochs,
            peer_features,
        } => {
            let mut exec = suites::executor_strict(device)?;
            let b = suites::train_default_mlp(
                exec.as_mut(),
                (*epochs).max(1),
                *peer_features,
                started,
            )?;
            suites::print_train(&b, exec.as_ref());
            Ok(())
        }
    }
}

fn rnn(kind: CellKind, args: &RnnBenchArgs) -> Result<()> {
    suites::recurrent_on_devices(
        kind,
        &args.devices,
        args.batch,
        args.input,
        args.hidden,
        args.steps,
    )
}
