//! The widths of the flat kernels' workgroups on this device: kernels of one invocation
//! per output over a flat index, in two kinds ([`WidthKind`]). The per-element kernels
//! (`WG_FLAT` in common.wgsl: elementwise, gathers, the pointwise loss gradient, the
//! optimizers, pooling, the recurrent cells, state) run in 256 by default, and the sums
//! with one invocation per output (`WG_SUMS`: reduce.wgsl's `reduce_to_serial` and
//! `reduce_to_tree_order`, a layer's bias gradient) in 32. Neither suits every
//! adapter: a GPU that runs a credit model's 16,384-element activations as 64
//! workgroups of 256 leaves multiprocessors idle that 256 workgroups of 64 would use,
//! and a wavefront of 64 runs a workgroup of 32 half empty. So, as for the GEMM
//! variants (`tune`), the device measures: at its first plan's load ([`decide`]), each
//! kind's probe kernel (`act_grad`: two reads, a write, an activation's slope; or
//! `reduce_to_tree_order`: a bias gradient over 256 rows) runs at its
//! [`WidthKind::probe_sizes`] with each of its [`WidthKind::widths`], interleaved in
//! rounds so the widths share whatever load the machine has; a width whose output is
//! not the default's bits is dropped (every width computes each output alike, so none
//! should be), and another width is taken only where it takes at most
//! [`WIDTH_MARGIN`] of the default's time over the probes. The choice is one per kind
//! and device (the pipelines are built with it), kept in the tuner's cache file beside
//! the GEMM shapes, and `--tune off` keeps the defaults.
//!
//! The sum tree's width (`WG`) is not tuned: the tree's shape is the sum's order, so its
//! bits.

use super::context::{ErrorScope, GpuContext};
use super::kernel_params::{ElementwiseParams, ReduceParams};
use super::probe;
use super::shaders::{Layout, Pipe, PipeKey};
use super::tune::{TuneMode, Tuner};
use crate::engine::graph::Act;
use crate::error::Result;
use crate::rng::Rng;
use std::time::Instant;

/// A kind of flat kernel whose workgroup width the device decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WidthKind {
    /// One invocation per element (`WG_FLAT`).
    PerElement,
    /// One invocation per output of a sum (`WG_SUMS`).
    Sums,
}

impl WidthKind {
    /// Both kinds, in the order a device's widths are kept.
    pub const ALL: [WidthKind; 2] = [WidthKind::PerElement, WidthKind::Sums];

    /// The widths a device may take, the default first (what `--tune off` runs, and any
    /// device until its first plan decides).
    pub fn widths(self) -> &'static [u32] {
        match self {
            WidthKind::PerElement => &[256, 128, 64],
            // 32: a warp, half a wavefront, four of lavapipe's 256-bit registers
            // (measured against 256 there, BENCHMARKS.md "Sums in workgroups of 32").
            WidthKind::Sums => &[32, 64, 128],
        }
    }

    /// The default width.
    pub fn default_width(self) -> u32 {
        self.widths()[0]
    }

    /// The WGSL override (common.wgsl) that carries the width into a pipeline.
    pub fn constant(self) -> &'static str {
        match self {
            WidthKind::PerElement => "WG_FLAT",
            WidthKind::Sums => "WG_SUMS",
        }
    }

    /// The kernels, for people.
    pub fn name(self) -> &'static str {
        match self {
            WidthKind::PerElement => "per-element kernels",
            WidthKind::Sums => "per-output sums",
        }
    }

    /// The probe's sizes: elements of `act_grad` (a credit MLP's activations, 256 rows
    /// × 64, and a scoring batch's, 2,048 × 32), or outputs of a sum over 256 rows (the
    /// bias gradients of a 64-wide layer and of an LSTM's four gates of 64). Small, so
    /// that deciding costs a first run little: on lavapipe 0.1–0.2 s of launches and
    /// three pipeline builds a kind, counted against `Cached`'s budget.
    pub fn probe_sizes(self) -> [usize; 2] {
        match self {
            WidthKind::PerElement => [16_384, 65_536],
            WidthKind::Sums => [64, 256],
        }
    }

    /// What a probe size counts.
    pub fn probe_unit(self) -> &'static str {
        match self {
            WidthKind::PerElement => "elements",
            WidthKind::Sums => "outputs of 256 rows",
        }
    }

    /// The probe's kernel.
    fn probe_pipe(self) -> Pipe {
        match self {
            WidthKind::PerElement => crate::engine::ops::elementwise::ACT_GRAD,
            WidthKind::Sums => crate::engine::ops::broadcast::REDUCE_TO_TREE_ORDER[1],
        }
    }

    /// The cache entry's key after the device's.
    fn cache_key(self) -> &'static str {
        match self {
            WidthKind::PerElement => "flat workgroup width",
            WidthKind::Sums => "sum workgroup width",
        }
    }
}

