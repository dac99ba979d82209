// The convolution kernels' shared part: 2-D convolution over NCHW as implicit GEMM, the
// product's operands gathered straight from the tensors instead of a materialized
// im2col matrix. Every convolution variant's module is common.wgsl, the variant's
// `const` lines, this file, then its kernel (conv.wgsl, the tiled default, or
// conv_rows.wgsl): see `CONV_VARIANTS` in src/engine/gpu/shaders.rs. MODE (a pipeline
// override, one of the CONV_* codes of common.wgsl) picks which product:
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
// Tiles (each variant's own size) are numbered row-major within a split, splits one
// after the other, and the grid may wrap into y. Every variant sums each output over k
// in index order with one multiply-add per k, so all give the default's bits.

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
@group(0) @binding(1) var<storage, read> a: array<Store>;
@group(0) @binding(2) var<storage, read> b: array<Store>;
@group(0) @binding(3) var<storage, read> bias: array<Store>;
@group(0) @binding(4) var<storage, read_write> out: array<Store>;

override MODE: u32 = CONV_FORWARD;

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
    return f32(b[p.off_b + ((n * p.c + c) * p.h + u32(ih)) * p.w + u32(iw)]);
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
            return f32(a[p.off_a + row * kdim + kk]);
        }
        case CONV_GRAD_INPUT: {
            // w[o, c, kh, kw] with row = c, kk = (o, tap)
            let o = kk / taps;
            return f32(a[p.off_a + (o * p.c + row) * taps + kk % taps]);
        }
        default: {
            // dz[n, o, pos] with row = o, kk = (n - n0, pos)
            let plane = p.oh * p.ow;
            let n = n0 + kk / plane;
            return f32(a[p.off_a + (n * p.o + row) * plane + kk % plane]);
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
            return f32(b[p.off_b + ((n * p.o + o) * p.oh + u32(oh)) * p.ow + u32(ow)]);
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

// The product element (row, col) of split `s` written to `out`, in CONV_FORWARD with
// the bias and activation; nothing outside the product.
fn store(row: u32, col: u32, s: u32, acc: f32) {
    if row >= p.m || col >= p.cols {
        return;
    }
    var v = acc;
    if MODE == CONV_FORWARD {
        var b0 = 0.0;
        if p.has_bias != 0u {
            b0 = f32(bias[p.off_bias + row]);
        }
        v = activate(p.act, v + b0);
    }
    out[out_index(row, col, s)] = Store(v);
}

// The length of split `s`'s sum, and (CONV_GRAD_WEIGHT) the first image it covers.
struct Span {
    kdim: u32,
    n0: u32,
}

fn span_of(s: u32) -> Span {
    switch MODE {
        case CONV_FORWARD: { return Span(p.c * p.kh * p.kw, 0u); }
        case CONV_GRAD_INPUT: { return Span(p.o * p.kh * p.kw, 0u); }
        default: {
            let n0 = s * p.n / p.splits;
            return Span(((s + 1u) * p.n / p.splits - n0) * p.oh * p.ow, n0);
        }
    }
}
