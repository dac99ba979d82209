//! `riskgrad bench`

use riskgrad::bench;
use riskgrad::gpu::DeviceChoice;
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

pub fn run(args: &BenchArgs, started: Instant) -> Result<()> {
    match &args.what {
        BenchKind::Matmul { sizes, devices } => {
            if sizes.contains(&0) {
                return Err(Error::flag("--sizes", "sizes must be positive"));
            }
            for choice in devices {
                let mut exec = match super::executor_strict(choice) {
                    Ok(exec) => exec,
                    Err(e) => {
                        eprintln!("skipping device {choice:?}: {e}");
                        continue;
                    }
                };
                for &size in sizes {
                    // About 2 s of work per round on the CPU; a round is one submission.
                    let m = bench::matmul(exec.as_mut(), size, 2e10)?;
                    println!("{:<24} {:<40} {:>9.2} {}  ({:.3} ms)", m.name, m.device, m.rate, m.unit, m.median_seconds * 1e3);
                }
            }
            Ok(())
        }
        BenchKind::Train { device, epochs, peer_features } => {
            let mut exec = super::executor_strict(device)?;
            let b = bench::train_default_mlp(exec.as_mut(), (*epochs).max(1), *peer_features, started)?;
            println!("device: {}; {} input features", b.device, b.features);
            println!("training throughput: {:.0} rows/s (median of {} epochs)", b.rows_per_second, b.epochs);
            println!(
                "process start to end of first training step: {:.3} s (data prepared {:.3} s, device ready and plans loaded {:.3} s)",
                b.first_step_seconds, b.data_ready_seconds, b.plans_loaded_seconds
            );
            println!("validation AUC after {} epochs: {:.4}", b.epochs, b.val_auc);
            if let Some(host) = exec.host_seconds_per_step() {
                println!("host time per training step (recording + submitting): {:.1} µs", host * 1e6);
            }
            if let Some(rss) = b.peak_rss_mib {
                println!("peak resident memory: {rss:.1} MiB");
            }
            Ok(())
        }
    }
}
