// 2-D convolution over NCHW as implicit GEMM: the tiled matmul of matmul.wgsl (64x64
// output tile per 16x16 workgroup, 4x4 outputs per invocation in registers, k in steps
// of 16 staged as vec4 in workgroup memory), with operands gathered straight from the
// tensors instead of a materialized im2col matrix. MODE (a pipeline override, one of
// the CONV_* codes of common.wgsl) picks which product:
//
//   CONV_FORWARD      out[n,o,p]   rows o,  cols (n,p),       k (c,kh,kw)
//                     A = w [o, k] (a), B = im2col(x) (b); bias and activation
//                     applied as the tile is written
//   CONV_GRAD_INPUT   dx[n,c,q]    rows c,  cols (n,ih,iw),   k (o,kh,kw)
//                     A = w read as [c, (o,kh,kw)] (a), B = dz where the tap lines
//                     up with an output position, else 0 (b)
//   CONV_GRAD_WEIGHT  dw[s,o,k]    rows o,  cols (c,kh,kw),   k (n,p) over the
//                     images of split s: A = dz [o, (n,p)] (a), B = im2col(x) (b)
//
// Here p = oh*OW + ow is an output position and q = ih*W + iw an input position. Values
// outside the tensors (padding, partial tiles, taps between strided outputs) read as 0.
// Tiles are numbered row-major within a split, splits one after the other, and the
// grid may wrap into y.

