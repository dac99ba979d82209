//! `riskgrad bench peak`: each device's measured ceilings, in the manner of vkpeak and
//! clpeak. FMA throughput from long independent chains of fused multiply-adds on a few
//! registers (f32; f16 too on an adapter with SHADER_F16), and memory bandwidth from a
//! copy (read + write) and a read-only sum over a buffer far larger than the caches. On a
//! GPU the kernels are `shaders/peak.wgsl` and `peak_f16.wgsl`, built here on a device
//! of the bench's own (the engine's pipeline table and its device's features stay as they
//! are); on the CPU backend they are native Rust over rayon's threads. Every kernel's
//! output is checked against a host reference before it is timed.
//!
//! The same kernels, measured briefly once per device and process (`quick_peaks`), are
//! the ceilings the other suites' `percent_of_peak` is held against.

use super::{Case, Ceiling, DeviceInfo, Measured, Report, Stats, Timing, INJECT_WRONG_ENV};
use rayon::prelude::*;
use riskgrad::engine::gpu::shaders::BENCH_MODULES;
use riskgrad::engine::gpu::AdapterSummary;
use riskgrad::error::{Error, Result};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Default size of the bandwidth kernels' buffer, in MiB (`--buffer-mib`): far larger
/// than any cache, capped on a GPU by its largest storage binding.
pub const DEFAULT_BUFFER_MIB: u64 = 256;
/// Seconds of samples per kernel of the short measurement behind % of peak, and its
/// buffer in MiB: still twice a large L3, a quarter of `bench peak`'s default so a slow
/// device (lavapipe: about 2 ns a byte) spends seconds on it rather than tens of them.
const QUICK_BUDGET_SECONDS: f64 = 0.1;
const QUICK_BUFFER_MIB: u64 = 64;

/// The GPU kernel's fma iterations per invocation (4 chains of vec4: 32 flops each).
const GPU_ITERS: u32 = 1024;
const GPU_LANES: usize = 16;
const WORKGROUP: u32 = 256;
/// Workgroups of the fma kernel at most (4 Mi invocations), and of copy and read (a
/// grid-stride loop over the buffer).
const MAX_FMA_GROUPS: u32 = 16384;
const STREAM_GROUPS: u32 = 4096;
/// Each chain steps `x ← x·b + c`: in f32 slowly towards c / (1 - b), so the result
/// depends on the iteration count; in f16 to 1 in a few steps (a slow approach would
/// stall on f16's rounding).
const F32_B: f32 = 0.999;
const F32_C: f32 = 0.001;
const F16_B: f32 = 0.5;
const F16_C: f32 = 0.5;

/// A device as the peak kernels see it.
pub enum Target {
    /// The native CPU backend (rayon's threads).
    Cpu,
    /// A wgpu adapter; the kernels open a device of their own on it.
    Gpu(wgpu::Adapter, AdapterSummary),
}

/// A device's measured peaks, the ceilings of % of peak: f32 fma GFLOP/s, copy and read
/// GB/s (each `None` where it could not be measured).
#[derive(Clone, Debug, PartialEq)]
pub struct Peaks {
    pub fma: Option<f64>,
    pub copy: Option<f64>,
    pub read: Option<f64>,
    /// `measured`, or the `--peak` file they were read from.
    pub source: String,
}

impl Peaks {
    /// The peaks among a list of `bench peak` cases.
    fn of_cases(cases: &[Case], source: &str) -> Peaks {
        // The f32 fma; copy and read move u32 words.
        let rate = |kernel: &str| {
            cases
                .iter()
                .find(|c| c.suite == "peak" && c.kernel == kernel && c.dtype != "f16")
                .and_then(|c| c.rate)
        };
        Peaks {
            fma: rate("fma"),
            copy: rate("copy"),
            read: rate("read"),
            source: source.into(),
        }
    }

    fn line(&self, device: &DeviceInfo) -> String {
        let f = |v: Option<f64>, unit: &str| {
            v.map_or("not measured".into(), |v| format!("{v:.2} {unit}"))
        };
        format!(
            "peak of {} ({}): fma f32 {}, copy {}, read {}",
            super::device_label(device),
            self.source,
            f(self.fma, "GFLOP/s"),
            f(self.copy, "GB/s"),
            f(self.read, "GB/s")
        )
    }
}

