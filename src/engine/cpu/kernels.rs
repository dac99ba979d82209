//! The CPU kernels: plain slices in, slices out, the same semantics as the WGSL kernels.
//! They are also the reference the GPU kernels are tested against.

use super::lanes::Lanes;
use super::simd;
use crate::engine::graph::{dropout_hash, Act, BinaryOp, Optimizer};
use crate::engine::plan::MAX_RANK;
use rayon::prelude::*;
use std::ops::Range;

/// Evaluates `$body` with `$a` bound to `$act` as a constant: one arm per activation, so
/// a per-element formula inlines and vectorizes instead of matching on every element.
macro_rules! per_act {
    ($act:expr, $a:ident => $body:expr) => {
        match $act {
            Act::Identity => {
                const $a: Act = Act::Identity;
                $body
            }
            Act::Relu => {
                const $a: Act = Act::Relu;
                $body
            }
            Act::Sigmoid => {
                const $a: Act = Act::Sigmoid;
                $body
            }
            Act::Tanh => {
                const $a: Act = Act::Tanh;
                $body
            }
            Act::LeakyRelu => {
                const $a: Act = Act::LeakyRelu;
                $body
            }
            Act::Gelu => {
                const $a: Act = Act::Gelu;
                $body
            }
            Act::Silu => {
                const $a: Act = Act::Silu;
                $body
            }
            Act::Sin => {
                const $a: Act = Act::Sin;
                $body
            }
        }
    };
}
pub(crate) use per_act;

/// Below this many multiply-adds a matmul runs on one thread: splitting costs more.
const PARALLEL_MATMUL_WORK: usize = 1 << 20;
/// Elementwise work is split across the thread pool only above this many elements.
const PARALLEL_ELEMENTS: usize = 1 << 16;
/// Elementwise work is split across the lanes, when they are splitting, from this many
/// elements (where it went to the pool before; see `LANES_MIN_WORK`).
const LANES_MIN_ELEMENTS: usize = PARALLEL_ELEMENTS;

/// `1 / (1 + e^-z)`, without overflow for large `|z|`.
#[inline]
pub fn sigmoid(z: f32) -> f32 {
    Act::Sigmoid.eval(z)
}

/// `out[m,n] = act(op(a) · op(b) + bias)`, all row-major; `op` transposes when flagged.
/// `bias` is `[n]` (every row) or `[m, n]` (a whole matrix added).
/// Large products are split across the thread pool.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
    act: Act,
) {
    matmul_on(
        a,
        b,
        bias,
        out,
        m,
        n,
        k,
        trans_a,
        trans_b,
        act,
        m * n * k >= PARALLEL_MATMUL_WORK,
    )
}

/// From this many multiply-adds up a product is split across the lanes when they are
/// splitting. Handing a part to a spinning helper takes about a microsecond: on a 2-core
/// virtual machine products of 256 × 32 × 64 (524,288) and 64 × 32 × 256 ran 1.3–1.4×
/// faster split, and 16,384 elements of an elementwise kernel 0.7× (BENCHMARKS.md,
/// "Lanes").
const LANES_MIN_WORK: usize = 1 << 18;

/// `matmul` as the executor runs it: across the lanes when they are splitting and the
/// product is not tiny, else on one thread (or across the pool when large).
#[allow(clippy::too_many_arguments)]
pub fn matmul_auto(
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
    act: Act,
    lanes: &Lanes,
) {
    if lanes.splitting() && m * n * k >= LANES_MIN_WORK {
        matmul_lanes(a, b, bias, out, m, n, k, trans_a, trans_b, act, lanes)
    } else {
        matmul(a, b, bias, out, m, n, k, trans_a, trans_b, act)
    }
}

/// A product's operands as gemm reads them: `op(a)` (`m × k`) and `op(b)` (`k × n`) by
/// pointer and strides (column, row) over their row-major storage. Handed to the other
/// lanes, which only read them.
#[derive(Clone, Copy)]
struct Operands {
    a: *const f32,
    a_strides: (isize, isize),
    b: *const f32,
    b_strides: (isize, isize),
    k: usize,
}

// SAFETY: the operands are only read.
unsafe impl Send for Operands {}
unsafe impl Sync for Operands {}

impl Operands {
    #[allow(clippy::too_many_arguments)]
    fn new(
        a: &[f32],
        b: &[f32],
        m: usize,
        n: usize,
        k: usize,
        trans_a: bool,
        trans_b: bool,
    ) -> Self {
        assert!(
            a.len() >= m * k && b.len() >= k * n,
            "matmul operands too small"
        );
        Operands {
            a: a.as_ptr(),
            a_strides: if trans_a {
                (m as isize, 1)
            } else {
                (1, k as isize)
            },
            b: b.as_ptr(),
            b_strides: if trans_b {
                (k as isize, 1)
            } else {
                (1, n as isize)
            },
            k,
        }
    }