/// Another width is taken only where its probes take at most this fraction of the
/// default's: launches this small are noisy on a shared machine, and a width chosen by
/// noise would stay in the cache.
pub const WIDTH_MARGIN: f64 = 0.9;
/// Rows each output of the sums' probe adds.
const SUM_ROWS: usize = 256;
/// Rounds of the probes, each width once a round; the median round decides.
const ROUNDS: usize = 5;
/// A timed run repeats the launch this many times (one submission).
const LAUNCHES_PER_RUN: usize = 8;

/// What deciding a kind's width measured (`riskgrad bench tune` shows it).
#[derive(Clone, Debug, PartialEq)]
pub struct WidthChoice {
    /// The kernels it is for.
    pub kind: WidthKind,
    /// The width taken.
    pub width: u32,
    /// Each width measured: median seconds of one launch at each of the kind's probe
    /// sizes, or why it was dropped. Empty when the choice came from the cache.
    pub times: Vec<(u32, std::result::Result<Vec<f64>, String>)>,
}

/// The width the times ask for: the fastest over the probes (summed) where it takes at
/// most [`WIDTH_MARGIN`] of the default's (`default`), else the default.
pub fn fastest_width(default: u32, times: &[(u32, f64)]) -> u32 {
    let default_time = times.iter().find(|t| t.0 == default).map(|t| t.1);
    let fastest = times.iter().min_by(|a, b| a.1.total_cmp(&b.1));
    match (default_time, fastest) {
        (Some(d), Some(&(width, s))) if s <= WIDTH_MARGIN * d => width,
        _ => default,
    }
}

/// Fixes `ctx`'s widths before its first plan is built, as its tuning setting says:
/// forced (tests), the defaults with tuning off (or in `Cached` with its budget spent,
/// or in an adapter's first run), the cache's in `Cached` where it has them, else
/// measured (and stored; the time counts against `Cached`'s budget). A kind is decided
/// once: a device that built a pipeline or decided it already keeps its width.
pub(super) fn decide(ctx: &GpuContext) -> Result<()> {
    for kind in WidthKind::ALL {
        if ctx.fixed_width(kind).is_some() {
            continue;
        }
        let mut tuner = ctx.tuner.lock().unwrap_or_else(|p| p.into_inner());
        let width = match decided_without_timing(&mut tuner, ctx, kind) {
            Some(width) => width,
            None => {
                let start = Instant::now();
                let choice = measure(ctx, kind)?;
                let key = kind.cache_key();
                tuner.record_width(ctx, key, choice, start.elapsed().as_secs_f64())
            }
        };
        ctx.set_width(kind, width);
    }
    Ok(())
}

/// The width of `kind` where timing is not called for; `None`: measure.
fn decided_without_timing(tuner: &mut Tuner, ctx: &GpuContext, kind: WidthKind) -> Option<u32> {
    let tuning = tuner.tuning();
    if let Some(&(_, width)) = tuning.force_widths.iter().find(|f| f.0 == kind) {
        return Some(width);
    }
    if tuning.mode == TuneMode::Off || tuning.force_variant.is_some() {
        return Some(kind.default_width());
    }
    if tuning.mode == TuneMode::Cached {
        // Not in an adapter's first run (no entry of this device in the cache yet): its
        // cold start spends its budget on the GEMM shapes, which matter more, and the
        // widths' six pipeline builds would push it toward its 5 s target. A later run
        // decides them, and none with its budget spent.
        if tuner.budget_spent(0.0) || !tuner.knows_device(ctx) {
            return Some(kind.default_width());
        }
        let cached = tuner.cached_name(ctx, kind.cache_key()).and_then(|name| {
            kind.widths()
                .iter()
                .copied()
                .find(|w| w.to_string() == name)
        });
        if let Some(width) = cached {
            tuner.remember_width(WidthChoice {
                kind,
                width,
                times: Vec::new(),
            });
            return Some(width);
        }
    }
    None
}

