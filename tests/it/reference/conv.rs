//! Convolution in f64, written as the definitions read: one loop per index, no im2col,
//! no tiling, no reordering. The kernels of both executors are held against these.

use riskgrad::engine::graph::{ConvGeom, ConvOp, ProductInputs};

/// The value of a node of `op` with inputs `x` of shapes `in_shapes` and output `shape`.
pub fn evaluate(op: &ConvOp, x: &[&Vec<f64>], in_shapes: &[&[usize]], shape: &[usize]) -> Vec<f64> {
    match *op {
        ConvOp::Conv2d { geom, act } => {
            let at = ProductInputs::of(x.len());
            let bias = at.bias.map(|k| x[k].as_slice());
            let (xs, ws) = (in_shapes[at.a], in_shapes[at.b]);
            let y = conv2d(x[at.a], x[at.b], bias, xs, ws, shape, &geom);
            y.into_iter().map(|z| act.eval(z)).collect()
        }
        ConvOp::Conv2dGradInput { geom } => {
            conv2d_grad_input(x[0], x[1], shape, in_shapes[1], in_shapes[0], &geom)
        }
        ConvOp::Conv2dGradWeight {
            geom,
            kernel,
            splits,
        } => {
            let xs = in_shapes[1];
            let ws = [in_shapes[0][1], xs[1], kernel[0], kernel[1]];
            conv2d_grad_weight(x[0], x[1], xs, &ws, in_shapes[0], &geom, splits)
        }
        ConvOp::ConvGradBias => {
            let s = in_shapes[0];
            conv_grad_bias(x[0], s[0], s[1], s[2..].iter().product())
        }
    }
}

/// The input position `o * stride - padding + tap * dilation`, if it lies inside `len`.
pub(super) fn tap(
    o: usize,
    t: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    len: usize,
) -> Option<usize> {
    let i = (o * stride + t * dilation) as isize - padding as isize;
    (0..len as isize).contains(&i).then_some(i as usize)
}

/// Calls `visit(n, x index, w index, y index)` for every product `x[n,c,ih,iw] ·
/// w[o,c,kh,kw]` that contributes to `y[n,o,oh,ow]`, with `ih = oh·sh − ph + kh·dh`
/// (likewise iw), skipping positions outside x (they read 0). Loops in the order
/// n, o, oh, ow, c, kh, kw. `xs` is `[N,C,H,W]`, `ws` `[O,C,KH,KW]`, `ys` `[N,O,OH,OW]`.
fn each_product(
    xs: &[usize],
    ws: &[usize],
    ys: &[usize],
    g: &ConvGeom,
    mut visit: impl FnMut(usize, usize, usize, usize),
) {
    let (n, c, h, wd) = (xs[0], xs[1], xs[2], xs[3]);
    let (o, kh, kw) = (ws[0], ws[2], ws[3]);
    let (oh, ow) = (ys[2], ys[3]);
    for ni in 0..n {
        for oi in 0..o {
            for yh in 0..oh {
                for yw in 0..ow {
                    let yi = ((ni * o + oi) * oh + yh) * ow + yw;
                    for ci in 0..c {
                        for th in 0..kh {
                            for tw in 0..kw {
                                let (Some(ih), Some(iw)) = (
                                    tap(yh, th, g.stride[0], g.padding[0], g.dilation[0], h),
                                    tap(yw, tw, g.stride[1], g.padding[1], g.dilation[1], wd),
                                ) else {
                                    continue;
                                };
                                visit(
                                    ni,
                                    ((ni * c + ci) * h + ih) * wd + iw,
                                    ((oi * c + ci) * kh + th) * kw + tw,
                                    yi,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `y[n,o,oh,ow] = bias[o] + Σ_c Σ_kh Σ_kw x[n,c,ih,iw] · w[o,c,kh,kw]` (see
/// `each_product`). No activation.
pub fn conv2d(
    x: &[f64],
    w: &[f64],
    bias: Option<&[f64]>,
    xs: &[usize],
    ws: &[usize],
    ys: &[usize],
    g: &ConvGeom,
) -> Vec<f64> {
    let (o, plane) = (ys[1], ys[2] * ys[3]);
    let mut y: Vec<f64> = (0..ys[0] * o * plane)
        .map(|i| bias.map_or(0.0, |b| b[i / plane % o]))
        .collect();
    each_product(xs, ws, ys, g, |_, xi, wi, yi| y[yi] += x[xi] * w[wi]);
    y
}

/// The adjoint of `conv2d` in x: every product `x[n,c,ih,iw] · w[o,c,kh,kw]` that made
/// `y[n,o,oh,ow]` sends `dy[n,o,oh,ow] · w[o,c,kh,kw]` back to `x[n,c,ih,iw]`.
pub fn conv2d_grad_input(
    dy: &[f64],
    w: &[f64],
    xs: &[usize],
    ws: &[usize],
    ys: &[usize],
    g: &ConvGeom,
) -> Vec<f64> {
    let mut dx = vec![0.0; xs.iter().product()];
    each_product(xs, ws, ys, g, |_, xi, wi, yi| dx[xi] += dy[yi] * w[wi]);
    dx
}

/// The adjoint of `conv2d` in w, in `splits` parts: part `s` sums over the images
/// `[s·N/S, (s+1)·N/S)`. Output `[splits, O, C·KH·KW]`.
pub fn conv2d_grad_weight(
    dy: &[f64],
    x: &[f64],
    xs: &[usize],
    ws: &[usize],
    ys: &[usize],
    g: &ConvGeom,
    splits: usize,
) -> Vec<f64> {
    let (n, per_split) = (xs[0], ws.iter().product::<usize>());
    let split_of = |ni: usize| {
        (0..splits)
            .find(|&s| ni < (s + 1) * n / splits)
            .expect("every image is in a part")
    };
    let mut dw = vec![0.0; splits * per_split];
    each_product(xs, ws, ys, g, |ni, xi, wi, yi| {
        dw[split_of(ni) * per_split + wi] += dy[yi] * x[xi]
    });
    dw
}

/// `db[o] = Σ_n Σ_p dy[n,o,p]` over `[N,O,P]`.
pub fn conv_grad_bias(dy: &[f64], n: usize, o: usize, plane: usize) -> Vec<f64> {
    let mut db = vec![0.0; o];
    for ni in 0..n {
        for (oi, acc) in db.iter_mut().enumerate() {
            for p in 0..plane {
                *acc += dy[(ni * o + oi) * plane + p];
            }
        }
    }
    db
}