/// Where the suites' ceilings come from (`--no-peak`, `--peak FILE`).
pub enum PeakSource {
    /// No ceilings: `peak` and `percent_of_peak` are null.
    Off,
    /// A short measurement per device, once per process.
    Measure,
    /// The `bench peak --json` report read from `path`; a device it lacks is measured.
    File { path: String, report: Box<Report> },
}

impl PeakSource {
    /// The ceilings of `device`: from the file, the process's cache, or measured now
    /// (a line says which). A measurement that fails is a warning, not an error: the
    /// cases are still timed, without % of peak.
    pub fn for_device(&self, target: &Target, device: &DeviceInfo) -> Option<Arc<Peaks>> {
        if let PeakSource::File { path, report } = self {
            let mine: Vec<Case> = report
                .cases
                .iter()
                .filter(|c| c.device.name == device.name && c.device.backend == device.backend)
                .cloned()
                .collect();
            let p = Peaks::of_cases(&mine, path);
            if p.fma.is_some() || p.copy.is_some() || p.read.is_some() {
                println!("{}", p.line(device));
                return Some(Arc::new(p));
            }
            eprintln!(
                "{path} has no peak of {}; measuring it",
                super::device_label(device)
            );
        }
        if matches!(self, PeakSource::Off) {
            return None;
        }
        static CACHE: Mutex<Vec<(String, Option<Arc<Peaks>>)>> = Mutex::new(Vec::new());
        let key = format!("{}\u{1}{}", device.name, device.backend);
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, p)) = cache.iter().find(|(k, _)| *k == key) {
            return p.clone();
        }
        let started = Instant::now();
        let p = match quick_peaks(target, device) {
            Ok(p) => {
                println!(
                    "{} in {:.1} s (--no-peak skips this; --peak FILE reads a `bench peak --json`)",
                    p.line(device),
                    started.elapsed().as_secs_f64()
                );
                Some(Arc::new(p))
            }
            Err(e) => {
                eprintln!(
                    "could not measure the peak of {}: {e}; no % of peak",
                    super::device_label(device)
                );
                None
            }
        };
        cache.push((key, p.clone()));
        p
    }
}

/// A short measurement of the f32 fma, copy and read peaks (checked first, as always).
pub fn quick_peaks(target: &Target, device: &DeviceInfo) -> Result<Peaks> {
    let timing = Timing {
        budget_seconds: QUICK_BUDGET_SECONDS,
    };
    let cases = peak_cases(target, device, QUICK_BUFFER_MIB << 20, false, &timing)?;
    Ok(Peaks::of_cases(&cases, "measured"))
}

/// `riskgrad bench peak` on one device: its cases, each line printed as it is measured.
pub fn peak_suite(
    target: &Target,
    device: &DeviceInfo,
    buffer_bytes: u64,
    timing: &Timing,
    out: &mut Vec<Case>,
) -> Result<()> {
    for c in peak_cases(target, device, buffer_bytes, true, timing)? {
        super::record(out, c);
    }
    Ok(())
}

/// The peak cases of a device: fma f32, fma f16 (`with_f16`, on an adapter that has
/// it; a line says when it has not), copy and read over `buffer_bytes`.
fn peak_cases(
    target: &Target,
    device: &DeviceInfo,
    buffer_bytes: u64,
    with_f16: bool,
    timing: &Timing,
) -> Result<Vec<Case>> {
    match target {
        Target::Cpu => cpu::cases(device, buffer_bytes, timing),
        Target::Gpu(adapter, summary) => {
            gpu::cases(adapter, summary, device, buffer_bytes, with_f16, timing)
        }
    }
}

/// Whether a test asked for every output to be seen wrong (`INJECT_WRONG_ENV`).
fn inject_wrong() -> bool {
    std::env::var_os(INJECT_WRONG_ENV).is_some()
}

/// The f64 sum of the chains of one invocation (or CPU task) after `iters` steps of
/// `x ← x·b + c`, in closed form: each start value `x0` goes to `p + (x0 - p)·bⁿ` with
/// `p = c / (1 - b)`. `starts` are the chains' start values.
fn fma_reference(starts: impl Iterator<Item = f64>, b: f32, c: f32, iters: u64) -> f64 {
    let (b, c) = (b as f64, c as f64);
    let p = c / (1.0 - b);
    let bn = b.powf(iters as f64);
    starts.map(|x0| p + (x0 - p) * bn).sum()
}

