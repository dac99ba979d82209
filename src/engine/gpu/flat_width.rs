//! The width of the per-element kernels' workgroups on this device (`WG_FLAT` in
//! common.wgsl: the elementwise, gather, pointwise loss, optimizer, pool, recurrent-cell
//! and state kernels, one invocation per output). 256 suits most hardware, but not every
//! adapter: a GPU that runs a credit model's 16,384-element activations as 64 workgroups
//! of 256 leaves multiprocessors idle that 256 workgroups of 64 would use. So, as for
//! the GEMM variants (`tune`), the device measures: at its first plan's load
//! ([`decide`]), the `act_grad` kernel (two reads, a write, an activation's slope) runs
//! over [`PROBE_ELEMENTS`] with each of [`FLAT_WIDTHS`], interleaved in rounds so the
//! widths share whatever load the machine has; a width whose output is not the default's
//! bits is dropped (every width computes each element alike, so none should be), and
//! another width is taken only where it takes at most [`FLAT_WIDTH_MARGIN`] of the
//! default's time over the probes. The choice is one per device (the pipelines are
//! built with it), kept in the tuner's cache file beside the GEMM shapes, and `--tune
//! off` keeps the default.
//!
//! The sum tree's width (`WG`) is not tuned: the tree's shape is the sum's order, so its
//! bits. The one-invocation-per-output sums (`REDUCE_WG`) keep their measured 32.

use super::context::{ErrorScope, GpuContext};
use super::kernel_params::ElementwiseParams;
use super::probe;
use super::shaders::{Layout, PipeKey};
use super::tune::{TuneMode, Tuner};
use crate::engine::graph::Act;
use crate::error::Result;
use crate::rng::Rng;
use std::time::Instant;

/// The widths a device may take, the default first.
pub const FLAT_WIDTHS: [u32; 3] = [256, 128, 64];
/// The width `--tune off` runs, and any device until its first plan decides another.
pub const DEFAULT_FLAT_WIDTH: u32 = FLAT_WIDTHS[0];
/// Another width is taken only where its probes take at most this fraction of the
/// default's: launches this small are noisy on a shared machine, and a width chosen by
/// noise would stay in the cache.
pub const FLAT_WIDTH_MARGIN: f64 = 0.9;
/// Elements of the probe launches: a credit MLP's activations (256 rows × 64) and a
/// scoring batch's (2,048 × 32). Small, so that deciding costs a first run little: on
/// lavapipe about 0.1 s of launches and three pipeline builds, counted against
/// `Cached`'s budget.
pub const PROBE_ELEMENTS: [usize; 2] = [16_384, 65_536];
/// Rounds of the probes, each width once a round; the median round decides.
const ROUNDS: usize = 5;
/// A timed run repeats the launch this many times (one submission).
const LAUNCHES_PER_RUN: usize = 8;
/// The cache entry's key after the device's.
const CACHE_KEY: &str = "flat workgroup width";

/// What deciding the width measured (`riskgrad bench tune` shows it).
#[derive(Clone, Debug, PartialEq)]
pub struct FlatWidthChoice {
    /// The width taken.
    pub width: u32,
    /// Each width measured: median seconds of one launch at each of [`PROBE_ELEMENTS`],
    /// or why it was dropped. Empty when the choice came from the cache.
    pub times: Vec<(u32, std::result::Result<Vec<f64>, String>)>,
}

/// The width the times ask for: the fastest over the probes (summed) where it takes at
/// most [`FLAT_WIDTH_MARGIN`] of the default's, else the default.
pub fn fastest_flat_width(times: &[(u32, f64)]) -> u32 {
    let default = times
        .iter()
        .find(|t| t.0 == DEFAULT_FLAT_WIDTH)
        .map(|t| t.1);
    let fastest = times.iter().min_by(|a, b| a.1.total_cmp(&b.1));
    match (default, fastest) {
        (Some(d), Some(&(width, s))) if s <= FLAT_WIDTH_MARGIN * d => width,
        _ => DEFAULT_FLAT_WIDTH,
    }
}