struct ConvParams {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    o: u32,
    kh: u32,
    kw: u32,
    oh: u32,
    ow: u32,
    stride_h: u32,
    stride_w: u32,
    pad_h: u32,
    pad_w: u32,
    dil_h: u32,
    dil_w: u32,
    act: u32,
    off_a: u32,
    off_b: u32,
    off_bias: u32,
    off_out: u32,
    has_bias: u32,
    m: u32,         // rows of the product
    cols: u32,      // columns of the product
    tiles_n: u32,   // tiles along the columns
    tiles: u32,     // tiles per split
    splits: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

override MODE: u32 = CONV_FORWARD;

var<workgroup> a_tile: array<vec4<f32>, 256>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

// Input position of output position `o` through tap `t` along one axis, or -1 outside.
fn tap(o: u32, t: u32, stride: u32, pad: u32, dil: u32, len: u32) -> i32 {
    let i = i32(o * stride + t * dil) - i32(pad);
    if i < 0 || i >= i32(len) {
        return -1;
    }
    return i;
}

// x[n, c, ih, iw] for output position (oh, ow) through tap (kh, kw), 0 in the padding.
fn im2col(n: u32, c: u32, kh: u32, kw: u32, oh: u32, ow: u32) -> f32 {
    let ih = tap(oh, kh, p.stride_h, p.pad_h, p.dil_h, p.h);
    let iw = tap(ow, kw, p.stride_w, p.pad_w, p.dil_w, p.w);
    if ih < 0 || iw < 0 {
        return 0.0;
    }
    return b[p.off_b + ((n * p.c + c) * p.h + u32(ih)) * p.w + u32(iw)];
}

// The output position along one axis that input position `i` meets through tap `t`,
// or -1 if none does (between strided outputs, or past the ends).
fn untap(i: u32, t: u32, stride: u32, pad: u32, dil: u32, out_len: u32) -> i32 {
    let shifted = i32(i + pad) - i32(t * dil);
    if shifted < 0 || shifted % i32(stride) != 0 {
        return -1;
    }
    let o = shifted / i32(stride);
    if o >= i32(out_len) {
        return -1;
    }
    return o;
}

// A[row, kk] of the product, 0 outside it. `n0` is the first image of the split.
fn load_a(row: u32, kk: u32, kdim: u32, n0: u32) -> f32 {
    if row >= p.m || kk >= kdim {
        return 0.0;
    }
    let taps = p.kh * p.kw;
    switch MODE {
        case CONV_FORWARD: {
            return a[p.off_a + row * kdim + kk];
        }
        case CONV_GRAD_INPUT: {
            // w[o, c, kh, kw] with row = c, kk = (o, tap)
            let o = kk / taps;
            return a[p.off_a + (o * p.c + row) * taps + kk % taps];
        }
        default: {
            // dz[n, o, pos] with row = o, kk = (n - n0, pos)
            let plane = p.oh * p.ow;
            let n = n0 + kk / plane;
            return a[p.off_a + (n * p.o + row) * plane + kk % plane];
        }
    }
}

// B[kk, col] of the product, 0 outside it.
fn load_b(kk: u32, col: u32, kdim: u32, n0: u32) -> f32 {
    if kk >= kdim || col >= p.cols {
        return 0.0;
    }
    let taps = p.kh * p.kw;
    switch MODE {
        case CONV_FORWARD: {
            // kk = (c, kh, kw), col = (n, oh, ow)
            let plane = p.oh * p.ow;
            let n = col / plane;
            let pos = col % plane;
            let t = kk % taps;
            return im2col(n, kk / taps, t / p.kw, t % p.kw, pos / p.ow, pos % p.ow);
        }
        case CONV_GRAD_INPUT: {
            // kk = (o, kh, kw), col = (n, ih, iw): dz[n, o, oh, ow] where the tap lines up
            let plane = p.h * p.w;
            let n = col / plane;
            let q = col % plane;
            let o = kk / taps;
            let t = kk % taps;
            let oh = untap(q / p.w, t / p.kw, p.stride_h, p.pad_h, p.dil_h, p.oh);
            let ow = untap(q % p.w, t % p.kw, p.stride_w, p.pad_w, p.dil_w, p.ow);
            if oh < 0 || ow < 0 {
                return 0.0;
            }
            return b[p.off_b + ((n * p.o + o) * p.oh + u32(oh)) * p.ow + u32(ow)];
        }
        default: {
            // kk = (n - n0, oh, ow), col = (c, kh, kw)
            let plane = p.oh * p.ow;
            let n = n0 + kk / plane;
            let pos = kk % plane;
            let t = col % taps;
            return im2col(n, col / taps, t / p.kw, t % p.kw, pos / p.ow, pos % p.ow);
        }
    }
}

// Where product element (row, col) goes in `out`, for split `s`.
fn out_index(row: u32, col: u32, s: u32) -> u32 {
    switch MODE {
        case CONV_FORWARD: {
            let plane = p.oh * p.ow;
            return p.off_out + ((col / plane) * p.o + row) * plane + col % plane;
        }
        case CONV_GRAD_INPUT: {
            let plane = p.h * p.w;
            return p.off_out + ((col / plane) * p.c + row) * plane + col % plane;
        }
        default: {
            return p.off_out + (s * p.m + row) * p.cols + col;
        }
    }
}

@compute @workgroup_size(16, 16)
fn conv(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let flat = wg.y * nwg.x + wg.x;
    if flat >= p.tiles * p.splits {
        return; // the whole workgroup: barriers stay uniform
    }
    let s = flat / p.tiles;
    let tile = flat % p.tiles;
    let row0 = (tile / p.tiles_n) * TILE;
    let col0 = (tile % p.tiles_n) * TILE;

    // The length of the sum, and for CONV_GRAD_WEIGHT the images of this split.
    var kdim: u32;
    var n0 = 0u;
    switch MODE {
        case CONV_FORWARD: { kdim = p.c * p.kh * p.kw; }
        case CONV_GRAD_INPUT: { kdim = p.o * p.kh * p.kw; }
        default: {
            n0 = s * p.n / p.splits;
            kdim = ((s + 1u) * p.n / p.splits - n0) * p.oh * p.ow;
        }
    }

    var acc: array<vec4<f32>, 4>; // acc[i][j]: product[row0 + 4 lid.y + i, col0 + 4 lid.x + j]
    for (var k0 = 0u; k0 < kdim; k0 += BK) {
        for (var r = 0u; r < 4u; r++) {
            let e = li + r * 256u;
            // A: consecutive invocations walk k; B: consecutive invocations walk the
            // columns, except in CONV_GRAD_WEIGHT where k = (n, p) is the contiguous axis of x.
            let row = e / BK;
            let ka = e % BK;
            a_tile[ka * VEC_PER_ROW + row / 4u][row % 4u] = load_a(row0 + row, k0 + ka, kdim, n0);
            var kb: u32;
            var col: u32;
            if MODE == CONV_GRAD_WEIGHT {
                col = e / BK;
                kb = e % BK;
            } else {
                kb = e / TILE;
                col = e % TILE;
            }
            b_tile[kb * VEC_PER_ROW + col / 4u][col % 4u] = load_b(k0 + kb, col0 + col, kdim, n0);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let av = a_tile[kk * VEC_PER_ROW + lid.y];
            let bv = b_tile[kk * VEC_PER_ROW + lid.x];
            acc[0] += av.x * bv;
            acc[1] += av.y * bv;
            acc[2] += av.z * bv;
            acc[3] += av.w * bv;
        }
        workgroupBarrier();
    }

    let col_base = col0 + 4u * lid.x;
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + 4u * lid.y + i;
        if row >= p.m {
            break;
        }
        var b0 = 0.0;
        if MODE == CONV_FORWARD && p.has_bias != 0u {
            b0 = bias[p.off_bias + row];
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col_base + j;
            if col < p.cols {
                var v = acc[i][j];
                if MODE == CONV_FORWARD {
                    v = activate(p.act, v + b0);
                }
                out[out_index(row, col, s)] = v;
            }
        }
    }
}