/// Grows a kernel's size from `start` (at most `max`) until one run of it takes
/// `target` seconds; `once(size)` runs it once, waits, and returns the seconds.
fn grow(
    start: u64,
    max: u64,
    target: f64,
    mut once: impl FnMut(u64) -> Result<f64>,
) -> Result<u64> {
    let mut size = start.min(max);
    once(size)?; // first-use costs
    loop {
        let t = once(size)?;
        if t >= target || size >= max {
            return Ok(size);
        }
        let factor = (1.2 * target / t.max(1e-7)).clamp(2.0, 64.0);
        size = ((size as f64 * factor) as u64).min(max);
    }
}

/// The seconds one repetition of a peak kernel should take: long against a launch's
/// overhead, short against the budget.
fn rep_target(timing: &Timing) -> f64 {
    (timing.budget_seconds / 20.0).clamp(1e-3, 0.05)
}

/// The largest absolute difference between two word lists (as numbers), or infinity
/// when their lengths differ.
fn max_word_error(got: &[u32], want: &[u32]) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w as f64).abs())
        .fold(0.0, f64::max)
}

/// The words the bandwidth kernels read: a cheap hash of the index, so a copy that
/// moves, drops or repeats a word is seen.
fn source_words(words: usize) -> Vec<u32> {
    (0..words)
        .into_par_iter()
        .map(|i| (i as u32).wrapping_mul(0x9E37_79B9) ^ (i as u32 >> 13))
        .collect()
}

/// The case of a peak kernel.
#[allow(clippy::too_many_arguments)]
fn case(
    device: &DeviceInfo,
    kernel: &str,
    dtype: &str,
    shape: String,
    variant: &str,
    work: f64,
    stats: Option<Stats>,
    check: (f64, f64),
) -> Case {
    let flops = kernel == "fma";
    Measured {
        suite: "peak",
        kernel: kernel.into(),
        shape,
        dtype,
        variant: variant.into(),
        work,
        work_unit: if flops { "flop" } else { "byte" },
        unit: if flops { "GFLOP/s" } else { "GB/s" },
        scale: 1e9,
        // The peak kernels are the ceilings themselves.
        intensity: None,
        ceiling: Ceiling::None,
    }
    .case(device, stats, Some(check))
}

fn mib(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.2} MiB", bytes as f64 / (1 << 20) as f64)
    }
}

/// The CPU backend's peaks: native code over rayon's threads.
mod cpu {
    use super::*;

    /// The start value of chain `j`, lane `l` of task `t` (the reference uses the same).
    fn start(t: usize, j: usize, l: usize) -> f32 {
        1.0 + (t % 64) as f32 / 64.0 + 0.25 * (l % 4) as f32 + (j % 8) as f32 / 32.0
    }

    /// `C` independent chains of `L` lanes, each lane stepped `iters` times by `x·b + c`
    /// (not fused: without FMA, `f32::mul_add` is a library call): the processor without
    /// AVX2 and FMA, or another architecture. Returns the sum of the lanes.
    #[inline(always)]
    fn chains<const L: usize, const C: usize>(t: usize, iters: u64, b: f32, c: f32) -> f32 {
        let mut x = [[0f32; L]; C];
        for (j, row) in x.iter_mut().enumerate() {
            for (l, v) in row.iter_mut().enumerate() {
                *v = start(t, j, l);
            }
        }
        for _ in 0..iters {
            for row in x.iter_mut() {
                for v in row.iter_mut() {
                    *v = *v * b + c;
                }
            }
        }
        x.iter().flatten().sum()
    }

    /// The instruction set the chains run in: its name, lanes and chains.
    #[derive(Clone, Copy)]
    enum Isa {
        #[cfg(target_arch = "x86_64")]
        Avx512,
        #[cfg(target_arch = "x86_64")]
        Avx2,
        Baseline,
    }

    impl Isa {
        fn detect() -> Isa {
            #[cfg(target_arch = "x86_64")]
            {
                if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma") {
                    return Isa::Avx512;
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    return Isa::Avx2;
                }
            }
            Isa::Baseline
        }

        /// Name, lanes per chain, chains: enough chains to cover the fma latency on two
        /// pipes, few enough to stay in registers (16 ymm, 32 zmm).
        fn shape(self) -> (&'static str, usize, usize) {
            match self {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => ("avx512+fma", 16, 16),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => ("avx2+fma", 8, 12),
                Isa::Baseline => ("baseline", 4, 12),
            }
        }

