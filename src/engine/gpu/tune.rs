//! The GEMM autotuner: which variant runs each matmul shape
//! ([`MATMUL_VARIANTS`](super::shaders::MATMUL_VARIANTS)) and each convolution product
//! (the implicit GEMM's [`CONV_VARIANTS`](super::shaders::CONV_VARIANTS)) on this
//! adapter. No variant is fastest everywhere (a 64×64 tile leaves most of a GPU idle on
//! the `[256,58]·[58,64]` products of a credit MLP, and wastes half its rows on a
//! convolution of 32 channels; workgroup-memory staging pays on some adapters and not on
//! others), so the executor measures on the adapter at hand.
//!
//! For each shape a plan's load meets that is not decided yet ([`Tuner::choose`]): the
//! kernel's variants run in their list's order (the default first, as the reference) on
//! scratch buffers of that shape holding fresh random data; a variant whose output
//! disagrees with the default's is dropped (and noted), never chosen; the rest are timed
//! (wall clock around submit and wait, a batch of launches per run, the median of
//! [`TIMED_RUNS`] runs after the output check's run; fewer runs for slow launches, one
//! for a variant already twice the fastest); the few timed within 30 % of the fastest are
//! timed again in turn, so that they share whatever load the machine has (the
//! confirmation round); then the fastest wins. In
//! [`TuneMode::Cached`] the process's budget is checked before each variant after the
//! default (room for one more like the last): once it is spent the shape takes the
//! fastest variant measured so far, and its cache entry is marked partial (the variants
//! measured), for a later run with budget left to complete. The choices are kept on the
//! device's context for the process and, in [`TuneMode::Cached`] and
//! [`TuneMode::Full`], in a JSON file the caller names, keyed by adapter, driver,
//! riskgrad version and shape, so the next run starts without tuning. Wall clock, not
//! timestamp queries: a credit model's matmuls are tiny, and what a variant costs there
//! includes its launch (workgroup count, setup), which a batch of launches back to back
//! measures as a recorded epoch runs them.
//!
//! The engine knows no cache directory and no file-writing policy: the caller hands
//! both in ([`Tuning`]).

use super::context::{ErrorScope, GpuContext};
use super::flat_width::{WidthChoice, WidthKind};
use super::probe;
use super::shaders::{GemmVariant, Layout, Pipe, PipeKey, DEFAULT_VARIANT};
use crate::engine::ops::conv::ConvGemmShape;
use crate::engine::ops::matmul::MatMulShape;
use crate::error::{Error, Result};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Seconds of tuning a process spends in `TuneMode::Cached` by default
/// ([`Tuning::new`]): about a quarter of the cold start of the default MLP on lavapipe
/// (DESIGN.md, "GEMM variants and the autotuner").
pub const CACHED_BUDGET_SECONDS: f64 = 1.0;
/// Timed runs per variant; their median decides.
pub const TIMED_RUNS: usize = 5;
/// Timed runs of a variant whose single launch takes over `LONG_LAUNCH_SECONDS`.
const TIMED_RUNS_LONG: usize = 3;
const LONG_LAUNCH_SECONDS: f64 = 0.01;
/// A variant whose first timed launch is this many times the fastest so far is not timed
/// further.
const CLEARLY_SLOWER: f64 = 2.0;
/// The confirmation round: the variants timed within `CONFIRM_WITHIN` of the fastest
/// (at most [`CONFIRM_CONTENDERS`] of them, the fastest first) are timed again, one run
/// each in turn, [`CONFIRM_ROUNDS`] times, and their medians over these runs decide. A
/// variant's first timing takes its runs back to back, so a moment of load on a shared
/// machine lands on one variant alone and can crown a slower one for good (the cache
/// keeps it): on lavapipe a loaded moment chose `wide64x64` for 1024³, which ran at 0.59×
/// of Burn where the usual winner ran at 0.9× (BENCHMARKS.md, "vec4 operands and
/// split-K"). Interleaved, the contenders share whatever load there is.
pub const CONFIRM_WITHIN: f64 = 1.3;
const CONFIRM_CONTENDERS: usize = 3;
const CONFIRM_ROUNDS: usize = 3;
/// A timed run launches the kernel enough times to last about this long (at most
/// [`MAX_LAUNCHES_PER_RUN`]), so that a tiny matmul's time is not all submit and wait.
const RUN_SECONDS: f64 = 0.002;
const MAX_LAUNCHES_PER_RUN: usize = 64;
/// A fused form of a step is taken only if its row stage takes at most this fraction of
/// the launches' one by one. On lavapipe the two forms' row stages are within a few
/// percent, and a fused form chosen by 3 % of row-stage time ran the default MLP end to
/// end at 0.92–0.94× the launches (BENCHMARKS.md, "The fused step"): what the row stage
/// alone does not show (the products' tuned variants, the arena's copies) needs a margin.
pub const FUSED_FORM_MARGIN: f64 = 0.9;
/// Entries the cache file keeps (the most recent): shapes × adapters.
pub const CACHE_ENTRIES: usize = 512;
/// The cache file's format; another one is ignored (and rewritten).
const CACHE_VERSION: u32 = 1;

/// When the autotuner runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TuneMode {
    /// Never: every matmul runs the default variant, and no cache is read or written.
    #[default]
    Off,
    /// Choices come from the cache file; shapes it lacks are tuned (within the
    /// setting's budget of seconds a process) and stored.
    Cached,
    /// Every shape is tuned again (once per process), and the cache file rewritten.
    Full,
}

impl TuneMode {
    /// The mode's name as `--tune` spells it.
    pub fn name(self) -> &'static str {
        match self {
            TuneMode::Off => "off",
            TuneMode::Cached => "cached",
            TuneMode::Full => "full",
        }
    }

    /// The mode `--tune` names (`off`, `cached` or `full`), if any.
    pub fn parse(s: &str) -> Option<TuneMode> {
        [TuneMode::Off, TuneMode::Cached, TuneMode::Full]
            .into_iter()
            .find(|m| m.name() == s.trim().to_ascii_lowercase())
    }
}

