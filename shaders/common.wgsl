// Numeric helpers shared by several kernel families. This file is prepended to
// most kernel files when they are compiled (see
// src/gpu/shaders.rs); it holds no bindings and no entry points of its own.
//
// Activation codes follow `Act::code`: 0 identity, 1 relu, 2 sigmoid, 3 tanh,
// 4 leaky_relu, 5 gelu, 6 silu. The formulas are those of `Act::eval` / `Act::slope`
// (src/engine/graph/act.rs).

// Threads per workgroup of every 1-D kernel.
const WG: u32 = 256u;

// The flat invocation index of a 1-D kernel dispatched over a 2-D grid of workgroups
// (the grid wraps into y when more than 65535 groups are needed).
fn flat_index(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wg.y * nwg.x + wg.x) * WG + lid;
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
        case 1u: { return max(z, 0.0); }
        case 2u: { return sigmoid(z); }
        case 3u: { return tanh_stable(z); }
        case 4u: { return select(0.01 * z, z, z > 0.0); }
        case 5u: { return 0.5 * z * (1.0 + tanh_stable(gelu_inner(z))); }
        case 6u: { return z * sigmoid(z); }
        default: { return z; }
    }
}

// act'(x) in terms of v: the output y = act(x) for codes 0-4, the input x itself for
// gelu and silu (`Act::slope_from`).
fn activation_slope(act: u32, v: f32) -> f32 {
    switch act {
        case 1u: { return select(0.0, 1.0, v > 0.0); }
        case 2u: { return v * (1.0 - v); }
        case 3u: { return 1.0 - v * v; }
        case 4u: { return select(0.01, 1.0, v > 0.0); }
        case 5u: {
            let t = tanh_stable(gelu_inner(v));
            let du = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * v * v);
            return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du;
        }
        case 6u: {
            let s = sigmoid(v);
            return s * (1.0 + v * (1.0 - s));
        }
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