    /// Rows `rows` and columns `cols` of `op(a) · op(b)`, summed over `ks` only, into
    /// `dst` (row stride `dst_rs`, its first element the block's first), which it
    /// overwrites unread. Safety: `dst` covers the block, and no other reference to it
    /// lives meanwhile.
    unsafe fn gemm(
        &self,
        dst: *mut f32,
        dst_rs: usize,
        rows: Range<usize>,
        cols: Range<usize>,
        ks: Range<usize>,
        parallelism: gemm::Parallelism,
    ) {
        let ((a_cs, a_rs), (b_cs, b_rs)) = (self.a_strides, self.b_strides);
        debug_assert!(ks.end <= self.k);
        if ks.is_empty() {
            return;
        }
        gemm::gemm(
            rows.len(),
            cols.len(),
            ks.len(),
            dst,
            1,
            dst_rs as isize,
            false,
            self.a
                .offset(rows.start as isize * a_rs + ks.start as isize * a_cs),
            a_cs,
            a_rs,
            self.b
                .offset(cols.start as isize * b_cs + ks.start as isize * b_rs),
            b_cs,
            b_rs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }

    /// The block as the whole product computes it (see `gemm`): over all of `k`, or,
    /// where the product sums over its rows (`product_halves`), the first half into
    /// `dst` and the second into a scratch block then added (`add_halves`).
    unsafe fn product(
        &self,
        halves: Option<[Range<usize>; 2]>,
        dst: *mut f32,
        dst_rs: usize,
        rows: Range<usize>,
        cols: Range<usize>,
        parallelism: gemm::Parallelism,
    ) {
        let Some([first, second]) = halves else {
            return self.gemm(dst, dst_rs, rows, cols, 0..self.k, parallelism);
        };
        self.gemm(dst, dst_rs, rows.clone(), cols.clone(), first, parallelism);
        let width = cols.len();
        with_second_half(rows.len() * width, |scratch| {
            self.gemm(scratch.as_mut_ptr(), width, rows, cols, second, parallelism);
            for (r, part) in scratch.chunks_exact(width).enumerate() {
                add_halves(
                    std::slice::from_raw_parts_mut(dst.add(r * dst_rs), width),
                    part,
                );
            }
        })
    }
}

thread_local! {
    /// The second half of a sum taken in halves (`with_second_half`), reused between calls.
    static SECOND_HALF: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// `f` on a zeroed buffer of `len` words for a sum's second half, this thread's own,
/// reused between calls. Taken out, not borrowed: a pool thread waiting inside gemm may
/// run another product meanwhile, which then allocates its own.
fn with_second_half<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut scratch = SECOND_HALF.take();
    scratch.clear();
    scratch.resize(len, 0.0);
    let result = f(&mut scratch);
    SECOND_HALF.set(scratch);
    result
}

/// The two fixed blocks of rows a sum over `rows` rows is taken in on the CPU, or `None`
/// below 32 rows: `first + second`, each block summed in index order. A product summing
/// over its rows (`trans_a`: a weight gradient, `product_halves`) and a sum of leading
/// rows (a bias gradient, `reduce_to`) sum so. The halves depend on the rows alone, not
/// the threads, and are the blocks two lanes split the rows in (`blocks`), so each lane
/// of a split step can sum the rows it computed (`CpuExecutor::run_split_step`): the
/// sums' reads then never cross cores, and the bits are one thread's.
pub(crate) fn sum_halves(rows: usize) -> Option<[Range<usize>; 2]> {
    let split = blocks(rows, 2);
    (split.1 == 2).then(|| [block_range(0, split, rows), block_range(1, split, rows)])
}

/// The halves (`sum_halves`) a product `op(a) · op(b)` sums its `k` in: a product with
/// `op(a)` transposed sums over the rows of `a`.
pub(crate) fn product_halves(k: usize, trans_a: bool) -> Option<[Range<usize>; 2]> {
    trans_a.then(|| sum_halves(k)).flatten()
}

/// `first[i] += second[i]`: a sum's two halves added (`sum_halves`).
pub(crate) fn add_halves(first: &mut [f32], second: &[f32]) {
    simd::widest(|| first.iter_mut().zip(second).for_each(|(f, s)| *f += s));
}

/// Half `half` of the sum over rows of the product `aᵀ · b` (`m × n`, no bias;
/// `product_halves`) into `out`: a split step's lane sums its
/// own rows with it, and adds the halves afterwards (`add_halves`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn product_half(
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    half: usize,
) {
    let halves = product_halves(k, true).expect("a product summed in halves");
    assert!(out.len() >= m * n, "matmul output too small");
    let operands = Operands::new(a, b, m, n, k, true, false);
    let ks = halves[half].clone();
    // SAFETY: `out` covers the m × n block and is borrowed mutably.
    unsafe { operands.gemm(out.as_mut_ptr(), n, 0..m, 0..n, ks, gemm::Parallelism::None) }
}

/// `out` handed to the other lanes, each writing its own block.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);

// SAFETY: the lanes' blocks of `out` do not overlap.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

/// `matmul` in blocks of the output (its rows, or its columns when there are more of
/// them), one per lane, each block on one thread. Each output is computed as the whole
/// product computes it, so the bits do not depend on the lanes.
#[allow(clippy::too_many_arguments)]
pub fn matmul_lanes(
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
    act: Act,
    lanes: &Lanes,
) {
    if !lanes.splitting() || k == 0 || m.max(n) < 16 {
        return matmul_on(a, b, bias, out, m, n, k, trans_a, trans_b, act, false);
    }
    assert!(
        a.len() >= m * k && b.len() >= k * n && out.len() >= m * n,
        "matmul operands too small"
    );
    let out = &mut out[..m * n];
    product_lanes(a, b, bias, out, m, n, k, trans_a, trans_b, act, lanes);
}

/// `act(op(a) · op(b) + bias)` into `out` (`m × n`, checked), in blocks on the lanes.
/// Each lane also starts its block from the bias and applies the activation to it, so
/// no lane writes another's rows (which would move them to its core's cache).
#[allow(clippy::too_many_arguments)]
fn product_lanes(
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
    act: Act,
    lanes: &Lanes,
) {
    if small_inner(k, trans_b) {
        let rows = m.div_ceil(lanes.count());
        lanes.split_chunks(out, rows * n, |part, block| {
            small_k_matmul(a, b, bias, block, part * rows, m, n, k, trans_a);
            activate_all(act, block, None);
        });
        return;
    }
    let operands = Operands::new(a, b, m, n, k, trans_a, trans_b);
    let halves = product_halves(k, trans_a);
    let out_ptr = OutPtr(out.as_mut_ptr());
    // Rows [r0, r1) and columns [c0, c1) of `out`.
    let block = move |r0: usize, r1: usize, c0: usize, c1: usize| {
        let out = out_ptr;
        // Each of the block's rows, within its columns. SAFETY: as below.
        let rows = || {
            (r0..r1).map(move |r| unsafe {
                std::slice::from_raw_parts_mut(out.0.add(r * n + c0), c1 - c0)
            })
        };
        // SAFETY: the block lies inside `out` (asserted above); the lanes' blocks do not
        // overlap, and `out` is borrowed mutably for this call.
        unsafe {
            operands.product(
                halves.clone(),
                out.0.add(r0 * n + c0),
                n,
                r0..r1,
                c0..c1,
                gemm::Parallelism::None,
            )
        }
        add_bias_and_activate(rows().zip(r0..), bias, n, c0..c1, act);
    };
    // Rows while every lane gets a block of them (a lane reading half of every row of
    // op(b) ran the weight gradient 58 × 64 × 256 at 0.7× one thread; its rows at
    // 1.4×), else columns when there are more of them.
    let (rows, cols) = (blocks(m, lanes.count()), blocks(n, lanes.count()));
    let by_rows = rows.1 >= 2 && (rows.1 == lanes.count() || m >= n || cols.1 < 2);
    let ((width, parts), long) = if by_rows { (rows, m) } else { (cols, n) };
    lanes.split(parts, |part| {
        let span = block_range(part, (width, parts), long);
        if by_rows {
            block(span.start, span.end, 0, n)
        } else {
            block(0, m, span.start, span.end)
        }
    });
}