/// Writes a file whole (the caller's atomic writer, `riskgrad::files::write_atomically`).
pub type WriteFile = fn(&Path, &[u8]) -> Result<()>;

/// How the executors of one device choose their GEMM kernels' variants.
#[derive(Clone, Debug, Default)]
pub struct Tuning {
    /// When to tune.
    pub mode: TuneMode,
    /// The cache file (`gpu-tune.json` in the user's cache directory); `None`: choices
    /// last for the process only.
    pub cache_file: Option<PathBuf>,
    /// Writes the cache file; `None`: it is only read.
    pub write: Option<WriteFile>,
    /// Where notes go (a dropped variant, an unwritable cache); `None`: nowhere.
    pub note: Option<fn(&str)>,
    /// `Cached` tunes within this many seconds a process, checked before each variant
    /// after a shape's default (begun only if one more like the last still fits): a
    /// shape stopped part-way takes the fastest variant measured, shapes met once the
    /// budget is spent run the default, and a later run completes them, so a first run
    /// on a slow adapter starts soon (0: only the first shape's default is measured).
    /// `None`: no limit.
    pub budget_seconds: Option<f64>,
    /// Every GEMM launch runs this variant, untuned, where its kernel has one of that
    /// index, else its default (tests of each variant's kernel).
    #[doc(hidden)]
    pub force_variant: Option<usize>,
    /// The test-only variants are candidates too (the test that a wrong one is dropped).
    #[doc(hidden)]
    pub include_test_variants: bool,
    /// Every step that can fuse its row launches runs in this form, untimed (tests of
    /// each form). `None`: the mode decides.
    #[doc(hidden)]
    pub force_step_form: Option<StepForm>,
    /// Flat kernels' workgroup widths, untimed, on a device that has not fixed them
    /// yet (`flat_width`; tests of each width). A kind not named: the mode decides.
    #[doc(hidden)]
    pub force_widths: Vec<(WidthKind, u32)>,
}

impl Tuning {
    /// `mode`, with the cache in `cache_file` written by `write` and notes to `note`, and
    /// [`CACHED_BUDGET_SECONDS`] of tuning a process in `Cached`.
    pub fn new(
        mode: TuneMode,
        cache_file: Option<PathBuf>,
        write: Option<WriteFile>,
        note: Option<fn(&str)>,
    ) -> Self {
        Tuning {
            mode,
            cache_file,
            write,
            note,
            budget_seconds: Some(CACHED_BUDGET_SECONDS),
            ..Default::default()
        }
    }
}

/// What the tuner decides a variant for: a GEMM kernel's launch, by shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GemmShape {
    /// A matmul ([`MATMUL_VARIANTS`](super::shaders::MATMUL_VARIANTS)).
    MatMul(MatMulShape),
    /// A convolution's implicit GEMM ([`CONV_VARIANTS`](super::shaders::CONV_VARIANTS)).
    Conv(ConvGemmShape),
}

impl GemmShape {
    /// The shape as the cache and `riskgrad bench tune` name it: a matmul's
    /// `256x64x58 NT bias1 act1` (as before convolutions were tuned, so older cache
    /// entries still count), a convolution's starting with its pipe's name.
    pub fn key(&self) -> String {
        match self {
            GemmShape::MatMul(s) => s.key(),
            GemmShape::Conv(s) => s.key(),
        }
    }

    /// The kernel's variants.
    pub fn variants(&self) -> &'static [GemmVariant] {
        self.pipe()
            .variants()
            .expect("a GEMM kernel comes in variants")
    }

    /// Multiply-adds of one launch.
    pub fn macs(&self) -> usize {
        match self {
            GemmShape::MatMul(s) => s.m * s.n * s.k,
            // Each of the three products does as many as the forward pass.
            GemmShape::Conv(s) => s.shape.macs(),
        }
    }

    /// Whether it is a skinny product, the kind split-K is for: a long sum (k at least
    /// 128) into few outputs (m·n at most 16 k), as a weight gradient's [256,64]ᵀ·[256,32].
    pub fn skinny(&self) -> bool {
        match self {
            GemmShape::MatMul(s) => s.k >= 128 && s.m * s.n <= 16 * s.k,
            GemmShape::Conv(_) => false,
        }
    }

    /// What kind of kernel it is, for notes: "matmul" or "convolution".
    pub fn kind(&self) -> &'static str {
        match self {
            GemmShape::MatMul(_) => "matmul",
            GemmShape::Conv(_) => "convolution",
        }
    }

    fn pipe(&self) -> Pipe {
        match self {
            GemmShape::MatMul(s) => s.pipe(),
            GemmShape::Conv(s) => s.pipe(),
        }
    }

    /// Words of the operands `[a, b, bias, out]` (0 for an absent bias).
    fn operand_lens(&self) -> [usize; 4] {
        match self {
            GemmShape::MatMul(s) => s.operand_lens(),
            GemmShape::Conv(s) => s.operand_lens(),
        }
    }

    /// The uniform record of a launch as `variant`, operands at offset 0, and its number
    /// of workgroups.
    fn record(&self, variant: usize) -> Result<(Vec<u8>, usize)> {
        use super::executor::record;
        Ok(match self {
            GemmShape::MatMul(s) => {
                let (params, groups) = s.params(variant, [0; 4])?;
                (record(params), groups)
            }
            GemmShape::Conv(s) => {
                let (params, groups) = s.params(variant, [0; 4])?;
                (record(params), groups)
            }
        })
    }
}

/// How a step runs its row launches: one by one, or fused into the row program
/// (`gpu::row_program`) as one of its pipes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepForm {
    /// Each row launch its own dispatch (the plan as it is).
    Launches,
    /// The row program, as `Pipe::ROW_PROGRAMS[i]`.
    RowProgram(usize),
}

impl StepForm {
    /// Every form, the plan's own first.
    pub fn all() -> impl Iterator<Item = StepForm> {
        std::iter::once(StepForm::Launches)
            .chain((0..Pipe::ROW_PROGRAMS.len()).map(StepForm::RowProgram))
    }

