// Pooling over planes of h x w (one plane per (n, c)), and the batched transpose. One
// invocation per value written; windows are scanned row-major, as on the CPU, which
// fixes the argmax on ties (the first maximum wins) and the order of every sum.
//   max_pool_argmax  out[pl, i] = in-plane position of window i's first maximum, as f32
//   pool_gather      out[pl, i] = x[pl, y[pl, i]]                 (y: the argmax)
//   max_pool_grad    out[pl, q] = sum of x[pl, i] over windows i with y[pl, i] == q
//                    (x: dy), windows in order: a gather, no atomics
//   avg_pool         out[pl, i] = sum of window i / window size (padding counts as 0)
//   avg_pool_grad    out[pl, q] = sum of x[pl, i] / window size over windows covering q
//   transpose        out[b, j, i] = x[b, i, j]      (planes = batch, h = rows, w = cols)

struct PoolParams {
    n: u32,        // values written
    planes: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    stride_h: u32,
    stride_w: u32,
    pad_h: u32,
    pad_w: u32,
    off_x: u32,
    off_y: u32,
    off_out: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: PoolParams;
@group(0) @binding(1) var<storage, read> x: array<Store>;
@group(0) @binding(2) var<storage, read> y: array<Store>;
@group(0) @binding(3) var<storage, read_write> out: array<Store>;

// The input rows [lo, hi) window `o` covers along an axis of length `len`.
fn span(o: u32, k: u32, stride: u32, pad: u32, len: u32) -> vec2<u32> {
    let start = i32(o * stride) - i32(pad);
    let lo = u32(max(start, 0));
    let hi = u32(clamp(start + i32(k), 0, i32(len)));
    return vec2<u32>(lo, max(hi, lo));
}

// The windows [lo, hi) along an axis that cover input position `i`.
fn covering(i: u32, k: u32, stride: u32, pad: u32, out_len: u32) -> vec2<u32> {
    var lo = 0u;
    if i + pad + 1u > k {
        lo = (i + pad + 1u - k + stride - 1u) / stride;
    }
    let hi = min((i + pad) / stride + 1u, out_len);
    return vec2<u32>(lo, max(hi, lo));
}

@compute @workgroup_size(WG_FLAT)
fn max_pool_argmax(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if i >= p.n {
        return;
    }
    let out_plane = p.oh * p.ow;
    let base = p.off_x + (i / out_plane) * p.h * p.w;
    let r = i % out_plane;
    let hs = span(r / p.ow, p.kh, p.stride_h, p.pad_h, p.h);
    let ws = span(r % p.ow, p.kw, p.stride_w, p.pad_w, p.w);
    var best = hs.x * p.w + ws.x;
    var best_v = f32(x[base + best]);
    for (var ih = hs.x; ih < hs.y; ih++) {
        for (var iw = ws.x; iw < ws.y; iw++) {
            let q = ih * p.w + iw;
            let v = f32(x[base + q]);
            if v > best_v {
                best = q;
                best_v = v;
            }
        }
    }
    out[p.off_out + i] = Store(f32(best));
}

@compute @workgroup_size(WG_FLAT)
fn pool_gather(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if i >= p.n {
        return;
    }
    let out_plane = p.oh * p.ow;
    let q = u32(f32(y[p.off_y + i]));
    out[p.off_out + i] = x[p.off_x + (i / out_plane) * p.h * p.w + q];
}

@compute @workgroup_size(WG_FLAT)
fn max_pool_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j = flat_index(wg, nwg, lid);
    if j >= p.n {
        return;
    }
    let in_plane = p.h * p.w;
    let q = j % in_plane;
    let base = (j / in_plane) * p.oh * p.ow;
    let hs = covering(q / p.w, p.kh, p.stride_h, p.pad_h, p.oh);
    let ws = covering(q % p.w, p.kw, p.stride_w, p.pad_w, p.ow);
    let target_q = f32(q);
    var acc = 0.0;
    for (var oh = hs.x; oh < hs.y; oh++) {
        for (var ow = ws.x; ow < ws.y; ow++) {
            let i = base + oh * p.ow + ow;
            if f32(y[p.off_y + i]) == target_q {
                acc += f32(x[p.off_x + i]);
            }
        }
    }
    out[p.off_out + j] = Store(acc);
}

@compute @workgroup_size(WG_FLAT)
fn avg_pool(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if i >= p.n {
        return;
    }
    let out_plane = p.oh * p.ow;
    let base = p.off_x + (i / out_plane) * p.h * p.w;
    let r = i % out_plane;
    let hs = span(r / p.ow, p.kh, p.stride_h, p.pad_h, p.h);
    let ws = span(r % p.ow, p.kw, p.stride_w, p.pad_w, p.w);
    var acc = 0.0;
    for (var ih = hs.x; ih < hs.y; ih++) {
        for (var iw = ws.x; iw < ws.y; iw++) {
            acc += f32(x[base + ih * p.w + iw]);
        }
    }
    out[p.off_out + i] = Store(acc * (1.0 / f32(p.kh * p.kw)));
}

@compute @workgroup_size(WG_FLAT)
fn avg_pool_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let j = flat_index(wg, nwg, lid);
    if j >= p.n {
        return;
    }
    let in_plane = p.h * p.w;
    let q = j % in_plane;
    let base = p.off_x + (j / in_plane) * p.oh * p.ow;
    let hs = covering(q / p.w, p.kh, p.stride_h, p.pad_h, p.oh);
    let ws = covering(q % p.w, p.kw, p.stride_w, p.pad_w, p.ow);
    let inv = 1.0 / f32(p.kh * p.kw);
    var acc = 0.0;
    for (var oh = hs.x; oh < hs.y; oh++) {
        for (var ow = ws.x; ow < ws.y; ow++) {
            acc += f32(x[base + oh * p.ow + ow]) * inv;
        }
    }
    out[p.off_out + j] = Store(acc);
}

@compute @workgroup_size(WG_FLAT)
fn transpose(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    // One invocation per output element: writes are contiguous, reads strided.
    let i = flat_index(wg, nwg, lid);
    if i >= p.n {
        return;
    }
    let m = p.h * p.w;
    let b = i / m;
    let r = i % m;
    let j = r / p.h; // output row = input column
    let k = r % p.h; // output column = input row
    out[p.off_out + i] = x[p.off_x + b * m + k * p.w + j];
}
