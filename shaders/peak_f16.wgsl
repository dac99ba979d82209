// The f16 fma chains of `riskgrad bench peak` (see peak.wgsl), built only on adapters
// with SHADER_F16: a module that enables f16 fails to build anywhere else. The chains
// are those of fma_f32 in f16; the sum is written as f32 (no 16-bit storage needed).

enable f16;

struct PeakParams {
    n: u32,
    iters: u32,
    b: f32,
    c: f32,
}

@group(0) @binding(0) var<uniform> params: PeakParams;
@group(0) @binding(4) var<storage, read_write> accs: array<f32>;

@compute @workgroup_size(256)
fn fma_f16(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let b = vec4<f16>(f16(params.b));
    let c = vec4<f16>(f16(params.c));
    let s = 1.0h + f16(i % 64u) / 64.0h;
    let lanes = vec4<f16>(0.0h, 0.25h, 0.5h, 0.75h);
    var x0 = lanes + s;
    var x1 = lanes + (s + 1.0h / 32.0h);
    var x2 = lanes + (s + 2.0h / 32.0h);
    var x3 = lanes + (s + 3.0h / 32.0h);
    for (var k = 0u; k < params.iters; k++) {
        x0 = fma(x0, b, c);
        x1 = fma(x1, b, c);
        x2 = fma(x2, b, c);
        x3 = fma(x3, b, c);
    }
    let t = vec4<f32>((x0 + x1) + (x2 + x3));
    accs[i] = (t.x + t.y) + (t.z + t.w);
}