    /// Its name in the cache file and in `riskgrad bench tune`: `launches`, or the row
    /// program pipe's (`row_program_w8`).
    pub fn name(self) -> &'static str {
        match self {
            StepForm::Launches => "launches",
            StepForm::RowProgram(i) => Pipe::ROW_PROGRAMS[i].name(),
        }
    }
}

/// How a step's form was decided.
#[derive(Clone, Debug, PartialEq)]
pub struct StepFormChoice {
    /// The step's row launches, as the cache names them (`FusedStep::key`).
    pub key: String,
    /// The form it runs in.
    pub form: StepForm,
    /// Median seconds of its row stage in each form, when measured in this process;
    /// empty from the cache.
    pub times: Vec<(StepForm, f64)>,
}

/// The form a step runs in, from each form's median seconds: the fastest fused form if
/// it takes at most [`FUSED_FORM_MARGIN`] of the launches' time (or the launches were not
/// timed), else the launches.
pub fn fastest_step_form(times: &[(StepForm, f64)]) -> StepForm {
    let launches = times
        .iter()
        .find(|t| t.0 == StepForm::Launches)
        .map(|t| t.1);
    let fused = times
        .iter()
        .filter(|t| t.0 != StepForm::Launches)
        .min_by(|a, b| a.1.total_cmp(&b.1));
    match (fused, launches) {
        (Some(&(form, s)), Some(l)) if s <= l * FUSED_FORM_MARGIN => form,
        (Some(&(form, _)), None) => form,
        _ => StepForm::Launches,
    }
}

/// One variant's result on one shape.
#[derive(Clone, Debug, PartialEq)]
pub struct VariantTime {
    /// Index into the shape's variants ([`GemmShape::variants`]).
    pub variant: usize,
    /// Median seconds of one launch; `None` when dropped, and for the default when the
    /// budget stopped the shape before any other variant (nothing to compare it with).
    pub seconds: Option<f64>,
    /// Why it was dropped (its output disagreed with the default's); `None` if kept.
    pub dropped: Option<String>,
    /// Whether its output had the default's exact bits.
    pub exact: bool,
    /// Whether `seconds` is from the confirmation round (timed interleaved with the
    /// other contenders) rather than from its first timing.
    pub confirmed: bool,
}

/// How one shape's variant was decided.
#[derive(Clone, Debug, PartialEq)]
pub struct ShapeChoice {
    /// The shape.
    pub shape: GemmShape,
    /// The chosen variant (index into the shape's variants).
    pub variant: usize,
    /// Each variant measured now, in the order measured (the default first); empty
    /// when read from the cache.
    pub times: Vec<VariantTime>,
    /// Seconds the tuning took (pipeline builds included); 0 from the cache.
    pub seconds: f64,
    /// Whether every candidate has been measured on this shape, now or by an earlier run
    /// (a partial choice is completed by a later `Cached` run with budget left).
    pub complete: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    entries: Vec<CacheEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct CacheEntry {
    key: String,
    variant: String,
    /// The variants measured when the budget stopped the shape's tuning part-way;
    /// absent when all were (as in files written before partial entries existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    measured: Option<Vec<String>>,
}

/// A cache entry as the tuner uses it.
struct CacheHit {
    variant: usize,
    /// The variants measured, for a partial entry (those still known); `None`: complete.
    measured: Option<Vec<usize>>,
}

/// The autotuner's state on one device: the setting, and the choices made or read in
/// this process. Lives in the device's [`GpuContext`].
#[derive(Debug, Default)]
pub struct Tuner {
    tuning: Tuning,
    decided: HashMap<GemmShape, ShapeChoice>,
    forms_decided: HashMap<String, StepFormChoice>,
    /// The flat kernels' widths, once decided or read (`flat_width`).
    widths: HashMap<WidthKind, WidthChoice>,
    /// The cache file's entries once read (an unreadable or corrupt file reads empty).
    cache: Option<Vec<CacheEntry>>,
    /// Seconds spent tuning in this process.
    spent: f64,
}

impl Tuner {
    /// Replaces the setting; choices made under the previous one are forgotten.
    pub fn set(&mut self, tuning: Tuning) {
        *self = Tuner {
            tuning,
            ..Default::default()
        };
    }

    /// The setting.
    pub fn tuning(&self) -> &Tuning {
        &self.tuning
    }

    /// Every choice made or read in this process, in no particular order.
    pub fn choices(&self) -> Vec<ShapeChoice> {
        self.decided.values().cloned().collect()
    }

    /// Every step form decided or read in this process, in no particular order.
    pub fn step_form_choices(&self) -> Vec<StepFormChoice> {
        self.forms_decided.values().cloned().collect()
    }

    /// The form a step whose row launches can be fused (`key`: `FusedStep::key`) runs
    /// in, where that is settled without timing: forced by a test, the plan's own with
    /// tuning off or variants forced, else decided earlier in this process or read from
    /// the cache; `Cached` with its budget spent runs the plan's own and leaves the step
    /// for a later run. `None`: time every form and
    /// [`record_step_form`](Self::record_step_form). Every form gives the same bits, so
    /// the choice moves only the time.
    pub fn step_form_decision(&mut self, ctx: &GpuContext, key: &str) -> Option<StepForm> {
        if let Some(forced) = self.tuning.force_step_form {
            return Some(forced);
        }
        if self.tuning.mode == TuneMode::Off || self.tuning.force_variant.is_some() {
            return Some(StepForm::Launches);
        }
        if let Some(c) = self.forms_decided.get(key) {
            return Some(c.form);
        }
        let hit = match self.tuning.mode {
            TuneMode::Cached => self
                .cached_name(ctx, key)
                .and_then(|name| StepForm::all().find(|f| f.name() == name)),
            _ => None,
        };
        if let Some(form) = hit {
            self.forms_decided.insert(
                key.to_string(),
                StepFormChoice {
                    key: key.to_string(),
                    form,
                    times: Vec::new(),
                },
            );
            return Some(form);
        }
        self.budget_spent(0.0).then_some(StepForm::Launches)
    }