/// How a dimension of `len` splits across `lanes`: blocks of `width` (a multiple of
/// 16, the microkernels' tile) and their count, the last block taking the rest. No block
/// is narrower than 16: the product kernels take other paths for very thin blocks (one
/// row is a matrix-vector product), which would change the bits.
pub(crate) fn blocks(len: usize, lanes: usize) -> (usize, usize) {
    let width = len.div_ceil(lanes.max(1)).next_multiple_of(16);
    let full = len / width;
    if len - full * width >= 16 || full == 0 {
        (width, len.div_ceil(width))
    } else {
        // A thin remainder joins the last full block.
        (width, full)
    }
}

/// Block `part` of a dimension of `len` split as [`blocks`] gave (`width`, `parts`): the
/// last block ends at `len`.
pub(crate) fn block_range(
    part: usize,
    (width, parts): (usize, usize),
    len: usize,
) -> std::ops::Range<usize> {
    let start = part * width;
    start..if part + 1 == parts {
        len
    } else {
        start + width
    }
}

/// `matmul` on the calling thread alone, or split across the pool when `parallel`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_on(
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
    act: Act,
    parallel: bool,
) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && out.len() >= m * n,
        "matmul operands too small"
    );
    let out = &mut out[..m * n];
    product_on(a, b, bias, out, m, n, k, trans_a, trans_b, act, parallel);
}

/// `act` applied to every element of `out` (nothing for the identity).
fn activate_all(act: Act, out: &mut [f32], lanes: Option<&Lanes>) {
    if act != Act::Identity {
        per_act!(act, A => map_inplace(out, |z| A.eval(z), lanes));
    }
}

/// `act(op(a) · op(b) + bias)` into `out` (`m × n`, checked), on this thread or the pool.
#[allow(clippy::too_many_arguments)]
fn product_on(
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
    act: Act,
    parallel: bool,
) {
    if small_inner(k, trans_b) {
        let rows_per_chunk = (PARALLEL_MATMUL_WORK / (n * k).max(1)).max(1);
        if parallel && m > rows_per_chunk {
            out.par_chunks_mut(rows_per_chunk * n)
                .enumerate()
                .for_each(|(c, part)| {
                    small_k_matmul(a, b, bias, part, c * rows_per_chunk, m, n, k, trans_a)
                });
        } else {
            small_k_matmul(a, b, bias, out, 0, m, n, k, trans_a);
        }
        activate_all(act, out, None);
        return;
    }
    if k == 0 {
        out.fill(0.0);
    }
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    let operands = Operands::new(a, b, m, n, k, trans_a, trans_b);
    // SAFETY: `out` covers the m × n product (asserted by the callers) and does not
    // overlap the operands (distinct borrows).
    unsafe {
        operands.product(
            product_halves(k, trans_a),
            out.as_mut_ptr(),
            n,
            0..m,
            0..n,
            parallelism,
        )
    }
    add_bias_and_activate(out.chunks_exact_mut(n).zip(0..), bias, n, 0..n, act);
}

/// What a matmul adds to output row `i`: its bias (`[n]`, every row the same) or row `i`
/// of an added matrix (`[m, n]`). The two agree where `m` is 1.
#[inline(always)]
fn bias_row(bias: &[f32], i: usize, n: usize) -> &[f32] {
    if bias.len() > n {
        &bias[i * n..][..n]
    } else {
        &bias[..n]
    }
}

/// `row = act(row + bias)` for rows of a product `n` wide (each with its index), within
/// the columns `cols`: a product's bias and activation, in one pass after gemm. Adding
/// the bias after the sum rounds as gemm's own `dst + sum` did.
fn add_bias_and_activate<'r>(
    rows: impl Iterator<Item = (&'r mut [f32], usize)>,
    bias: Option<&[f32]>,
    n: usize,
    cols: Range<usize>,
    act: Act,
) {
    if bias.is_none() && act == Act::Identity {
        return;
    }
    per_act!(act, A => simd::widest(|| {
        for (row, i) in rows {
            match bias {
                Some(bias) => row
                    .iter_mut()
                    .zip(&bias_row(bias, i, n)[cols.clone()])
                    .for_each(|(o, &b)| *o = A.eval(*o + b)),
                None => row.iter_mut().for_each(|o| *o = A.eval(*o)),
            }
        }
    }))
}

/// Inner dimensions up to this go to `small_k_matmul` instead of gemm, whose packing
/// costs more than the arithmetic there (the first recurrent layer's input product,
/// `[batch·steps, 3] · [3, 4·hidden]`, ran at 6 GFLOP/s through gemm).
const SMALL_K: usize = 8;

fn small_inner(k: usize, trans_b: bool) -> bool {
    (1..=SMALL_K).contains(&k) && !trans_b
}

/// Rows `[first, first + out.len() / n)` of `op(a) · b + bias` (`b` row-major `[k, n]`,
/// `a` of `m` rows) into `out`: each output row starts as the bias and takes `k` scaled
/// rows of `b`, a loop over the columns that vectorizes.
#[allow(clippy::too_many_arguments)]
fn small_k_matmul(
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    first: usize,
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
) {
    let (a_cs, a_rs) = if trans_a { (m, 1) } else { (1, k) };
    small_k_rows(simd::isa(), a, a_cs, a_rs, b, bias, out, first, n, k)
}