/// Times every width of `kind` on `ctx` and takes one ([`fastest_width`]).
pub fn measure(ctx: &GpuContext, kind: WidthKind) -> Result<WidthChoice> {
    let sizes = kind.probe_sizes();
    let probes: Vec<Probe> = sizes
        .iter()
        .map(|&n| Probe::new(ctx, kind, n))
        .collect::<Result<_>>()?;
    // Built outside the device's table (`build_pipeline`): preparing the table's
    // would fix the device's widths before they are decided.
    let key = PipeKey::from(kind.probe_pipe());
    let default = kind.default_width();
    // Each width's pipeline, its output checked against the default's bits.
    let mut pipelines = Vec::new();
    let mut times: Vec<(u32, std::result::Result<Vec<f64>, String>)> = Vec::new();
    let mut reference: Vec<Vec<f32>> = Vec::new();
    for &width in kind.widths() {
        // The other kind at its default, where not fixed yet (fixing it here would
        // keep it from being decided).
        let mut widths = WidthKind::ALL.map(|k| ctx.fixed_width(k).unwrap_or(k.default_width()));
        widths[kind as usize] = width;
        let checked = ctx.build_pipeline(key, widths).and_then(|pipeline| {
            let outputs: Vec<Vec<f32>> = probes
                .iter()
                .map(|p| p.output(ctx, &pipeline, width))
                .collect::<Result<_>>()?;
            Ok((pipeline, outputs))
        });
        match checked {
            Ok((pipeline, outputs)) => {
                if width == default {
                    reference = outputs;
                } else if let Some(i) = (0..outputs.len()).find(|&i| {
                    outputs[i]
                        .iter()
                        .zip(&reference[i])
                        .any(|(x, y)| x.to_bits() != y.to_bits())
                }) {
                    let why = format!(
                        "its output at {} {} is not the default's bits",
                        sizes[i],
                        kind.probe_unit()
                    );
                    times.push((width, Err(why)));
                    continue;
                }
                pipelines.push((width, pipeline));
            }
            // The default must build: every kernel runs with it.
            Err(e) if width == default => return Err(e),
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
    let width = fastest_width(default, &sums);
    times.extend(medians.into_iter().map(|(w, m)| (w, Ok(m))));
    times.sort_by_key(|t| kind.widths().iter().position(|&w| w == t.0));
    Ok(WidthChoice { kind, width, times })
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// One probe: `act_grad` (ReLU's slope) over `n` random elements, or the sums over
/// [`SUM_ROWS`] random rows into `n` outputs (`reduce_to_tree_order`).
struct Probe {
    /// Invocations a launch needs: elements, or outputs.
    n: usize,
    group: wgpu::BindGroup,
    out: wgpu::Buffer,
}

impl Probe {
    fn new(ctx: &GpuContext, kind: WidthKind, n: usize) -> Result<Probe> {
        let mut rng = Rng::new(n as u64);
        let mut random =
            |len: usize| -> Vec<f32> { (0..len).map(|_| rng.range(-1.0, 1.0) as f32).collect() };
        let scope = ErrorScope::push(&ctx.device);
        let out = probe::storage_buffer(ctx, "width probe out", &vec![f32::NAN; n]);
        let group = match kind {
            WidthKind::PerElement => {
                let x = probe::storage_buffer(ctx, "width probe x", &random(n));
                let y = probe::storage_buffer(ctx, "width probe y", &random(n));
                let record = super::executor::record(ElementwiseParams {
                    shape: [1; 4],
                    n: n as u32,
                    code: Act::Relu.code(),
                    ..Default::default()
                });
                let buffers = [&x, &y, &out];
                probe::bind_group(ctx, "width probe", Layout::Read2Write1, &record, &buffers)
            }
            WidthKind::Sums => {
                // x [SUM_ROWS, n] summed down its rows into [1, n].
                let x = probe::storage_buffer(ctx, "width probe x", &random(SUM_ROWS * n));
                let record = super::executor::record(ReduceParams {
                    out_shape: [1, 1, 1, n as u32],
                    reduced: [1, 1, SUM_ROWS as u32, 1],
                    in_strides: [0, 0, n as u32, 1],
                    n_out: n as u32,
                    count: SUM_ROWS as u32,
                    scale: 1.0,
                    ..Default::default()
                });
                let buffers = [&x, &out];
                probe::bind_group(ctx, "width probe", Layout::Read1Write1, &record, &buffers)
            }
        };
        scope.pop("making a width probe")?;
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
        probe::run_repeated(ctx, "a width probe", pipeline, &self.group, grid, times)
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
        assert_eq!(fastest_width(256, &times(0.95, 1.2)), 256, "5 % is noise");
        assert_eq!(fastest_width(256, &times(WIDTH_MARGIN, 1.2)), 128);
        assert_eq!(
            fastest_width(256, &times(0.8, 0.5)),
            64,
            "the fastest, not the first"
        );
        assert_eq!(fastest_width(256, &times(2.0, 3.0)), 256);
        // Without the default measured, nothing to compare with: the default.
        assert_eq!(fastest_width(256, &[(64, 0.1)]), 256);
        assert_eq!(fastest_width(32, &[]), 32);
    }

    #[test]
    fn each_kind_offers_its_default_first_and_distinct_widths() {
        for kind in WidthKind::ALL {
            let widths = kind.widths();
            assert_eq!(kind.default_width(), widths[0]);
            let mut sorted = widths.to_vec();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), widths.len(), "{kind:?}");
            // Within what every device must offer (`context::NEED_INVOCATIONS`).
            assert!(
                widths.iter().all(|&w| w.is_power_of_two() && w <= 256),
                "{kind:?}"
            );
        }
        assert_eq!(WidthKind::ALL.map(|k| k as usize), [0, 1]);
    }
}