        fn run(self, t: usize, iters: u64) -> f32 {
            #[cfg(target_arch = "x86_64")]
            match self {
                // SAFETY: `detect` picked these only where the processor has them.
                Isa::Avx512 => return unsafe { x86::avx512(t, iters) },
                Isa::Avx2 => return unsafe { x86::avx2(t, iters) },
                Isa::Baseline => {}
            }
            chains::<4, 12>(t, iters, F32_B, F32_C)
        }
    }

    /// The vector chains written with intrinsics, one register a chain. The generic
    /// `chains` compiled to gathers and scatters through memory under these target
    /// features (rustc 1.95: 4.5 GFLOP/s where the hardware does over 100), so the
    /// registers are named here.
    #[cfg(target_arch = "x86_64")]
    mod x86 {
        use super::{start, F32_B, F32_C};
        use std::arch::x86_64::*;

        /// 16 chains of 16 lanes in zmm registers (24 spilled a third of them to the
        /// stack: the allocator kept zmm16–31 for other values).
        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn avx512(t: usize, iters: u64) -> f32 {
            let (b, c) = (_mm512_set1_ps(F32_B), _mm512_set1_ps(F32_C));
            let mut x: [__m512; 16] = std::array::from_fn(|j| {
                let lanes: [f32; 16] = std::array::from_fn(|l| start(t, j, l));
                // SAFETY: 16 readable floats.
                unsafe { _mm512_loadu_ps(lanes.as_ptr()) }
            });
            for _ in 0..iters {
                for v in x.iter_mut() {
                    *v = _mm512_fmadd_ps(*v, b, c);
                }
            }
            x.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
        }

        /// 12 chains of 8 lanes in ymm registers.
        #[target_feature(enable = "avx2,fma")]
        pub(super) unsafe fn avx2(t: usize, iters: u64) -> f32 {
            let (b, c) = (_mm256_set1_ps(F32_B), _mm256_set1_ps(F32_C));
            let mut x: [__m256; 12] = std::array::from_fn(|j| {
                let lanes: [f32; 8] = std::array::from_fn(|l| start(t, j, l));
                // SAFETY: 8 readable floats.
                unsafe { _mm256_loadu_ps(lanes.as_ptr()) }
            });
            for _ in 0..iters {
                for v in x.iter_mut() {
                    *v = _mm256_fmadd_ps(*v, b, c);
                }
            }
            x.iter()
                .map(|&v| {
                    let mut lanes = [0f32; 8];
                    // SAFETY: 8 writable floats.
                    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
                    lanes.iter().sum::<f32>()
                })
                .sum()
        }
    }

    pub(super) fn cases(
        device: &DeviceInfo,
        buffer_bytes: u64,
        timing: &Timing,
    ) -> Result<Vec<Case>> {
        let mut out = vec![fma(device, timing)?];
        let words = (buffer_bytes / 4).max(1024) as usize;
        let src = source_words(words);
        let mut dst = vec![0u32; words];
        let threads = rayon::current_num_threads();
        let chunk = words.div_ceil(4 * threads).max(4096);
        let bytes = 4 * words as u64;

        // copy: dst = src, a chunk per task.
        let copy = |dst: &mut [u32]| {
            dst.par_chunks_mut(chunk)
                .zip(src.par_chunks(chunk))
                .for_each(|(d, s)| d.copy_from_slice(s));
        };
        copy(&mut dst);
        if inject_wrong() {
            dst[words / 2] ^= 1;
        }
        let err = max_word_error(&dst, &src);
        let stats = if err == 0.0 {
            Some(super::super::time_reps(
                |reps| {
                    let t = Instant::now();
                    for _ in 0..reps {
                        copy(&mut dst);
                    }
                    Ok(t.elapsed().as_secs_f64())
                },
                timing,
            )?)
        } else {
            None
        };
        let variant = "rayon copy_from_slice";
        out.push(case(
            device,
            "copy",
            "u32",
            mib(bytes),
            variant,
            2.0 * bytes as f64,
            stats,
            (err, 0.0),
        ));
        drop(dst);

        // read: the wrapping sum of every word, a partial sum per task.
        let read = || {
            src.par_chunks(chunk)
                .map(|c| {
                    let mut acc = [0u32; 16];
                    let mut it = c.chunks_exact(16);
                    for w in &mut it {
                        for (a, &v) in acc.iter_mut().zip(w) {
                            *a = a.wrapping_add(v);
                        }
                    }
                    let tail = it.remainder().iter().fold(0u32, |a, &v| a.wrapping_add(v));
                    acc.iter().fold(tail, |a, &v| a.wrapping_add(v))
                })
                .reduce(|| 0, u32::wrapping_add)
        };
        let want = src.iter().fold(0u32, |a, &v| a.wrapping_add(v));
        let mut got = read();
        if inject_wrong() {
            got ^= 1;
        }
        let err = max_word_error(&[got], &[want]);
        let stats = if err == 0.0 {
            Some(super::super::time_reps(
                |reps| {
                    let t = Instant::now();
                    for _ in 0..reps {
                        std::hint::black_box(read());
                    }
                    Ok(t.elapsed().as_secs_f64())
                },
                timing,
            )?)
        } else {
            None
        };
        out.push(case(
            device,
            "read",
            "u32",
            mib(bytes),
            "rayon sum",
            bytes as f64,
            stats,
            (err, 0.0),
        ));
        Ok(out)
    }

    /// The fma chains on every thread (one task per thread), sized so a repetition
    /// takes `rep_target`; checked against the f64 closed form first.
    fn fma(device: &DeviceInfo, timing: &Timing) -> Result<Case> {
        let isa = Isa::detect();
        let (name, lanes, n_chains) = isa.shape();
        let tasks = rayon::current_num_threads();
        let run = |iters: u64| -> Vec<f32> {
            (0..tasks)
                .into_par_iter()
                .map(|t| isa.run(t, iters))
                .collect()
        };
        let iters = grow(256, 1 << 30, rep_target(timing), |iters| {
            let t = Instant::now();
            std::hint::black_box(run(iters));
            Ok(t.elapsed().as_secs_f64())
        })?;
        let mut got = run(iters);
        if inject_wrong() {
            got.iter_mut().for_each(|v| *v += 1.0);
        }
        let mut err = 0f64;
        for (t, &g) in got.iter().enumerate() {
            let starts = (0..n_chains).flat_map(|j| (0..lanes).map(move |l| start(t, j, l) as f64));
            let e = (g as f64 - fma_reference(starts, F32_B, F32_C, iters)).abs();
            if e.is_nan() || e > err {
                err = e;
            }
        }
        // Each lane's rounding errors stay within ~1.2e-4 (they shrink by b each step).
        let tolerance = 2e-4 * (lanes * n_chains) as f64;
        let stats = if err <= tolerance {
            Some(super::super::time_reps(
                |reps| {
                    let t = Instant::now();
                    for _ in 0..reps {
                        std::hint::black_box(run(iters));
                    }
                    Ok(t.elapsed().as_secs_f64())
                },
                timing,
            )?)
        } else {
            None
        };
        let work = 2.0 * (tasks * lanes * n_chains) as f64 * iters as f64;
        Ok(case(
            device,
            "fma",
            "f32",
            format!("{n_chains} chains of {lanes} lanes per thread"),
            name,
            work,
            stats,
            (err, tolerance),
        ))
    }
}