    /// Whether a step `step_form_decision` left open may be timed now (its plan's GEMM
    /// shapes already tuned): always in `Full`; in `Cached` only while this process has
    /// tuned nothing else, since timing the forms builds the row program's pipelines
    /// (about 0.7 s each on lavapipe with Mesa's shader cache cold) and a budget spent on
    /// GEMM shapes would overrun by that much. A run that tuned shapes leaves its steps
    /// undecided, running their launches one by one, for a later run.
    pub fn may_time_step_forms(&self) -> bool {
        match self.tuning.mode {
            TuneMode::Full => true,
            TuneMode::Cached => self.tuning.budget_seconds.is_none() || self.spent == 0.0,
            TuneMode::Off => false,
        }
    }

    /// Takes the form of a step `step_form_decision` left open by each form's median
    /// seconds ([`fastest_step_form`]; timing them took `seconds`), and stores the choice
    /// in the cache.
    pub fn record_step_form(
        &mut self,
        ctx: &GpuContext,
        key: &str,
        times: Vec<(StepForm, f64)>,
        seconds: f64,
    ) -> StepForm {
        let form = fastest_step_form(&times);
        self.store_choice(ctx, key, form.name().to_string(), seconds);
        self.forms_decided.insert(
            key.to_string(),
            StepFormChoice {
                key: key.to_string(),
                form,
                times,
            },
        );
        form
    }

    /// A choice measured in `seconds` (counted against the budget) of what `key` names
    /// on `ctx` (a step form, a flat width), stored in the cache as `name`.
    fn store_choice(&mut self, ctx: &GpuContext, key: &str, name: String, seconds: f64) {
        self.spent += seconds;
        self.put(CacheEntry {
            key: choice_key(ctx, key),
            variant: name,
            measured: None,
        });
        self.store();
    }

    /// The choice the cache file holds for `key` (after the device's own key) on `ctx`:
    /// its variant's name.
    pub(super) fn cached_name(&mut self, ctx: &GpuContext, key: &str) -> Option<String> {
        let cache_key = choice_key(ctx, key);
        self.entries()
            .iter()
            .rev()
            .find(|e| e.key == cache_key)
            .map(|e| e.variant.clone())
    }

    /// Whether the cache file holds any entry of `ctx`'s device (adapter, driver,
    /// riskgrad version, precision): false in an adapter's first run.
    pub(super) fn knows_device(&mut self, ctx: &GpuContext) -> bool {
        let device = format!("{} | ", device_key(ctx));
        self.entries().iter().any(|e| e.key.starts_with(&device))
    }

    /// `kind`'s width decided or read in this process, with what was measured.
    pub fn width_choice(&self, kind: WidthKind) -> Option<&WidthChoice> {
        self.widths.get(&kind)
    }

    pub(super) fn remember_width(&mut self, choice: WidthChoice) {
        self.widths.insert(choice.kind, choice);
    }

    /// Takes a width measured (in `seconds`) and stores it in the cache under `key`.
    pub(super) fn record_width(
        &mut self,
        ctx: &GpuContext,
        key: &str,
        choice: WidthChoice,
        seconds: f64,
    ) -> u32 {
        let width = choice.width;
        self.store_choice(ctx, key, width.to_string(), seconds);
        for (dropped, time) in &choice.times {
            if let Err(why) = time {
                self.note(&format!(
                    "note: workgroup width {dropped} of the {} dropped on {}: {why}",
                    choice.kind.name(),
                    ctx.info.name
                ));
            }
        }
        self.remember_width(choice);
        width
    }

    /// Notes that `variant` was dropped at `shape` on `ctx`'s adapter, and why.
    fn note_dropped(&self, ctx: &GpuContext, shape: &GemmShape, variant: &str, why: &str) {
        self.note(&format!(
            "note: {} variant {variant} dropped on {} at {}: {why}",
            shape.kind(),
            ctx.info.name,
            shape.key()
        ));
    }

    fn note(&self, line: &str) {
        if let Some(note) = self.tuning.note {
            note(line);
        }
    }

    /// The variant each of `shapes` runs as, tuning those not decided yet (and storing
    /// them in the cache file, once for all of them).
    pub fn choose(&mut self, ctx: &GpuContext, shapes: &[GemmShape]) -> Result<Vec<usize>> {
        if let Some(v) = self.tuning.force_variant {
            return Ok(shapes
                .iter()
                .map(|s| match s.variants().get(v) {
                    Some(variant) if runs_on(variant, ctx) => v,
                    _ => DEFAULT_VARIANT,
                })
                .collect());
        }
        if self.tuning.mode == TuneMode::Off {
            return Ok(vec![DEFAULT_VARIANT; shapes.len()]);
        }
        let mut stored = false;
        let mut out = Vec::with_capacity(shapes.len());
        for shape in shapes {
            if let Some(c) = self.decided.get(shape) {
                out.push(c.variant);
                continue;
            }
            let key = cache_key(ctx, shape);
            let hit = match self.tuning.mode {
                TuneMode::Cached => self.cached(ctx, &key, shape.variants()),
                _ => None,
            };
            let choice = match hit {
                Some(hit) if hit.measured.is_none() || self.budget_spent(0.0) => ShapeChoice {
                    shape: *shape,
                    variant: hit.variant,
                    times: Vec::new(),
                    seconds: 0.0,
                    complete: hit.measured.is_none(),
                },
                None if self.budget_spent(0.0) => {
                    // The default for this run, undecided: a later run tunes it.
                    out.push(DEFAULT_VARIANT);
                    continue;
                }
                hit => {
                    let (c, measured) = self.measure(ctx, shape, hit.as_ref())?;
                    self.spent += c.seconds;
                    if let Some(measured) = measured {
                        let partial = (!c.complete).then_some(measured);
                        self.remember(key, shape.variants(), c.variant, partial);
                        stored = true;
                    }
                    c
                }
            };
            out.push(choice.variant);
            self.decided.insert(*shape, choice);
        }
        if stored {
            self.store();
        }
        Ok(out)
    }