/// Fixes `ctx`'s per-element width before its first plan is built, as its tuning
/// setting says: forced (tests), the default with tuning off (or in `Cached` with its
/// budget spent), the cache's in `Cached` where it has one, else measured (and stored;
/// the time counts against `Cached`'s budget). A device that built a pipeline already
/// keeps the width it built it with.
pub(super) fn decide(ctx: &GpuContext) -> Result<u32> {
    if ctx.flat_width_fixed() {
        return Ok(ctx.flat_width());
    }
    let mut tuner = ctx.tuner.lock().unwrap_or_else(|p| p.into_inner());
    let width = match decided_without_timing(&mut tuner, ctx) {
        Some(width) => width,
        None => {
            let start = Instant::now();
            let choice = measure(ctx)?;
            tuner.record_flat_width(ctx, CACHE_KEY, choice, start.elapsed().as_secs_f64())
        }
    };
    Ok(ctx.set_flat_width(width))
}

/// The width where timing is not called for; `None`: measure.
fn decided_without_timing(tuner: &mut Tuner, ctx: &GpuContext) -> Option<u32> {
    let tuning = tuner.tuning();
    if let Some(width) = tuning.force_flat_width {
        return Some(width);
    }
    if tuning.mode == TuneMode::Off || tuning.force_variant.is_some() {
        return Some(DEFAULT_FLAT_WIDTH);
    }
    if let Some(choice) = tuner.flat_width_choice() {
        return Some(choice.width);
    }
    if tuning.mode == TuneMode::Cached {
        if tuner.budget_spent(0.0) {
            return Some(DEFAULT_FLAT_WIDTH); // for a later run with budget to decide
        }
        let cached = tuner
            .cached_name(ctx, CACHE_KEY)
            .and_then(|name| FLAT_WIDTHS.into_iter().find(|w| w.to_string() == name));
        if let Some(width) = cached {
            tuner.remember_flat_width(FlatWidthChoice {
                width,
                times: Vec::new(),
            });
            return Some(width);
        }
    }
    None
}

/// Times every width on `ctx` and takes one ([`fastest_flat_width`]).
pub fn measure(ctx: &GpuContext) -> Result<FlatWidthChoice> {
    let probes: Vec<Probe> = PROBE_ELEMENTS
        .iter()
        .map(|&n| Probe::new(ctx, n))
        .collect::<Result<_>>()?;
    // Built outside the device's table (`build_pipeline`): preparing the table's
    // would fix the device's width before it is decided.
    let key = PipeKey::from(crate::engine::ops::elementwise::ACT_GRAD);
    // Each width's pipeline, its output checked against the default's bits.
    let mut pipelines = Vec::new();
    let mut times: Vec<(u32, std::result::Result<Vec<f64>, String>)> = Vec::new();
    let mut reference: Vec<Vec<f32>> = Vec::new();
    for width in FLAT_WIDTHS {
        let checked = ctx.build_pipeline(key, width).and_then(|pipeline| {
            let outputs: Vec<Vec<f32>> = probes
                .iter()
                .map(|p| p.output(ctx, &pipeline, width))
                .collect::<Result<_>>()?;
            Ok((pipeline, outputs))
        });
        match checked {
            Ok((pipeline, outputs)) => {
                if width == DEFAULT_FLAT_WIDTH {
                    reference = outputs;
                } else if let Some(i) = (0..outputs.len()).find(|&i| {
                    outputs[i]
                        .iter()
                        .zip(&reference[i])
                        .any(|(x, y)| x.to_bits() != y.to_bits())
                }) {
                    let why = format!(
                        "its output at {} elements is not the default's bits",
                        PROBE_ELEMENTS[i]
                    );
                    times.push((width, Err(why)));
                    continue;
                }
                pipelines.push((width, pipeline));
            }
            // The default must build: every kernel runs with it.
            Err(e) if width == DEFAULT_FLAT_WIDTH => return Err(e),
            Err(e) => times.push((width, Err(format!("it does not build or run: {e}")))),
        }
    }
    // Rounds, each width once a round at each probe, so the widths share the load.
    let mut rounds: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); probes.len()]; pipelines.len()];
    for _ in 0..ROUNDS {
        for (w, (width, pipeline)) in pipelines.iter().enumerate() {
            for (i, probe) in probes.iter().enumerate() {
                let t = Instant::now();
                probe.run(ctx, pipeline, *width, LAUNCHES_PER_RUN)?;
                rounds[w][i].push(t.elapsed().as_secs_f64() / LAUNCHES_PER_RUN as f64);
            }
        }
    }
    let medians: Vec<(u32, Vec<f64>)> = pipelines
        .iter()
        .zip(rounds)
        .map(|((width, _), per_probe)| (*width, per_probe.into_iter().map(median).collect()))
        .collect();
    let sums: Vec<(u32, f64)> = medians
        .iter()
        .map(|(w, m)| (*w, m.iter().sum::<f64>()))
        .collect();
    let width = fastest_flat_width(&sums);
    times.extend(medians.into_iter().map(|(w, m)| (w, Ok(m))));
    times.sort_by_key(|t| FLAT_WIDTHS.iter().position(|&w| w == t.0));
    Ok(FlatWidthChoice { width, times })
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// One probe: `act_grad` (ReLU's slope) over `n` random elements.
struct Probe {
    n: usize,
    group: wgpu::BindGroup,
    out: wgpu::Buffer,
}