/// A GPU's peaks: the WGSL kernels on a device of the bench's own.
mod gpu {
    use super::*;

    /// A device opened for the peak kernels (with SHADER_F16 where the adapter has it),
    /// its errors kept rather than panicking.
    struct PeakDevice {
        device: wgpu::Device,
        queue: wgpu::Queue,
        limits: wgpu::Limits,
        f16: bool,
        uncaptured: Arc<Mutex<Option<String>>>,
    }

    /// The uniform block of peak.wgsl.
    #[repr(C)]
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    struct Params {
        n: u32,
        iters: u32,
        b: f32,
        c: f32,
    }

    impl PeakDevice {
        fn open(adapter: &wgpu::Adapter, summary: &AdapterSummary, want_f16: bool) -> Result<Self> {
            let f16 = want_f16 && adapter.features().contains(wgpu::Features::SHADER_F16);
            let limits = adapter.limits();
            let desc = wgpu::DeviceDescriptor {
                label: Some("riskgrad bench peak"),
                required_features: if f16 {
                    wgpu::Features::SHADER_F16
                } else {
                    wgpu::Features::empty()
                },
                required_limits: limits.clone(),
                ..Default::default()
            };
            let (device, queue) = pollster::block_on(adapter.request_device(&desc))
                .map_err(|e| Error::Gpu(format!("cannot open {}: {e}", summary.name)))?;
            let uncaptured: Arc<Mutex<Option<String>>> = Arc::default();
            let sink = uncaptured.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert_with(|| e.to_string());
            }));
            Ok(PeakDevice {
                device,
                queue,
                limits,
                f16,
                uncaptured,
            })
        }

        /// Runs `f` inside validation and out-of-memory error scopes; their errors, or
        /// one reported outside any scope, come back as `Error::Gpu`.
        fn scoped<T>(&self, doing: &str, f: impl FnOnce() -> T) -> Result<T> {
            let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
            let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let value = f();
            let v = pollster::block_on(validation.pop());
            let o = pollster::block_on(oom.pop());
            if let Some(e) = v.or(o) {
                return Err(Error::Gpu(format!("bench peak, {doing}: {e}")));
            }
            match self
                .uncaptured
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
            {
                Some(e) => Err(Error::Gpu(format!("bench peak, {doing}: {e}"))),
                None => Ok(value),
            }
        }

        fn pipeline(&self, module: usize, entry: &str) -> Result<wgpu::ComputePipeline> {
            let m = &BENCH_MODULES[module];
            self.scoped(&format!("building {}:{entry}", m.file), || {
                let module = self
                    .device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(m.file),
                        source: wgpu::ShaderSource::Wgsl(m.source.into()),
                    });
                self.device
                    .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(entry),
                        layout: None,
                        module: &module,
                        entry_point: Some(entry),
                        compilation_options: Default::default(),
                        cache: None,
                    })
            })
        }

        fn buffer(
            &self,
            label: &str,
            bytes: u64,
            usage: wgpu::BufferUsages,
        ) -> Result<wgpu::Buffer> {
            self.scoped(&format!("allocating {label} ({})", mib(bytes)), || {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: bytes.max(16),
                    usage,
                    mapped_at_creation: false,
                })
            })
        }

        fn storage(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
            use wgpu::BufferUsages as U;
            self.buffer(label, bytes, U::STORAGE | U::COPY_DST | U::COPY_SRC)
        }

        fn uniforms(&self, p: Params) -> Result<wgpu::Buffer> {
            use wgpu::BufferUsages as U;
            let b = self.buffer("peak params", 16, U::UNIFORM | U::COPY_DST)?;
            self.queue.write_buffer(&b, 0, bytemuck::bytes_of(&p));
            Ok(b)
        }

        /// A bind group of `pipeline`'s group 0 with these (binding, buffer) entries.
        fn bind(
            &self,
            pipeline: &wgpu::ComputePipeline,
            entries: &[(u32, &wgpu::Buffer)],
        ) -> Result<wgpu::BindGroup> {
            self.scoped("binding", || {
                let entries: Vec<wgpu::BindGroupEntry> = entries
                    .iter()
                    .map(|&(binding, b)| wgpu::BindGroupEntry {
                        binding,
                        resource: b.as_entire_binding(),
                    })
                    .collect();
                self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &pipeline.get_bind_group_layout(0),
                    entries: &entries,
                })
            })
        }

        /// `reps` dispatches of `groups` workgroups in one submission; waits for them and
        /// returns the wall seconds.
        fn dispatch(
            &self,
            pipeline: &wgpu::ComputePipeline,
            bind: &wgpu::BindGroup,
            groups: u32,
            reps: usize,
        ) -> Result<f64> {
            let start = Instant::now();
            self.scoped("running", || {
                let mut encoder =
                    self.device
                        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                            label: Some("peak"),
                        });
                {
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("peak"),
                        timestamp_writes: None,
                    });
                    pass.set_pipeline(pipeline);
                    pass.set_bind_group(0, bind, &[]);
                    for _ in 0..reps {
                        pass.dispatch_workgroups(groups, 1, 1);
                    }
                }
                self.queue.submit([encoder.finish()]);
            })?;
            self.wait()?;
            Ok(start.elapsed().as_secs_f64())
        }

        fn wait(&self) -> Result<()> {
            self.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| Error::Gpu(format!("bench peak, waiting for the GPU: {e}")))?;
            Ok(())
        }

        /// The first `bytes` of `buffer`, as words.
        fn read_words(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u32>> {
            use wgpu::BufferUsages as U;
            let staging = self.buffer("peak readback", bytes, U::MAP_READ | U::COPY_DST)?;
            let (tx, rx) = std::sync::mpsc::channel();
            self.scoped("reading back", || {
                let mut encoder =
                    self.device
                        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                            label: Some("readback"),
                        });
                encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, bytes);
                self.queue.submit([encoder.finish()]);
                staging.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
                    let _ = tx.send(r);
                });
            })?;
            self.wait()?;
            rx.recv()
                .map_err(|_| Error::Gpu("bench peak: the readback was dropped".into()))?
                .map_err(|e| Error::Gpu(format!("bench peak, mapping the readback: {e}")))?;
            let view = staging
                .get_mapped_range(0..bytes)
                .map_err(|e| Error::Gpu(format!("bench peak, mapping the readback: {e}")))?;
            let words = bytemuck::cast_slice::<u8, u32>(&view).to_vec();
            drop(view);
            staging.unmap();
            Ok(words)
        }
    }

    pub(super) fn cases(
        adapter: &wgpu::Adapter,
        summary: &AdapterSummary,
        device: &DeviceInfo,
        buffer_bytes: u64,
        with_f16: bool,
        timing: &Timing,
    ) -> Result<Vec<Case>> {
        let d = PeakDevice::open(adapter, summary, with_f16)?;
        let mut out = vec![fma(&d, device, false, timing)?];
        if d.f16 {
            out.push(fma(&d, device, true, timing)?);
        } else if with_f16 {
            println!(
                "fma f16 on {}: not measured (the adapter has no SHADER_F16)",
                super::super::device_label(device)
            );
        }
        out.extend(stream(&d, device, buffer_bytes, timing)?);
        Ok(out)
    }

    /// The fma chains (f32, or f16 in peak_f16.wgsl), the grid grown until a repetition
    /// takes `rep_target`; every invocation's sum checked against the f64 closed form.
    fn fma(d: &PeakDevice, device: &DeviceInfo, f16: bool, timing: &Timing) -> Result<Case> {
        let (module, entry, b, c, dtype) = if f16 {
            (1, "fma_f16", F16_B, F16_C, "f16")
        } else {
            (0, "fma_f32", F32_B, F32_C, "f32")
        };
        let pipeline = d.pipeline(module, entry)?;
        let max_groups = MAX_FMA_GROUPS.min(d.limits.max_compute_workgroups_per_dimension);
        let accs = d.storage("peak accs", max_groups as u64 * WORKGROUP as u64 * 4)?;
        let params = d.uniforms(Params {
            n: 0,
            iters: GPU_ITERS,
            b,
            c,
        })?;
        let bind = d.bind(&pipeline, &[(0, &params), (4, &accs)])?;
        let groups = grow(8, max_groups as u64, rep_target(timing), |g| {
            d.dispatch(&pipeline, &bind, g as u32, 1)
        })? as u32;
        d.dispatch(&pipeline, &bind, groups, 1)?;
        let invocations = groups as usize * WORKGROUP as usize;
        let mut got: Vec<f32> = d
            .read_words(&accs, invocations as u64 * 4)?
            .into_iter()
            .map(f32::from_bits)
            .collect();
        if inject_wrong() {
            got.iter_mut().for_each(|v| *v += 1.0);
        }
        // Chain j, lane l of invocation i starts at 1 + (i % 64)/64 + l/4 + j/32.
        let want: Vec<f64> = (0..64)
            .map(|r| {
                let starts = (0..4).flat_map(move |j| {
                    (0..4).map(move |l| 1.0 + r as f64 / 64.0 + 0.25 * l as f64 + j as f64 / 32.0)
                });
                fma_reference(starts, b, c, GPU_ITERS as u64)
            })
            .collect();
        let mut err = 0f64;
        for (i, &g) in got.iter().enumerate() {
            let e = (g as f64 - want[i % 64]).abs();
            if e.is_nan() || e > err {
                err = e;
            }
        }
        // Per lane: f32's errors stay within ~1.2e-4 (they shrink by b each step); f16
        // lands on 1 exactly, give or take an ulp of 1 (2⁻¹⁰) per rounding of the sum.
        let per_lane = if f16 { 2e-3 } else { 2e-4 };
        let tolerance = per_lane * GPU_LANES as f64;
        let stats = if err <= tolerance {
            Some(super::super::time_reps(
                |reps| d.dispatch(&pipeline, &bind, groups, reps),
                timing,
            )?)
        } else {
            None
        };
        let work = 2.0 * (invocations * GPU_LANES) as f64 * GPU_ITERS as f64;
        Ok(case(
            device,
            "fma",
            dtype,
            format!("4 chains of vec4, {GPU_ITERS} iterations per invocation"),
            "default",
            work,
            stats,
            (err, tolerance),
        ))
    }

    /// The grid (of 16 to `most` workgroups, by fours) that runs a grid-stride kernel
    /// fastest, from one timed run each: a GPU wants many workgroups in flight, a
    /// CPU-side Vulkan (lavapipe) few, each workgroup costing it a fixed overhead.
    fn fastest_grid(
        d: &PeakDevice,
        pipeline: &wgpu::ComputePipeline,
        bind: &wgpu::BindGroup,
        most: u32,
    ) -> Result<u32> {
        d.dispatch(pipeline, bind, most, 1)?; // first-use costs
        let mut best = (f64::INFINITY, most);
        let mut g = most;
        loop {
            let t = d.dispatch(pipeline, bind, g, 1)?;
            if t < best.0 {
                best = (t, g);
            }
            if g <= 16 {
                return Ok(best.1);
            }
            g = (g / 4).max(16);
        }
    }

    /// copy and read over a buffer of `buffer_bytes` (capped by the adapter's largest
    /// storage binding), each checked whole before it is timed.
    fn stream(
        d: &PeakDevice,
        device: &DeviceInfo,
        buffer_bytes: u64,
        timing: &Timing,
    ) -> Result<Vec<Case>> {
        let cap = d
            .limits
            .max_storage_buffer_binding_size
            .min(d.limits.max_buffer_size);
        let bytes = (buffer_bytes.min(cap) / 256 * 256).max(256);
        if bytes < buffer_bytes {
            eprintln!(
                "bench peak: {} of buffer on {} (its largest storage binding), not {}",
                mib(bytes),
                super::super::device_label(device),
                mib(buffer_bytes)
            );
        }
        let n = bytes / 16;
        let most = (n.div_ceil(WORKGROUP as u64) as u32)
            .min(STREAM_GROUPS)
            .min(d.limits.max_compute_workgroups_per_dimension);
        let words = source_words((bytes / 4) as usize);
        let src = d.storage("peak src", bytes)?;
        let dst = d.storage("peak dst", bytes)?;
        let sums = d.storage("peak sums", most as u64 * WORKGROUP as u64 * 4)?;
        d.scoped("uploading", || {
            d.queue.write_buffer(&src, 0, bytemuck::cast_slice(&words))
        })?;
        let params = d.uniforms(Params {
            n: n as u32,
            iters: 0,
            b: 0.0,
            c: 0.0,
        })?;
        let shape = mib(bytes);
        let mut out = Vec::new();

        let copy = d.pipeline(0, "copy_words")?;
        let bind = d.bind(&copy, &[(0, &params), (1, &src), (2, &dst)])?;
        let groups = fastest_grid(d, &copy, &bind, most)?;
        d.dispatch(&copy, &bind, groups, 1)?;
        let mut got = d.read_words(&dst, bytes)?;
        if inject_wrong() {
            let mid = got.len() / 2;
            got[mid] ^= 1;
        }
        let err = max_word_error(&got, &words);
        drop(got);
        let stats = if err == 0.0 {
            Some(super::super::time_reps(
                |reps| d.dispatch(&copy, &bind, groups, reps),
                timing,
            )?)
        } else {
            None
        };
        out.push(case(
            device,
            "copy",
            "u32",
            shape.clone(),
            "vec4",
            2.0 * bytes as f64,
            stats,
            (err, 0.0),
        ));

        let read = d.pipeline(0, "read_words")?;
        let bind = d.bind(&read, &[(0, &params), (1, &src), (3, &sums)])?;
        let groups = fastest_grid(d, &read, &bind, most)?;
        let stride = groups as usize * WORKGROUP as usize;
        d.dispatch(&read, &bind, groups, 1)?;
        let mut got = d.read_words(&sums, stride as u64 * 4)?;
        if inject_wrong() {
            got[0] ^= 1;
        }
        // Invocation k sums the vec4 elements k, k + stride, k + 2·stride, ...
        let mut want = vec![0u32; stride];
        for (e, v) in words.chunks_exact(4).enumerate() {
            let s = v.iter().fold(0u32, |a, &x| a.wrapping_add(x));
            want[e % stride] = want[e % stride].wrapping_add(s);
        }
        let err = max_word_error(&got, &want);
        let stats = if err == 0.0 {
            Some(super::super::time_reps(
                |reps| d.dispatch(&read, &bind, groups, reps),
                timing,
            )?)
        } else {
            None
        };
        // The buffer read, and a word written per invocation.
        let work = (bytes + 4 * stride as u64) as f64;
        out.push(case(
            device,
            "read",
            "u32",
            shape,
            "vec4",
            work,
            stats,
            (err, 0.0),
        ));
        Ok(out)
    }
}