    /// Whether `Cached` has spent its budget for this process, counting `more` seconds
    /// not yet added to it (the shape under way).
    pub(super) fn budget_spent(&self, more: f64) -> bool {
        self.tuning.mode == TuneMode::Cached
            && self
                .tuning
                .budget_seconds
                .is_some_and(|b| self.spent + more > b)
    }

    fn entries(&mut self) -> &mut Vec<CacheEntry> {
        let path = self.tuning.cache_file.clone();
        self.cache.get_or_insert_with(|| {
            let read = path.and_then(|p| std::fs::read(p).ok());
            read.and_then(|bytes| serde_json::from_slice::<CacheFile>(&bytes).ok())
                .filter(|f| f.version == CACHE_VERSION)
                .map(|f| f.entries)
                .unwrap_or_default()
        })
    }

    fn cached(
        &mut self,
        ctx: &GpuContext,
        key: &str,
        variants: &[GemmVariant],
    ) -> Option<CacheHit> {
        let entry = self.entries().iter().rev().find(|e| e.key == key)?.clone();
        let index = |name: &str| {
            variants
                .iter()
                .position(|v| v.name == name && !v.test_only && runs_on(v, ctx))
        };
        // A variant that no longer exists (or is test-only, or cannot run here) is a miss.
        let variant = index(&entry.variant)?;
        // A measured variant no longer known is measured again.
        let measured = entry
            .measured
            .map(|names| names.iter().filter_map(|n| index(n)).collect());
        Some(CacheHit { variant, measured })
    }

    /// Stores `variant` for `key`; `measured`: the variants measured, when not all were.
    fn remember(
        &mut self,
        key: String,
        variants: &[GemmVariant],
        variant: usize,
        measured: Option<Vec<usize>>,
    ) {
        let name = |v: usize| variants[v].name.to_string();
        self.put(CacheEntry {
            key,
            variant: name(variant),
            measured: measured.map(|m| m.into_iter().map(name).collect()),
        });
    }

    /// Puts `entry` in the cache in place of any of its key, keeping the newest
    /// `CACHE_ENTRIES` (written by the next `store`).
    fn put(&mut self, entry: CacheEntry) {
        let entries = self.entries();
        entries.retain(|e| e.key != entry.key);
        entries.push(entry);
        let excess = entries.len().saturating_sub(CACHE_ENTRIES);
        entries.drain(..excess);
    }

