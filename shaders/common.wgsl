// Definitions shared by every kernel family. This file is prepended to each kernel
// file when it is compiled (see src/engine/gpu/shaders.rs); it holds no bindings and
// no entry points of its own. The constants the host uses too have a Rust twin of the
// same name (src/engine/gpu/kernel_params.rs, `Act::code`, `BinaryOp::code`), checked
// equal by tests/it/kernel_params.rs. The activations' formulas are those of
// `Act::eval` / `Act::slope` (src/engine/graph/act.rs).

// Threads per workgroup of the fixed sum tree (its leaves: workgroup_tree_sum, and
// the sums that run over a workgroup of them).
const WG: u32 = 256u;

// Threads per workgroup of the per-element kernels (one invocation per output, indexed
// by flat_index): the device's choice, set for every pipeline it builds
// (src/engine/gpu/flat_width.rs); 256 unless the tuner found another width faster
// there. Any width gives the same bits.
override WG_FLAT: u32 = 256u;

// Threads per workgroup of the sums with one invocation per output (reduce.wgsl's
// reduce_to_serial and reduce_to_tree_order): a bias gradient has a few dozen to a few
// hundred outputs, which in workgroups of WG were one workgroup, so one core of a
// CPU adapter and one multiprocessor of a GPU. The device's choice, as WG_FLAT's; 32 (a
// warp, half a wavefront, four 256-bit registers of lavapipe's lanes) unless the tuner
// found another width faster there. Any width gives the same bits (each output is one
// invocation's sum).
override WG_SUMS: u32 = 32u;

// The tiled matmul and convolution: a 16x16 workgroup computes a TILE x TILE block of
// the output, walking k in steps of BK staged in workgroup memory as vec4.
const TILE: u32 = 64u;
const BK: u32 = 16u;
const VEC_PER_ROW: u32 = 16u; // TILE / 4

// Activation codes (`Act::code`).
const ACT_IDENTITY: u32 = 0u;
const ACT_RELU: u32 = 1u;
const ACT_SIGMOID: u32 = 2u;
const ACT_TANH: u32 = 3u;
const ACT_LEAKY_RELU: u32 = 4u;
const ACT_GELU: u32 = 5u;
const ACT_SILU: u32 = 6u;
const ACT_SIN: u32 = 7u;

// Binary operation codes (`BinaryOp::code`).
const BINARY_ADD: u32 = 0u;
const BINARY_SUB: u32 = 1u;
const BINARY_MUL: u32 = 2u;
const BINARY_DIV: u32 = 3u;

// matmul's `has_bias`: none, a row added to every row, or a whole added matrix.
const BIAS_NONE: u32 = 0u;
const BIAS_ROW: u32 = 1u;
const BIAS_MATRIX: u32 = 2u;

// rnn's `gh_mode`: no recurrent product, one row broadcast to every row, or a matrix.
const GH_ABSENT: u32 = 0u;
const GH_BROADCAST: u32 = 1u;
const GH_MATRIX: u32 = 2u;

// conv's MODE (a pipeline override): which product of the convolution it computes.
const CONV_FORWARD: u32 = 0u;
const CONV_GRAD_INPUT: u32 = 1u;
const CONV_GRAD_WEIGHT: u32 = 2u;

// The row program's operations (`RowOp::kind`, shaders/rows.wgsl) and where a shared
// operand is read from (`RowOp::*_src`).
const ROW_GATHER: u32 = 0u;
const ROW_MATMUL: u32 = 1u;
const ROW_UNARY: u32 = 2u;
const ROW_ACT_GRAD: u32 = 3u;
const ROW_BINARY: u32 = 4u;
const ROW_BCE_GRAD: u32 = 5u;
const ROW_DROPOUT: u32 = 6u;
const SRC_ARENA: u32 = 0u;
const SRC_PARAMS: u32 = 1u;
// Batch rows per workgroup of the row program.
const RP_ROWS: u32 = 16u;

// The record of the kernels driven by the step counters: gather.wgsl's, and
// state.wgsl's accumulate and collect.
struct GatherParams {
    n: u32,         // elements written
    batch: u32,
    cols: u32,
    off_src: u32,
    off_perm: u32,
    off_step: u32,
    off_out: u32,
    seed: u32,      // dropout only
    threshold: u32,
    scale: f32,
    first_row: u32, // gather_rows and scatter_add_rows: the table rows this launch
    end_row: u32,   // binds (src or out starts at row first_row), end exclusive
}