simd::multiversion!(small_k_rows, small_k_rows_body, (a: &[f32], a_cs: usize, a_rs: usize, b: &[f32], bias: Option<&[f32]>, out: &mut [f32], first: usize, n: usize, k: usize));

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn small_k_rows_body<M: simd::MulAdd>(
    a: &[f32],
    a_cs: usize,
    a_rs: usize,
    b: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    first: usize,
    n: usize,
    k: usize,
) {
    for (r, row) in out.chunks_exact_mut(n).enumerate() {
        let i = first + r;
        match bias {
            Some(bias) => row.copy_from_slice(bias_row(bias, i, n)),
            None => row.fill(0.0),
        }
        for p in 0..k {
            let scale = a[i * a_rs + p * a_cs];
            for (o, &x) in row.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *o = M::ma(scale, x, *o);
            }
        }
    }
}

/// The lanes to split `len` elements of elementwise work across, if any.
fn lanes_for(len: usize, lanes: Option<&Lanes>) -> Option<&Lanes> {
    lanes.filter(|l| l.splitting() && len >= LANES_MIN_ELEMENTS)
}

/// Each lane's share of `len` elements, a multiple of 16 (whole SIMD vectors).
fn lane_share(len: usize, lanes: &Lanes) -> usize {
    len.div_ceil(lanes.count()).next_multiple_of(16)
}

/// `xs[i] = f(xs[i])`: across the lanes when they are splitting, across the pool when
/// large, else here.
fn map_inplace(xs: &mut [f32], f: impl Fn(f32) -> f32 + Sync, lanes: Option<&Lanes>) {
    let each = |c: &mut [f32]| simd::widest(|| c.iter_mut().for_each(|x| *x = f(*x)));
    if let Some(lanes) = lanes_for(xs.len(), lanes) {
        let share = lane_share(xs.len(), lanes);
        lanes.split_chunks(xs, share, |_, c| each(c));
    } else if xs.len() >= PARALLEL_ELEMENTS {
        xs.par_chunks_mut(PARALLEL_ELEMENTS / 4).for_each(each);
    } else {
        each(xs);
    }
}

/// `out[i] = f(a[i], b[i])`, split as `map_inplace` splits.
fn zip_map(
    out: &mut [f32],
    a: &[f32],
    b: &[f32],
    f: impl Fn(f32, f32) -> f32 + Sync,
    lanes: Option<&Lanes>,
) {
    let each = |o: &mut [f32], a: &[f32], b: &[f32]| {
        simd::widest(|| {
            o.iter_mut()
                .zip(a)
                .zip(b)
                .for_each(|((o, &a), &b)| *o = f(a, b))
        })
    };
    if let Some(lanes) = lanes_for(out.len(), lanes) {
        let share = lane_share(out.len(), lanes);
        lanes.split_chunks(out, share, |part, o| {
            let start = part * share;
            each(o, &a[start..], &b[start..])
        });
    } else if out.len() >= PARALLEL_ELEMENTS {
        let chunk = PARALLEL_ELEMENTS / 4;
        out.par_chunks_mut(chunk)
            .zip(a.par_chunks(chunk))
            .zip(b.par_chunks(chunk))
            .for_each(|((o, a), b)| each(o, a, b));
    } else {
        each(out, a, b)
    }
}

#[inline]
fn apply_binary(op: BinaryOp, a: f32, b: f32) -> f32 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
    }
}