impl Probe {
    fn new(ctx: &GpuContext, n: usize) -> Result<Probe> {
        let mut rng = Rng::new(n as u64);
        let mut random = || -> Vec<f32> { (0..n).map(|_| rng.range(-1.0, 1.0) as f32).collect() };
        let scope = ErrorScope::push(&ctx.device);
        let x = probe::storage_buffer(ctx, "flat probe x", &random());
        let y = probe::storage_buffer(ctx, "flat probe y", &random());
        let out = probe::storage_buffer(ctx, "flat probe out", &vec![f32::NAN; n]);
        let record = super::executor::record(ElementwiseParams {
            shape: [1; 4],
            n: n as u32,
            code: Act::Relu.code(),
            ..Default::default()
        });
        let buffers = [&x, &y, &out];
        let group = probe::bind_group(ctx, "flat probe", Layout::Read2Write1, &record, &buffers);
        scope.pop("making the flat-width probe")?;
        Ok(Probe { n, group, out })
    }

    /// Runs the kernel `times` times at `width` in one submission and waits for it.
    fn run(
        &self,
        ctx: &GpuContext,
        pipeline: &wgpu::ComputePipeline,
        width: u32,
        times: usize,
    ) -> Result<()> {
        let grid = super::executor::grid(
            self.n.div_ceil(width as usize),
            ctx.limits.max_compute_workgroups_per_dimension,
        )?;
        probe::run_repeated(
            ctx,
            "the flat-width probe",
            pipeline,
            &self.group,
            grid,
            times,
        )
    }

    /// The output of one launch at `width`, the buffer poisoned first.
    fn output(
        &self,
        ctx: &GpuContext,
        pipeline: &wgpu::ComputePipeline,
        width: u32,
    ) -> Result<Vec<f32>> {
        let nan = ctx.precision.encode_padded(&vec![f32::NAN; self.n], 4);
        ctx.queue.write_buffer(&self.out, 0, &nan);
        self.run(ctx, pipeline, width, 1)?;
        ctx.read_store(&self.out, 0, self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_width_is_taken_only_by_the_margin() {
        let times = |w128: f64, w64: f64| vec![(256, 1.0), (128, w128), (64, w64)];
        assert_eq!(fastest_flat_width(&times(0.95, 1.2)), 256, "5 % is noise");
        assert_eq!(fastest_flat_width(&times(FLAT_WIDTH_MARGIN, 1.2)), 128);
        assert_eq!(
            fastest_flat_width(&times(0.8, 0.5)),
            64,
            "the fastest, not the first"
        );
        assert_eq!(fastest_flat_width(&times(2.0, 3.0)), 256);
        // Without the default measured, nothing to compare with: the default.
        assert_eq!(fastest_flat_width(&[(64, 0.1)]), 256);
        assert_eq!(fastest_flat_width(&[]), 256);
    }
}