// The flat invocation index of a 1-D kernel dispatched over a 2-D grid of workgroups
// (the grid wraps into y when more than 65535 groups are needed).
fn flat_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return flat_index_of(wg, nwg, lid, WG_FLAT);
}

// flat_index for a kernel whose workgroups are `size` invocations, not WG_FLAT.
fn flat_index_of(wg: vec3<u32>, nwg: vec3<u32>, lid: u32, size: u32) -> u32 {
    return (wg.y * nwg.x + wg.x) * size + lid;
}

// A 32-bit integer mix (Wellons' lowbias32, a murmur3-style finalizer): a bijection
// whose output bits each depend on every input bit.
fn mix32(x: u32) -> u32 {
    var h = x;
    h ^= h >> 16u;
    h *= 0x7feb352du;
    h ^= h >> 15u;
    h *= 0x846ca68bu;
    h ^= h >> 16u;
    return h;
}

// The mask word of element i of a dropout with `seed` at optimizer step `step`; the
// twin of `graph::dropout_hash` (src/engine/graph/op.rs), checked equal bit for bit.
fn dropout_hash(seed: u32, step: u32, i: u32) -> u32 {
    return mix32(mix32(mix32(seed) ^ step) ^ i);
}

// Written with one exp of a non-positive number, as the CPU kernel is: it never
// overflows and never gives inf/inf.
fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        return 1.0 / (1.0 + exp(-z));
    }
    let e = exp(z);
    return e / (1.0 + e);
}

// tanh without the driver's builtin: some implementations compute (e^2x-1)/(e^2x+1),
// which is NaN for large |x| and loses all relative precision near 0. A short odd
// polynomial covers |x| < 0.3 (error < 1e-7 relative); beyond it exp(-2|x|) <= 0.55,
// so 1 - t has no cancellation.
fn tanh_stable(x: f32) -> f32 {
    let a = abs(x);
    if a < 0.3 {
        let x2 = x * x;
        return x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0)))));
    }
    let t = exp(-2.0 * a);
    return sign(x) * (1.0 - t) / (1.0 + t);
}

// GELU's tanh argument sqrt(2/pi) * (x + 0.044715 x^3).
fn gelu_inner(x: f32) -> f32 {
    return 0.7978845608028654 * (x + 0.044715 * x * x * x);
}

fn activate(act: u32, z: f32) -> f32 {
    switch act {
        case ACT_RELU: { return max(z, 0.0); }
        case ACT_SIGMOID: { return sigmoid(z); }
        case ACT_TANH: { return tanh_stable(z); }
        case ACT_LEAKY_RELU: { return select(0.01 * z, z, z > 0.0); }
        case ACT_GELU: { return 0.5 * z * (1.0 + tanh_stable(gelu_inner(z))); }
        case ACT_SILU: { return z * sigmoid(z); }
        case ACT_SIN: { return sin(z); }
        default: { return z; }
    }
}

// act'(x) in terms of v: the output y = act(x) for codes 0-4, the input x itself for
// gelu, silu and sin (`Act::slope_from`).
fn activation_slope(act: u32, v: f32) -> f32 {
    switch act {
        case ACT_RELU: { return select(0.0, 1.0, v > 0.0); }
        case ACT_SIGMOID: { return v * (1.0 - v); }
        case ACT_TANH: { return 1.0 - v * v; }
        case ACT_LEAKY_RELU: { return select(0.01, 1.0, v > 0.0); }
        case ACT_GELU: {
            let t = tanh_stable(gelu_inner(v));
            let du = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * v * v);
            return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du;
        }
        case ACT_SILU: {
            let s = sigmoid(v);
            return s * (1.0 + v * (1.0 - s));
        }
        case ACT_SIN: { return cos(v); }
        default: { return 1.0; }
    }
}

// log(1 + exp(z)) without overflow. log(1 + u) for tiny u is off by at most u's
// rounding (< 1e-7 absolute), well inside the loss tolerance.
fn softplus(z: f32) -> f32 {
    return max(z, 0.0) + log(1.0 + exp(-abs(z)));
}

// One value from each of a workgroup's WG invocations, summed in a fixed pairwise tree,
// so the sum repeats exactly run to run. Every invocation must call it, from control
// flow uniform across the workgroup (it has barriers); each gets the sum back.
var<workgroup> tree_partial: array<f32, WG>;

fn workgroup_tree_sum(lid: u32, value: f32) -> f32 {
    tree_partial[lid] = value;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            tree_partial[lid] += tree_partial[lid + s];
        }
        workgroupBarrier();
    }
    return tree_partial[0];
}