/// Index of each axis of the flat row-major index `i` within `shape`.
#[inline]
fn unravel(mut i: usize, shape: &[usize; MAX_RANK]) -> [usize; MAX_RANK] {
    let mut idx = [0; MAX_RANK];
    for d in (0..MAX_RANK).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

#[inline]
fn dot(idx: &[usize; MAX_RANK], strides: &[usize; MAX_RANK]) -> usize {
    idx.iter().zip(strides).map(|(i, s)| i * s).sum()
}

/// `ElementwiseKernel::Binary`: `out = op(a, b)` with broadcast strides over `shape`.
#[allow(clippy::too_many_arguments)]
pub fn binary(
    op: BinaryOp,
    a: &[f32],
    b: &[f32],
    out: &mut [f32],
    shape: &[usize; MAX_RANK],
    a_strides: &[usize; MAX_RANK],
    b_strides: &[usize; MAX_RANK],
    lanes: Option<&Lanes>,
) {
    let len: usize = shape.iter().product();
    let contiguous = |s: &[usize; MAX_RANK]| *s == crate::engine::plan::contiguous_strides(shape);
    if contiguous(a_strides) && contiguous(b_strides) {
        let (out, a, b) = (&mut out[..len], &a[..len], &b[..len]);
        // The operation chosen once, not per element, so each loop vectorizes.
        return match op {
            BinaryOp::Add => zip_map(out, a, b, |x, y| x + y, lanes),
            BinaryOp::Sub => zip_map(out, a, b, |x, y| x - y, lanes),
            BinaryOp::Mul => zip_map(out, a, b, |x, y| x * y, lanes),
            BinaryOp::Div => zip_map(out, a, b, |x, y| x / y, lanes),
        };
    }
    // Broadcast along the last axis (the common `x + bias` shape) without index math.
    let inner = shape[MAX_RANK - 1];
    for (row, chunk) in out[..len].chunks_exact_mut(inner).enumerate() {
        let idx = unravel(row * inner, shape);
        let (a0, b0) = (dot(&idx, a_strides), dot(&idx, b_strides));
        let (sa, sb) = (a_strides[MAX_RANK - 1], b_strides[MAX_RANK - 1]);
        for (j, o) in chunk.iter_mut().enumerate() {
            *o = apply_binary(op, a[a0 + j * sa], b[b0 + j * sb]);
        }
    }
}

/// `ElementwiseKernel::Unary`: `out = act(x)`.
pub fn unary(act: Act, x: &[f32], out: &mut [f32], lanes: Option<&Lanes>) {
    let n = out.len();
    out.copy_from_slice(&x[..n]);
    per_act!(act, A => map_inplace(out, |z| A.eval(z), lanes));
}

/// `dy · act'(x)` from `v`, the output `y = act(x)` or the input `x` as
/// `act.slope_from()` says.
pub fn act_grad(act: Act, dy: &[f32], v: &[f32], out: &mut [f32], lanes: Option<&Lanes>) {
    let n = out.len();
    per_act!(act, A => zip_map(out, &dy[..n], &v[..n], |d, v| d * A.slope(v), lanes));
}

/// Sums `x` (of `in_shape`) into `out` (of `out_shape`, 1 on the reduced axes), times
/// `scale`. Each output is summed in input index order, as the WGSL kernel does, except
/// a sum of leading rows (a bias gradient), taken in two halves (`sum_halves`).
pub fn reduce_to(
    x: &[f32],
    out: &mut [f32],
    in_shape: &[usize; MAX_RANK],
    out_shape: &[usize; MAX_RANK],
    scale: f32,
) {
    // Fast paths for the shapes training produces: a bias gradient sums the leading
    // rows (in two halves, `sum_halves`), a row sum the trailing columns.
    let kept = |d: usize| out_shape[d] == in_shape[d];
    if let Some((rows, cols)) = leading_rows(in_shape, out_shape) {
        let out = &mut out[..cols];
        match sum_halves(rows) {
            None => sum_rows(x, cols, 0..rows, out),
            Some([first, second]) => {
                sum_rows(x, cols, first, out);
                with_second_half(cols, |scratch| {
                    sum_rows(x, cols, second, scratch);
                    add_halves(out, scratch);
                });
            }
        }
        scale_all(out, scale);
        return;
    }
    let split = (0..=MAX_RANK)
        .rev()
        .find(|&d| (0..d).all(kept))
        .unwrap_or(0);
    if (split..MAX_RANK).all(|d| out_shape[d] == 1) {
        let cols: usize = in_shape[split..].iter().product();
        for (o, row) in out.iter_mut().zip(x.chunks_exact(cols)) {
            *o = row.iter().fold(0.0f32, |acc, v| acc + v) * scale;
        }
        return;
    }
    let in_strides = crate::engine::plan::contiguous_strides(in_shape);
    let reduced: [usize; MAX_RANK] =
        std::array::from_fn(|d| if out_shape[d] == 1 { in_shape[d] } else { 1 });
    let count: usize = reduced.iter().product();
    for (o, slot) in out.iter_mut().enumerate() {
        let base = unravel(o, out_shape);
        let mut acc = 0.0f32;
        for r in 0..count {
            let off = unravel(r, &reduced);
            let idx: [usize; MAX_RANK] = std::array::from_fn(|d| base[d] + off[d]);
            acc += x[dot(&idx, &in_strides)];
        }
        *slot = acc * scale;
    }
}

/// Where a sum adds up whole leading rows (a bias gradient): the rows and their width.
pub(crate) fn leading_rows(
    in_shape: &[usize; MAX_RANK],
    out_shape: &[usize; MAX_RANK],
) -> Option<(usize, usize)> {
    let split = (0..=MAX_RANK)
        .find(|&d| (d..MAX_RANK).all(|d| out_shape[d] == in_shape[d]))
        .unwrap_or(MAX_RANK);
    (0..split).all(|d| out_shape[d] == 1).then(|| {
        let rows = in_shape[..split].iter().product();
        (rows, in_shape[split..].iter().product())
    })
}

/// The sum of rows `rows` of `x` (rows of `cols`), in index order, into `out`: a sum of
/// leading rows, or its half (`sum_halves`).
pub(crate) fn sum_rows(x: &[f32], cols: usize, rows: Range<usize>, out: &mut [f32]) {
    out.fill(0.0);
    simd::widest(|| {
        for row in x[rows.start * cols..rows.end * cols].chunks_exact(cols) {
            out.iter_mut().zip(row).for_each(|(o, v)| *o += v);
        }
    });
}

/// `out[i] *= scale`.
pub(crate) fn scale_all(out: &mut [f32], scale: f32) {
    simd::widest(|| out.iter_mut().for_each(|o| *o *= scale));
}

/// `BroadcastKernel::ExpandTo`: `out[i] = scale · x[broadcast index of i]`.
pub fn expand_to(
    x: &[f32],
    out: &mut [f32],
    out_shape: &[usize; MAX_RANK],
    x_strides: &[usize; MAX_RANK],
    scale: f32,
) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = scale * x[dot(&unravel(i, out_shape), x_strides)];
    }
}

/// Mean of `pos_weight * y * softplus(-z) + (1 - y) * softplus(z)` over the batch.
///
/// `softplus(±z) = max(±z, 0) + ln(1 + e^{−|z|})`, the logarithm shared by both signs
/// and taken by `approx`'s polynomials in SIMD lanes (libm's took 17 ns a logit), into
/// 16 running sums. The value is reported, never differentiated (the gradient is
/// `bce_with_logits_grad`), so that its last bits follow the instruction set (fused
/// multiply-adds where there are some) changes no weight.
pub fn bce_with_logits(logits: &[f32], targets: &[f32], pos_weight: f32) -> f32 {
    let mut sum = 0.0;
    bce_sum_for(simd::isa(), logits, targets, pos_weight, &mut sum);
    sum / logits.len() as f32
}

simd::multiversion!(bce_sum_for, bce_sum, (logits: &[f32], targets: &[f32], pos_weight: f32, sum: &mut f32));

#[inline(always)]
fn bce_sum<M: simd::MulAdd>(logits: &[f32], targets: &[f32], pos_weight: f32, sum: &mut f32) {
    const LANES: usize = 16;
    let term = |z: f32, y: f32| {
        let tail = super::approx::softplus_tail::<M>(z);
        pos_weight * y * ((-z).max(0.0) + tail) + (1.0 - y) * (z.max(0.0) + tail)
    };
    let mut sums = [0.0f32; LANES];
    let (zs, ys) = (logits.chunks_exact(LANES), targets.chunks_exact(LANES));
    let (z_rest, y_rest) = (zs.remainder(), ys.remainder());
    for (z, y) in zs.zip(ys) {
        for k in 0..LANES {
            sums[k] += term(z[k], y[k]);
        }
    }
    for (k, (&z, &y)) in z_rest.iter().zip(y_rest).enumerate() {
        sums[k] += term(z, y);
    }
    *sum = sums.iter().sum();
}