    /// Writes the cache file; a failure is one note per process, and work goes on.
    fn store(&mut self) {
        let (Some(path), Some(write)) = (self.tuning.cache_file.clone(), self.tuning.write) else {
            return;
        };
        let file = CacheFile {
            version: CACHE_VERSION,
            entries: self.entries().clone(),
        };
        let written = serde_json::to_vec_pretty(&file)
            .map_err(|e| Error::Internal(e.to_string()))
            .and_then(|bytes| {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
                        path: dir.to_path_buf(),
                        source: e,
                    })?;
                }
                write(&path, &bytes)
            });
        if let Err(e) = written {
            // Once per process, however many executors (a run's members, its scoring)
            // tune on this device.
            static NOTED_UNWRITABLE: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !NOTED_UNWRITABLE.swap(true, std::sync::atomic::Ordering::Relaxed) {
                self.note(&format!(
                    "note: the matmul tuning cache {} cannot be written ({e}): the next run tunes again",
                    path.display()
                ));
            }
        }
    }

    /// Measures the candidate variants on `shape` in order, the default first, and picks
    /// the fastest that agrees with the default. After the default's output each
    /// variant is begun only while the budget has room for it (as long as the one before
    /// took). `earlier`, a partial cache entry: its choice is timed again right after the
    /// default and only the variants it lacks are measured. Also returns
    /// every variant measured so far (earlier included), or `None` when nothing new was
    /// (the budget ran out first: `earlier`'s choice stands).
    fn measure(
        &self,
        ctx: &GpuContext,
        shape: &GemmShape,
        earlier: Option<&CacheHit>,
    ) -> Result<(ShapeChoice, Option<Vec<usize>>)> {
        let start = Instant::now();
        let variants = shape.variants();
        let candidates: Vec<usize> = (0..variants.len())
            .filter(|&v| !variants[v].test_only || self.tuning.include_test_variants)
            .filter(|&v| runs_on(&variants[v], ctx))
            .filter(|&v| !variants[v].split_k || shape.skinny())
            .collect();
        let before: &[usize] = earlier.and_then(|e| e.measured.as_deref()).unwrap_or(&[]);
        let mut queue = vec![DEFAULT_VARIANT];
        queue.extend(earlier.map(|e| e.variant));
        queue.extend(candidates.iter().filter(|v| !before.contains(v)));
        // Each once, where it first appears (an earlier choice may be the default).
        let mut seen = Vec::new();
        queue.retain(|v| {
            let new = !seen.contains(v);
            seen.push(*v);
            new
        });
        let bench = Scratch::new(ctx, shape)?;
        let prepare = |variant| {
            ctx.prepare([PipeKey {
                pipe: shape.pipe(),
                variant,
            }])
        };
        prepare(DEFAULT_VARIANT)?;
        let reference = bench.output(ctx, DEFAULT_VARIANT)?;
        // The default is timed only once another variant is to be compared with it (a
        // launch of a large shape on a software adapter takes seconds).
        let mut times = vec![VariantTime {
            variant: DEFAULT_VARIANT,
            seconds: None,
            dropped: None,
            exact: true,
            confirmed: false,
        }];
        // What measuring the previous variant took (its pipeline build included).
        let mut last = start.elapsed().as_secs_f64();
        for variant in queue.into_iter().filter(|&v| v != DEFAULT_VARIANT) {
            // Begun only if the budget would hold one more variant like the last: a
            // variant is not stopped part-way, so a check for a spent budget alone lets
            // the last one overrun it (on lavapipe by a 0.7 s pipeline compile).
            let so_far = start.elapsed().as_secs_f64();
            if self.budget_spent(so_far + last) {
                break;
            }
            if times[0].seconds.is_none() {
                times[0].seconds = Some(bench.seconds(ctx, DEFAULT_VARIANT, None)?);
            }
            // A variant the driver cannot build or run is dropped like one that
            // disagrees: the default and the others remain.
            let got = match prepare(variant).and_then(|()| bench.output(ctx, variant)) {
                Ok(got) => got,
                Err(e) => {
                    let why = format!("it does not build or run: {e}");
                    self.note_dropped(ctx, shape, variants[variant].name, &why);
                    times.push(VariantTime {
                        variant,
                        seconds: None,
                        dropped: Some(why),
                        exact: false,
                        confirmed: false,
                    });
                    last = start.elapsed().as_secs_f64() - so_far;
                    continue;
                }
            };
            let exact = got
                .iter()
                .zip(&reference)
                .all(|(x, y)| x.to_bits() == y.to_bits());
            let dropped = disagreement(&got, &reference);
            let seconds = match &dropped {
                None => {
                    let best = times.iter().filter_map(|t| t.seconds).reduce(f64::min);
                    Some(bench.seconds(ctx, variant, best)?)
                }
                Some(why) => {
                    self.note_dropped(ctx, shape, variants[variant].name, why);
                    None
                }
            };
            times.push(VariantTime {
                variant,
                seconds,
                dropped,
                exact,
                confirmed: false,
            });
            last = start.elapsed().as_secs_f64() - so_far;
        }
        self.confirm(ctx, &bench, &mut times, start.elapsed().as_secs_f64())?;
        let mut measured = before.to_vec();
        let mut learned = earlier.is_none();
        for t in &times {
            if !measured.contains(&t.variant) {
                measured.push(t.variant);
                learned = true;
            }
        }
        let complete = candidates.iter().all(|v| measured.contains(v));
        let fastest = fastest_variant(variants, &times);
        let variant = match (learned, earlier) {
            (false, Some(e)) => e.variant,
            _ => fastest,
        };
        let choice = ShapeChoice {
            shape: *shape,
            variant,
            times,
            seconds: start.elapsed().as_secs_f64(),
            complete,
        };
        Ok((choice, learned.then_some(measured)))
    }

    /// The confirmation round over `times` (see [`CONFIRM_WITHIN`]): the contenders'
    /// seconds become their medians over runs taken in turn. Skipped where fewer than two
    /// contend, or where the round would overrun `Cached`'s budget (`so_far`: seconds the
    /// shape has taken).
    fn confirm(
        &self,
        ctx: &GpuContext,
        bench: &Scratch,
        times: &mut [VariantTime],
        so_far: f64,
    ) -> Result<()> {
        let contending = contenders(times);
        if contending.len() < 2 {
            return Ok(());
        }
        let launches: Vec<usize> = contending
            .iter()
            .map(|&i| launches_per_run(times[i].seconds.unwrap_or(0.0)))
            .collect();
        let cost: f64 = contending
            .iter()
            .zip(&launches)
            .map(|(&i, &n)| times[i].seconds.unwrap_or(0.0) * n as f64)
            .sum::<f64>()
            * CONFIRM_ROUNDS as f64;
        if self.budget_spent(so_far + cost) {
            return Ok(());
        }
        let mut runs = vec![Vec::with_capacity(CONFIRM_ROUNDS); contending.len()];
        for round in 0..CONFIRM_ROUNDS {
            // Each round starts with another contender, so none is always first after
            // the previous round's last.
            for turn in 0..contending.len() {
                let c = (round + turn) % contending.len();
                let variant = times[contending[c]].variant;
                let t = Instant::now();
                bench.run(ctx, variant, launches[c])?;
                runs[c].push(t.elapsed().as_secs_f64() / launches[c] as f64);
            }
        }
        for (&i, mut r) in contending.iter().zip(runs) {
            r.sort_by(f64::total_cmp);
            times[i].seconds = Some(r[r.len() / 2]);
            times[i].confirmed = true;
        }
        Ok(())
    }
}

/// Which of `times` (indices) go to the confirmation round: the timed variants within
/// [`CONFIRM_WITHIN`] of the fastest, the fastest first, at most [`CONFIRM_CONTENDERS`].
fn contenders(times: &[VariantTime]) -> Vec<usize> {
    let mut timed: Vec<(usize, f64)> = times
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.seconds.map(|s| (i, s)))
        .collect();
    timed.sort_by(|a, b| a.1.total_cmp(&b.1));
    let Some(&(_, best)) = timed.first() else {
        return Vec::new();
    };
    timed
        .into_iter()
        .take_while(|&(_, s)| s <= best * CONFIRM_WITHIN)
        .take(CONFIRM_CONTENDERS)
        .map(|(i, _)| i)
        .collect()
}

/// Launches a timed run takes for a kernel whose one launch took `once` seconds: enough
/// to last about [`RUN_SECONDS`], so that a tiny matmul's time is not all submit and wait.
fn launches_per_run(once: f64) -> usize {
    ((RUN_SECONDS / once.max(1e-6)).ceil() as usize).clamp(1, MAX_LAUNCHES_PER_RUN)
}

/// How much faster than every variant with the default's bits a split-K variant must be
/// to be chosen: it sums in another order, so `--tune off` and `--tune full` then train
/// weights that differ by rounding, a price paid only for a clear gain.
pub const SPLIT_K_MARGIN: f64 = 0.2;

