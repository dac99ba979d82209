// Peak-throughput kernels for `riskgrad bench peak`, in the manner of vkpeak and clpeak:
// long chains of fma on a few registers, and a copy and a read over a buffer far larger
// than the caches. They are not the engine's kernels: the bench builds these pipelines on
// a device of its own (src/cmd/bench/peak.rs), so the engine's pipeline table is unchanged.

struct PeakParams {
    // vec4 elements of `src` and `dst` (copy, read).
    n: u32,
    // fma iterations of each chain (fma).
    iters: u32,
    // Each chain steps x <- fma(x, b, c).
    b: f32,
    c: f32,
}

@group(0) @binding(0) var<uniform> params: PeakParams;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> sums: array<u32>;
@group(0) @binding(4) var<storage, read_write> accs: array<f32>;

// Four independent chains of vec4 (16 lanes) per invocation: enough independent work to
// hide the fma latency with many invocations in flight, few enough registers that a
// CPU-side Vulkan (lavapipe, 8 invocations per AVX2 register) does not spill. Chain j,
// lane l of invocation i starts at 1 + l/4 + j/32 + (i % 64)/64; the host's f64
// reference uses the same values. 2 flops per lane and iteration.
@compute @workgroup_size(256)
fn fma_f32(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let b = vec4<f32>(params.b);
    let c = vec4<f32>(params.c);
    let s = 1.0 + f32(i % 64u) / 64.0;
    let lanes = vec4<f32>(0.0, 0.25, 0.5, 0.75);
    var x0 = lanes + s;
    var x1 = lanes + (s + 1.0 / 32.0);
    var x2 = lanes + (s + 2.0 / 32.0);
    var x3 = lanes + (s + 3.0 / 32.0);
    for (var k = 0u; k < params.iters; k++) {
        x0 = fma(x0, b, c);
        x1 = fma(x1, b, c);
        x2 = fma(x2, b, c);
        x3 = fma(x3, b, c);
    }
    let t = (x0 + x1) + (x2 + x3);
    accs[i] = (t.x + t.y) + (t.z + t.w);
}

// dst = src, a grid-stride loop of 16-byte elements (read + write bandwidth).
@compute @workgroup_size(256)
fn copy_words(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let stride = groups.x * 256u;
    for (var i = gid.x; i < params.n; i += stride) {
        dst[i] = src[i];
    }
}

// Each invocation's wrapping u32 sum of its grid-stride share of src (read bandwidth;
// one word written per invocation).
@compute @workgroup_size(256)
fn read_words(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let stride = groups.x * 256u;
    var acc = vec4<u32>(0u);
    for (var i = gid.x; i < params.n; i += stride) {
        acc += src[i];
    }
    sums[gid.x] = (acc.x + acc.y) + (acc.z + acc.w);
}