/// `LossKernel::BceWithLogitsGrad`: the gradient of the mean weighted cross-entropy w.r.t.
/// `logits`, times `dloss`.
pub fn bce_with_logits_grad(
    logits: &[f32],
    targets: &[f32],
    dloss: f32,
    out: &mut [f32],
    pos_weight: f32,
) {
    bce_with_logits_grad_scaled(
        logits,
        targets,
        dloss / logits.len() as f32,
        out,
        pos_weight,
    )
}

/// `bce_with_logits_grad` of some of the logits: `scale` is `dloss` over the count of
/// all of them.
pub fn bce_with_logits_grad_scaled(
    logits: &[f32],
    targets: &[f32],
    scale: f32,
    out: &mut [f32],
    pos_weight: f32,
) {
    for ((o, &z), &y) in out.iter_mut().zip(logits).zip(targets) {
        let p = sigmoid(z);
        *o = scale * (pos_weight * y * (p - 1.0) + (1.0 - y) * p);
    }
}

/// Inverted dropout: `out[i] = x[i] · scale` where `dropout_hash(seed, step, i) >=
/// threshold`, else 0 (`ops::dropout`; `step` is the optimizer's step count).
pub fn dropout(x: &[f32], out: &mut [f32], seed: u32, step: u32, threshold: u32, scale: f32) {
    dropout_from(x, out, seed, step, threshold, scale, 0)
}

/// `dropout` of elements `first..` of a tensor: `x` and `out` hold those elements, and
/// element `j` of them is masked as element `first + j` of the whole (a block of rows of
/// a split step).
pub fn dropout_from(
    x: &[f32],
    out: &mut [f32],
    seed: u32,
    step: u32,
    threshold: u32,
    scale: f32,
    first: usize,
) {
    let n = out.len();
    let keep = |i: usize, v: f32| {
        if dropout_hash(seed, step, (first + i) as u32) >= threshold {
            v * scale
        } else {
            0.0
        }
    };
    if n >= PARALLEL_ELEMENTS {
        let chunk = PARALLEL_ELEMENTS / 4;
        out.par_chunks_mut(chunk)
            .zip(x[..n].par_chunks(chunk))
            .enumerate()
            .for_each(|(c, (o, x))| {
                for (j, (o, &v)) in o.iter_mut().zip(x).enumerate() {
                    *o = keep(c * chunk + j, v);
                }
            });
    } else {
        for (i, (o, &v)) in out.iter_mut().zip(&x[..n]).enumerate() {
            *o = keep(i, v);
        }
    }
}

/// `out[b, :] = table[perm[step * batch + b], :]`.
pub fn gather_rows(
    table: &[f32],
    perm: &[u32],
    out: &mut [f32],
    step: usize,
    batch: usize,
    cols: usize,
) {
    let window = &perm[step * batch..(step + 1) * batch];
    for (i, (row, &src)) in out.chunks_exact_mut(cols).zip(window).enumerate() {
        // The rows are the shuffle's, scattered over a table larger than the caches:
        // ask for a row a few ahead while this one is copied, so the misses overlap.
        if let Some(ahead) = window
            .get(i + GATHER_AHEAD)
            .and_then(|&r| table.get(r as usize * cols..)?.get(..cols))
        {
            simd::prefetch(ahead);
        }
        let src = src as usize * cols;
        simd::copy_row(row, &table[src..src + cols]);
    }
}

/// Rows ahead of the copy that `gather_rows` prefetches.
const GATHER_AHEAD: usize = 8;

/// `out[r, :] = Σ dy[b, :]` over the batch rows `b` that gathered table row `r`, in
/// batch order.
pub fn scatter_add_rows(
    dy: &[f32],
    perm: &[u32],
    out: &mut [f32],
    step: usize,
    batch: usize,
    cols: usize,
) {
    out.fill(0.0);
    let window = &perm[step * batch..(step + 1) * batch];
    for (grad, &dst) in dy.chunks_exact(cols).zip(window) {
        let dst = dst as usize * cols;
        out[dst..dst + cols]
            .iter_mut()
            .zip(grad)
            .for_each(|(o, g)| *o += g);
    }
}

/// `Kernel::CopyCols`: copies `cols` columns of `x` into `out` (see the kernel's doc).
#[allow(clippy::too_many_arguments)]
pub fn copy_cols(
    x: &[f32],
    out: &mut [f32],
    rows: usize,
    cols: usize,
    src_cols: usize,
    src_start: usize,
    dst_cols: usize,
    dst_start: usize,
) {
    for r in 0..rows {
        let src = &x[r * src_cols + src_start..][..cols];
        out[r * dst_cols + dst_start..][..cols].copy_from_slice(src);
    }
}

/// One optimizer update over the packed buffers. `t` counts updates from 1.
pub fn optimize(
    optimizer: Optimizer,
    params: &mut [f32],
    grads: &[f32],
    state: &mut [f32],
    t: u32,
    lanes: Option<&Lanes>,
) {
    let len = params.len();
    // Each parameter is updated alone, so the lanes take ranges of them.
    let share = match lanes_for(len, lanes) {
        Some(lanes) => lane_share(len, lanes),
        None => len.max(1),
    };
    // The state is one value per parameter (SGD's momentum) or two (Adam's moments),
    // the second block after the first; it may be longer (sized for every plan).
    let (first, rest) = state.split_at_mut(len);
    let second = rest.len().min(len);
    let mut seconds = rest[..second].chunks_mut(share);
    let mut pieces: Vec<_> = params
        .chunks_mut(share)
        .zip(grads.chunks(share))
        .zip(first.chunks_mut(share))
        .map(|((p, g), m)| (p, g, m, seconds.next().unwrap_or(&mut [])))
        .collect();
    let update = |(p, g, m, v): &mut (&mut [f32], &[f32], &mut [f32], &mut [f32])| {
        update_params(optimizer, p, g, m, v, t)
    };
    match lanes {
        Some(lanes) if pieces.len() > 1 => {
            lanes.split_chunks(&mut pieces, 1, |_, piece| update(&mut piece[0]))
        }
        _ => pieces.iter_mut().for_each(update),
    }
}