/// The fastest of the timed variants in `times` (the default where none was timed), a
/// split-K one only where it takes less than 1 - `SPLIT_K_MARGIN` of the best other's.
fn fastest_variant(variants: &[GemmVariant], times: &[VariantTime]) -> usize {
    let best = |split_k: bool| {
        times
            .iter()
            .filter(|t| variants[t.variant].split_k == split_k)
            .filter_map(|t| t.seconds.map(|s| (s, t.variant)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
    };
    match (best(false), best(true)) {
        (Some((s, _)), Some((split_s, split))) if split_s < (1.0 - SPLIT_K_MARGIN) * s => split,
        (Some((_, v)), _) => v,
        (None, Some((_, split))) => split,
        (None, None) => DEFAULT_VARIANT,
    }
}

/// Why `got` is not the default's output `want`, if it is not: a value off by more than
/// a rounding's worth (the variants sum in the same order, so on most adapters the bits
/// agree; this allows for a compiler that contracts differently), or not finite where
/// the default's is.
fn disagreement(got: &[f32], want: &[f32]) -> Option<String> {
    let (i, (x, y)) = got.iter().zip(want).enumerate().find(|(_, (x, y))| {
        let close = (*x - *y).abs() <= 1e-4 * (1.0 + y.abs());
        !close // a NaN is never close
    })?;
    Some(format!("output {i} is {x}, the default variant's is {y}"))
}

/// The cache key of `shape` on `ctx`'s adapter: adapter, driver, riskgrad version, the
/// set of variants (a choice made among fewer is measured again when variants are
/// added), shape.
fn cache_key(ctx: &GpuContext, shape: &GemmShape) -> String {
    format!(
        "{} | variants {:08x} | {}",
        device_key(ctx),
        variant_set(shape.variants()),
        shape.key()
    )
}

/// The cache key of a choice other than a GEMM shape's (a step form, a flat width) named
/// `key` on `ctx`'s adapter.
fn choice_key(ctx: &GpuContext, key: &str) -> String {
    format!("{} | {key}", device_key(ctx))
}

/// The adapter, its driver and this riskgrad's version: what every cache key starts with.
fn device_key(ctx: &GpuContext) -> String {
    // f16 kernels are other kernels: their choices are kept apart (f32's key is as it
    // was before f16 existed, so older entries still count).
    let precision = match ctx.precision {
        super::shaders::Precision::F32 => "",
        super::shaders::Precision::F16 => " | f16",
    };
    // Choices timed with naga's runtime checks compiled in are not this build's.
    let checks = match ctx.kernels_unchecked() {
        true => " | unchecked",
        false => "",
    };
    format!(
        "{} | {} {} | riskgrad {}{precision}{checks}",
        ctx.info.name,
        ctx.info.driver,
        ctx.info.driver_info,
        env!("CARGO_PKG_VERSION"),
    )
}

/// A fingerprint of the variants' names, in order (FNV-1a, 32 bits).
fn variant_set(variants: &[GemmVariant]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for variant in variants {
        for byte in variant.name.bytes().chain([b',']) {
            hash = (hash ^ byte as u32).wrapping_mul(0x0100_0193);
        }
    }
    hash
}

/// Scratch buffers of one shape, filled with random data, and a launch on them.
struct Scratch {
    shape: GemmShape,
    a: wgpu::Buffer,
    b: wgpu::Buffer,
    bias: wgpu::Buffer,
    out: wgpu::Buffer,
    out_len: usize,
}

/// Whether `variant` can run on `ctx` ([`runs_with`]). Forced, cached or measured, a
/// variant that cannot runs nowhere: the kernel's others (the default among them) remain.
fn runs_on(variant: &GemmVariant, ctx: &GpuContext) -> bool {
    runs_with(
        variant,
        ctx.limits.min_storage_buffer_offset_alignment,
        ctx.device.features().contains(wgpu::Features::SUBGROUP),
    )
}

/// Whether `variant` can run on a device whose storage offsets align to
/// `offset_alignment` bytes, with or without subgroup operations: a vec4 variant needs
/// every tensor bound in whole vec4s, so offsets aligned to 16 bytes (the executor
/// rounds a binding's end up to 16 bytes and pads its buffers to 16); a subgroup variant
/// needs the device's `Features::SUBGROUP`.
fn runs_with(variant: &GemmVariant, offset_alignment: u32, subgroups: bool) -> bool {
    (!variant.vec4_operands || offset_alignment.is_multiple_of(16))
        && (!variant.needs_subgroups() || subgroups)
}

impl Scratch {
    fn new(ctx: &GpuContext, shape: &GemmShape) -> Result<Self> {
        let [a_len, b_len, bias_len, out_len] = shape.operand_lens();
        let mut rng = Rng::new((a_len * 31 + b_len * 17 + out_len) as u64);
        let mut random = |len: usize| -> Vec<f32> {
            (0..len.max(1))
                .map(|_| rng.range(-1.0, 1.0) as f32)
                .collect()
        };
        let scope = ErrorScope::push(&ctx.device);
        let scratch = Scratch {
            shape: *shape,
            a: probe::storage_buffer(ctx, "tuning a", &random(a_len)),
            b: probe::storage_buffer(ctx, "tuning b", &random(b_len)),
            bias: probe::storage_buffer(ctx, "tuning bias", &random(bias_len)),
            out: probe::storage_buffer(ctx, "tuning out", &vec![f32::NAN; out_len.max(1)]),
            out_len,
        };
        scope.pop("making the tuning buffers")?;
        Ok(scratch)
    }

    /// Runs `variant` `times` times in one submission and waits for it.
    fn run(&self, ctx: &GpuContext, variant: usize, times: usize) -> Result<()> {
        let (record, groups) = self.shape.record(variant)?;
        let buffers = [&self.a, &self.b, &self.bias, &self.out];
        let group = probe::bind_group(ctx, "tuning", Layout::Read3Write1, &record, &buffers);
        let grid = super::executor::grid(groups, ctx.limits.max_compute_workgroups_per_dimension)?;
        let pipeline = ctx.pipeline(PipeKey {
            pipe: self.shape.pipe(),
            variant,
        })?;
        probe::run_repeated(ctx, "a kernel variant", pipeline, &group, grid, times)
    }

    /// `variant`'s output, after poisoning the output buffer.
    fn output(&self, ctx: &GpuContext, variant: usize) -> Result<Vec<f32>> {
        let nan = ctx
            .precision
            .encode_padded(&vec![f32::NAN; self.out_len.max(1)], 4);
        ctx.queue.write_buffer(&self.out, 0, &nan);
        self.run(ctx, variant, 1)?;
        ctx.read_store(&self.out, 0, self.out_len)
    }

    /// Median seconds of one launch of `variant` (its output run was the warm-up, and
    /// built the pipeline where the driver compiles at first dispatch). One run alone
    /// decides when it is already over [`CLEARLY_SLOWER`] times the `best` so far: on a
    /// software adapter a launch of a large shape takes tenths of a second.
    fn seconds(&self, ctx: &GpuContext, variant: usize, best: Option<f64>) -> Result<f64> {
        let first = Instant::now();
        self.run(ctx, variant, 1)?;
        let once = first.elapsed().as_secs_f64();
        if best.is_some_and(|b| once > CLEARLY_SLOWER * b) {
            return Ok(once);
        }
        let launches = launches_per_run(once);
        let runs = match once > LONG_LAUNCH_SECONDS {
            true => TIMED_RUNS_LONG,
            false => TIMED_RUNS,
        };
        let mut times = vec![once];
        for _ in 1..runs {
            let t = Instant::now();
            self.run(ctx, variant, launches)?;
            times.push(t.elapsed().as_secs_f64() / launches as f64);
        }
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_the_flag_spells_them() {
        for m in [TuneMode::Off, TuneMode::Cached, TuneMode::Full] {
            assert_eq!(TuneMode::parse(m.name()), Some(m));
        }
        assert_eq!(TuneMode::parse("fast"), None);
    }

    #[test]
    fn a_fused_form_is_taken_only_by_the_margin() {
        let w8 = StepForm::RowProgram(0);
        let w64 = StepForm::RowProgram(1);
        let times = |fused: f64| vec![(StepForm::Launches, 1.0), (w8, fused), (w64, 1.5)];
        // 3 % faster is within the noise of a shared machine: the launches stay.
        assert_eq!(fastest_step_form(&times(0.97)), StepForm::Launches);
        assert_eq!(fastest_step_form(&times(FUSED_FORM_MARGIN)), w8);
        assert_eq!(fastest_step_form(&times(0.5)), w8);
        // The fastest fused form, not the first.
        assert_eq!(
            fastest_step_form(&[(StepForm::Launches, 1.0), (w8, 0.8), (w64, 0.7)]),
            w64
        );
        assert_eq!(fastest_step_form(&[(w64, 2.0)]), w64);
        assert_eq!(fastest_step_form(&[]), StepForm::Launches);
    }

    #[test]
    fn a_variant_runs_only_where_the_device_offers_what_it_needs() {
        use crate::engine::gpu::shaders::MATMUL_VARIANTS;
        let find =
            |wanted: fn(&GemmVariant) -> bool| MATMUL_VARIANTS.iter().find(|&v| wanted(v)).unwrap();
        let subgroup = find(|v| v.needs_subgroups());
        let vec4 = find(|v| v.vec4_operands);
        let plain = &MATMUL_VARIANTS[DEFAULT_VARIANT];
        assert!(!plain.vec4_operands && !plain.needs_subgroups());
        for alignment in [4, 16, 256] {
            for subgroups in [false, true] {
                assert!(
                    runs_with(plain, alignment, subgroups),
                    "the default runs anywhere"
                );
                assert_eq!(runs_with(subgroup, alignment, subgroups), subgroups);
                assert_eq!(runs_with(vec4, alignment, subgroups), alignment % 16 == 0);
            }
        }
    }

    #[test]
    fn a_split_k_variant_is_taken_only_by_the_margin() {
        use crate::engine::gpu::shaders::MATMUL_VARIANTS;
        let split = MATMUL_VARIANTS.iter().position(|v| v.split_k).unwrap();
        let other = (1..MATMUL_VARIANTS.len())
            .find(|&v| !MATMUL_VARIANTS[v].split_k)
            .unwrap();
        let timed = |variant, seconds: Option<f64>| VariantTime {
            variant,
            seconds,
            dropped: None,
            exact: !MATMUL_VARIANTS[variant].split_k,
            confirmed: false,
        };
        let times = |split_s| {
            vec![
                timed(DEFAULT_VARIANT, Some(1.2)),
                timed(other, Some(1.0)),
                timed(split, split_s),
            ]
        };
        let pick = |t: &[VariantTime]| fastest_variant(&MATMUL_VARIANTS, t);
        // 10 % faster but another order of the sum: not worth the bits.
        assert_eq!(pick(&times(Some(0.9))), other);
        assert_eq!(pick(&times(Some(0.7))), split);
        assert_eq!(pick(&times(None)), other);
        // Nothing timed: the default.
        assert_eq!(pick(&[timed(DEFAULT_VARIANT, None)]), DEFAULT_VARIANT);
    }

    #[test]
    fn the_confirmation_round_takes_the_close_contenders_fastest_first() {
        let timed = |variant, seconds: Option<f64>| VariantTime {
            variant,
            seconds,
            dropped: None,
            exact: true,
            confirmed: false,
        };
        let times = vec![
            timed(0, Some(1.0)),
            timed(1, Some(0.8)),
            timed(2, None),
            timed(3, Some(0.8 * CONFIRM_WITHIN * 1.01)),
            timed(4, Some(0.9)),
        ];
        // Variant 3 is just over the margin; 2 was dropped; 1 is the fastest.
        assert_eq!(contenders(&times), vec![1, 4, 0]);
        let many: Vec<_> = (0..6)
            .map(|v| timed(v, Some(1.0 + v as f64 * 0.01)))
            .collect();
        assert_eq!(contenders(&many).len(), CONFIRM_CONTENDERS);
        assert_eq!(contenders(&[timed(0, Some(1.0))]), vec![0]);
        assert!(contenders(&[timed(0, None)]).is_empty());
    }

    #[test]
    fn a_disagreeing_output_is_named_and_an_equal_one_is_not() {
        assert_eq!(disagreement(&[1.0, 2.0], &[1.0, 2.0]), None);
        assert!(disagreement(&[1.0, 3.0], &[1.0, 2.0])
            .unwrap()
            .contains("output 1"));
        assert!(disagreement(&[f32::NAN], &[1.0]).is_some());
    }
}