/// One optimizer update of some parameters: `m` holds their first state value (SGD's
/// momentum, Adam's first moment), `v` their second (Adam's; SGD ignores it). Each
/// parameter is updated from its own values alone, so any division of the parameters
/// into pieces gives the same bits. `t` counts updates from 1.
pub fn update_params(
    optimizer: Optimizer,
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    t: u32,
) {
    match optimizer {
        Optimizer::Sgd { lr, momentum } => sgd(params, grads, m, lr, momentum),
        Optimizer::Adam {
            lr,
            beta1,
            beta2,
            eps,
        } => adam(params, grads, m, v, t, lr, beta1, beta2, eps, 0.0),
        Optimizer::AdamW {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
        } => adam(params, grads, m, v, t, lr, beta1, beta2, eps, weight_decay),
    }
}

/// SGD with momentum as PyTorch defines it; `buf` is the momentum buffer.
fn sgd(params: &mut [f32], grads: &[f32], buf: &mut [f32], lr: f32, momentum: f32) {
    assert!(grads.len() == params.len() && buf.len() == params.len());
    simd::widest(|| {
        for ((p, &g), buf) in params.iter_mut().zip(grads).zip(buf) {
            *buf = momentum * *buf + g;
            *p -= lr * *buf;
        }
    })
}

/// Adam as PyTorch defines it; `weight_decay` is AdamW's decoupled decay (0 for Adam).
/// `m` and `v` are the moment estimates of these parameters.
#[allow(clippy::too_many_arguments)]
fn adam(
    params: &mut [f32],
    grads: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    t: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
) {
    let correction1 = 1.0 - beta1.powi(t as i32);
    let correction2 = 1.0 - beta2.powi(t as i32);
    let len = params.len();
    assert!(grads.len() == len && m.len() == len && v.len() == len);
    simd::widest(|| {
        for (((p, &g), m), v) in params.iter_mut().zip(grads).zip(m).zip(v) {
            *m = beta1 * *m + (1.0 - beta1) * g;
            *v = beta2 * *v + (1.0 - beta2) * g * g;
            let m_hat = *m / correction1;
            let v_hat = *v / correction2;
            *p -= lr * (weight_decay * *p + m_hat / (v_hat.sqrt() + eps));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_tile_the_dimension_none_thinner_than_16() {
        for len in [1, 15, 16, 17, 31, 33, 47, 64, 100, 255, 256, 257, 1000] {
            for lanes in 1..=5 {
                let split = blocks(len, lanes);
                let spans: Vec<_> = (0..split.1).map(|p| block_range(p, split, len)).collect();
                assert_eq!(spans[0].start, 0);
                assert_eq!(spans.last().unwrap().end, len);
                for pair in spans.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start, "{len} on {lanes}");
                }
                assert!(split.1 <= lanes.max(1), "{len} on {lanes}: {split:?}");
                if split.1 > 1 {
                    assert!(spans.iter().all(|s| s.len() >= 16), "{len}: {spans:?}");
                }
            }
        }
    }
    use crate::engine::cpu::lanes::Lanes;

    /// A product split into blocks of its rows or columns (one per lane) gives the bits
    /// of the whole product on one thread. The CPU executor decides by timing whether to
    /// split, and machines have any number of cores, so anything else would make results
    /// vary from run to run and from machine to machine.
    #[test]
    fn split_products_are_bit_identical_to_whole_ones() {
        for count in [2, 3, 5] {
            split_products_check_on(&Lanes::with_count(count));
        }
    }

    /// So do the elementwise kernels and the optimizers, split into ranges.
    #[test]
    fn split_elementwise_work_and_updates_are_bit_identical_to_whole_ones() {
        let mut rng = crate::rng::Rng::new(11);
        let mut random =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.range(-2.0, 2.0) as f32).collect() };
        for count in [2, 3, 5] {
            let lanes = Lanes::with_count(count);
            for n in [1 << 16, 70_001, 100_003] {
                let (dy, y) = (random(n), random(n));
                for act in [Act::Relu, Act::Gelu, Act::Tanh] {
                    let mut whole = vec![f32::NAN; n];
                    act_grad(act, &dy, &y, &mut whole, None);
                    let mut split = vec![f32::NAN; n];
                    lanes.set_splitting(true);
                    act_grad(act, &dy, &y, &mut split, Some(&lanes));
                    lanes.set_splitting(false);
                    assert!(
                        same_bits(&whole, &split),
                        "act_grad {act} n={n}, {count} lanes"
                    );
                }
                let optimizers = [
                    Optimizer::Sgd {
                        lr: 0.1,
                        momentum: 0.9,
                    },
                    Optimizer::AdamW {
                        lr: 0.01,
                        beta1: 0.9,
                        beta2: 0.999,
                        eps: 1e-8,
                        weight_decay: 0.01,
                    },
                ];
                for optimizer in optimizers {
                    let (params, grads) = (random(n), random(n));
                    let state: Vec<f32> = random(2 * n + 3).iter().map(|x| x.abs()).collect();
                    let (mut p1, mut s1) = (params.clone(), state.clone());
                    optimize(optimizer, &mut p1, &grads, &mut s1, 7, None);
                    let (mut p2, mut s2) = (params, state);
                    lanes.set_splitting(true);
                    optimize(optimizer, &mut p2, &grads, &mut s2, 7, Some(&lanes));
                    lanes.set_splitting(false);
                    assert!(
                        same_bits(&p1, &p2) && same_bits(&s1, &s2),
                        "{optimizer:?} n={n}, {count} lanes"
                    );
                    assert!(!same_bits(&p1, &random(n)), "the update ran");
                }
            }
        }
    }

    /// A sum over rows taken half by half, as a split step's two lanes take it
    /// (`product_half`, `sum_rows`, then `add_halves`), gives the whole kernel's bits on
    /// one thread and on the pool, at batches whose halves are uneven; and both are the
    /// sum (an f64 reference).
    #[test]
    fn sums_taken_in_halves_give_the_whole_kernels_bits() {
        let mut rng = crate::rng::Rng::new(23);
        let mut random =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.range(-2.0, 2.0) as f32).collect() };
        assert!(sum_halves(31).is_none() && sum_halves(40).is_none());
        assert_eq!(sum_halves(100), Some([0..64, 64..100]));
        for (m, n, k) in [(58, 64, 256), (33, 17, 100), (64, 32, 32), (7, 300, 1537)] {
            let (a, b) = (random(k * m), random(k * n));
            let mut first = vec![f32::NAN; m * n];
            let mut second = vec![f32::NAN; m * n];
            product_half(&a, &b, &mut first, m, n, k, 0);
            product_half(&a, &b, &mut second, m, n, k, 1);
            add_halves(&mut first, &second);
            for parallel in [false, true] {
                let mut whole = vec![f32::NAN; m * n];
                matmul_on(
                    &a,
                    &b,
                    None,
                    &mut whole,
                    m,
                    n,
                    k,
                    true,
                    false,
                    Act::Identity,
                    parallel,
                );
                assert!(
                    same_bits(&first, &whole),
                    "{m}x{n}x{k}, parallel {parallel}"
                );
            }
            for (i, j) in [(0, 0), (m - 1, n - 1), (m / 2, n / 3)] {
                let exact: f64 = (0..k)
                    .map(|p| a[p * m + i] as f64 * b[p * n + j] as f64)
                    .sum();
                let err = (first[i * n + j] as f64 - exact).abs();
                assert!(err < 1e-5 * k as f64, "{m}x{n}x{k} ({i},{j}): {err}");
            }
        }
        for (rows, cols) in [(256, 64), (100, 3), (1537, 33)] {
            let x = random(rows * cols);
            let shape = |r: usize| crate::engine::plan::padded(&[r, cols], 1);
            let mut whole = vec![f32::NAN; cols];
            reduce_to(&x, &mut whole, &shape(rows), &shape(1), 0.5);
            let [h0, h1] = sum_halves(rows).unwrap();
            let (mut first, mut second) = (vec![f32::NAN; cols], vec![f32::NAN; cols]);
            sum_rows(&x, cols, h0, &mut first);
            sum_rows(&x, cols, h1, &mut second);
            add_halves(&mut first, &second);
            scale_all(&mut first, 0.5);
            assert!(same_bits(&first, &whole), "{rows} rows of {cols}");
            let exact: f64 = (0..rows).map(|r| x[r * cols] as f64).sum::<f64>() * 0.5;
            assert!(
                (whole[0] as f64 - exact).abs() < 1e-4,
                "{rows}: {} vs {exact}",
                whole[0]
            );
        }
    }

    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
    }

    fn split_products_check_on(lanes: &Lanes) {
        assert!(lanes.available());
        let mut rng = crate::rng::Rng::new(7);
        let shapes = [
            (256, 64, 197),
            (777, 16, 58),
            (1536, 64, 128),
            (64, 256, 256),
            (256, 256, 64),
            (1537, 257, 3),
            (33, 1031, 40),
            (256, 1, 32),
            (256, 32, 1),
            (58, 64, 4096),
            (64, 32, 2051),
            (512, 96, 1500),
        ];
        for (m, n, k) in shapes {
            for (ta, tb) in [(false, false), (false, true), (true, false)] {
                let a: Vec<f32> = (0..m * k).map(|_| rng.range(-1.0, 1.0) as f32).collect();
                let b: Vec<f32> = (0..k * n).map(|_| rng.range(-1.0, 1.0) as f32).collect();
                let bias: Vec<f32> = (0..n).map(|_| rng.range(-1.0, 1.0) as f32).collect();
                let mut whole = vec![f32::NAN; m * n];
                matmul_on(
                    &a,
                    &b,
                    Some(&bias),
                    &mut whole,
                    m,
                    n,
                    k,
                    ta,
                    tb,
                    Act::Tanh,
                    false,
                );
                let mut split = vec![f32::NAN; m * n];
                lanes.set_splitting(true);
                matmul_lanes(
                    &a,
                    &b,
                    Some(&bias),
                    &mut split,
                    m,
                    n,
                    k,
                    ta,
                    tb,
                    Act::Tanh,
                    lanes,
                );
                let count = lanes.count();
                lanes.set_splitting(false);
                let differ = whole
                    .iter()
                    .zip(&split)
                    .filter(|(w, s)| w.to_bits() != s.to_bits())
                    .count();
                assert_eq!(differ, 0, "{m}x{n}x{k} ta={ta} tb={tb}, {count} lanes: {differ} outputs differ between the split and the whole product");
            }
        }
    }

    /// The loss value against a plain f64 reference: logits from −60 to 60 (where a naive
    /// `ln(1 + e^z)` overflows), soft and hard targets, a positive-class weight, an
    /// awkward count.
    #[test]
    fn bce_with_logits_matches_an_f64_reference() {
        let mut rng = crate::rng::Rng::new(23);
        for (count, pos_weight) in [(1usize, 1.0f32), (257, 1.0), (1031, 3.7)] {
            let logits: Vec<f32> = (0..count).map(|_| rng.range(-60.0, 60.0) as f32).collect();
            let targets: Vec<f32> = (0..count)
                .map(|i| {
                    if i % 3 == 0 {
                        rng.uniform() as f32
                    } else {
                        (i % 2) as f32
                    }
                })
                .collect();
            let softplus = |z: f64| z.max(0.0) + (-z.abs()).exp().ln_1p();
            let want = logits
                .iter()
                .zip(&targets)
                .map(|(&z, &y)| {
                    let (z, y) = (z as f64, y as f64);
                    pos_weight as f64 * y * softplus(-z) + (1.0 - y) * softplus(z)
                })
                .sum::<f64>()
                / count as f64;
            let got = bce_with_logits(&logits, &targets, pos_weight) as f64;
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{count} logits, pos_weight {pos_weight}: {got} against {want}"
            );
        }
    }
}
