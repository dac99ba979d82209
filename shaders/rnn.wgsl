// Fused recurrent cells: all the pointwise work of one time step in one launch, and all
// the backward pointwise work of one step in another. One invocation per (row, hidden
// unit); the gate pre-activations come from the tiled matmul (matmul.wgsl).
//
// Equations (PyTorch's, both biases inside the products; see src/graph/rnn.rs):
//   LSTM (i, f, g, o):  z = gx + gh;  c' = σ(z_f) c + σ(z_i) tanh(z_g);  h' = σ(z_o) tanh(c')
//   GRU  (r, z, n):     r = σ(gx_r + gh_r);  z = σ(gx_z + gh_z);  n = tanh(gx_n + r gh_n)
//                       h' = (1 − z) n + z h
//
// Packed outputs (planes of `rows` rows, back to back; src/graph/rnn.rs `Packing`):
//   lstm_cell       h [H] | c [H] | i f g o [4H] | tanh(c) [H]
//   gru_cell        h [H] | r z n gh_n [4H]
//   lstm_cell_grad  dz [4H] | dc_prev [H]
//   gru_cell_grad   dgx [3H] | dgh [3H] | dh_prev [H]
// Operands: gx is read at columns [gx_col, gx_col + G) of a matrix with gx_stride words
// per row (every step's input product in one matmul output); gh is absent (gh_mode
// GH_ABSENT), a bias broadcast to every row (GH_BROADCAST) or a [rows, G] matrix
// (GH_MATRIX); dh0 and dh1 are windows of wider matrices, summed; absent operands
// read as zeros. Offsets are in words from the start of each bound window.

struct RnnParams {
    rows: u32,
    hidden: u32,
    gx_stride: u32,
    gx_col: u32,
    off_gx: u32,
    gh_mode: u32,
    off_gh: u32,
    has_prev: u32,
    off_prev: u32,
    off_out: u32,
    has_dh0: u32,
    off_dh0: u32,
    dh0_stride: u32,
    dh0_col: u32,
    has_dh1: u32,
    off_dh1: u32,
    dh1_stride: u32,
    dh1_col: u32,
    has_dc: u32,
    off_dc: u32,
    off_state: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: RnnParams;

// The hidden width the pipeline was built for, or 0 for a pipeline that reads it from
// the record (src/engine/ops/rnn.rs, `cell_pipes!`). A constant width folds the
// kernels' index arithmetic: on lavapipe the LSTM cells ran twice as fast with it.
override HIDDEN: u32 = 0u;

fn hidden_units() -> u32 {
    if HIDDEN != 0u {
        return HIDDEN;
    }
    return p.hidden;
}

// Forward: in1 = gx, in2 = gh, in3 = prev. Backward: in1 = dh0, in2 = dh1, in3 = dc,
// in4 = the cell's packed output, in5 = prev.
@group(0) @binding(1) var<storage, read> in1: array<Store>;
@group(0) @binding(2) var<storage, read> in2: array<Store>;
@group(0) @binding(3) var<storage, read> in3: array<Store>;
@group(0) @binding(4) var<storage, read> in4: array<Store>;
@group(0) @binding(5) var<storage, read> in5: array<Store>;
@group(0) @binding(6) var<storage, read_write> out: array<Store>;

// Gate block k of the recurrent product for (row r, unit j), zero when absent.
fn gh_at(r: u32, k: u32, j: u32, width: u32) -> f32 {
    let col = k * hidden_units() + j;
    switch p.gh_mode {
        case GH_BROADCAST: { return f32(in2[p.off_gh + col]); }
        case GH_MATRIX: { return f32(in2[p.off_gh + r * width + col]); }
        default: { return 0.0; }
    }
}

// Gate block k of the input product.
fn gx_at(r: u32, k: u32, j: u32) -> f32 {
    return f32(in1[p.off_gx + r * p.gx_stride + p.gx_col + k * hidden_units() + j]);
}

// The previous state (c for the LSTM, h for the GRU), zero when absent: in3 in the
// forward kernels, in5 in the backward ones.
fn prev_fwd(i: u32) -> f32 {
    if p.has_prev != 0u {
        return f32(in3[p.off_prev + i]);
    }
    return 0.0;
}

fn prev_bwd(i: u32) -> f32 {
    if p.has_prev != 0u {
        return f32(in5[p.off_prev + i]);
    }
    return 0.0;
}

// The summed gradient of h for (row r, unit j).
fn dh_at(r: u32, j: u32) -> f32 {
    var d = 0.0;
    if p.has_dh0 != 0u {
        d += f32(in1[p.off_dh0 + r * p.dh0_stride + p.dh0_col + j]);
    }
    if p.has_dh1 != 0u {
        d += f32(in2[p.off_dh1 + r * p.dh1_stride + p.dh1_col + j]);
    }
    return d;
}

@compute @workgroup_size(WG_FLAT)
fn lstm_cell(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    let hh = hidden_units();
    let plane = p.rows * hh;
    if i >= plane {
        return;
    }
    let r = i / hh;
    let j = i % hh;
    let w = 4u * hh;
    let gi = sigmoid(gx_at(r, 0u, j) + gh_at(r, 0u, j, w));
    let gf = sigmoid(gx_at(r, 1u, j) + gh_at(r, 1u, j, w));
    let gg = tanh_stable(gx_at(r, 2u, j) + gh_at(r, 2u, j, w));
    let go = sigmoid(gx_at(r, 3u, j) + gh_at(r, 3u, j, w));
    let c = gf * prev_fwd(i) + gi * gg;
    let tc = tanh_stable(c);
    out[p.off_out + i] = Store(go * tc);
    out[p.off_out + plane + i] = Store(c);
    out[p.off_out + 6u * plane + i] = Store(tc);
    let saved = p.off_out + 2u * plane + r * w + j;
    out[saved] = Store(gi);
    out[saved + hh] = Store(gf);
    out[saved + 2u * hh] = Store(gg);
    out[saved + 3u * hh] = Store(go);
}

@compute @workgroup_size(WG_FLAT)
fn gru_cell(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    let hh = hidden_units();
    let plane = p.rows * hh;
    if i >= plane {
        return;
    }
    let r = i / hh;
    let j = i % hh;
    let w = 3u * hh;
    let gr = sigmoid(gx_at(r, 0u, j) + gh_at(r, 0u, j, w));
    let gz = sigmoid(gx_at(r, 1u, j) + gh_at(r, 1u, j, w));
    let bn = gh_at(r, 2u, j, w);
    let gn = tanh_stable(gx_at(r, 2u, j) + gr * bn);
    out[p.off_out + i] = Store((1.0 - gz) * gn + gz * prev_fwd(i));
    let saved = p.off_out + plane + r * 4u * hh + j;
    out[saved] = Store(gr);
    out[saved + hh] = Store(gz);
    out[saved + 2u * hh] = Store(gn);
    out[saved + 3u * hh] = Store(bn);
}

@compute @workgroup_size(WG_FLAT)
fn lstm_cell_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    let hh = hidden_units();
    let plane = p.rows * hh;
    if i >= plane {
        return;
    }
    let r = i / hh;
    let j = i % hh;
    let saved = p.off_state + 2u * plane + r * 4u * hh + j;
    let gi = f32(in4[saved]);
    let gf = f32(in4[saved + hh]);
    let gg = f32(in4[saved + 2u * hh]);
    let go = f32(in4[saved + 3u * hh]);
    let tc = f32(in4[p.off_state + 6u * plane + i]);
    let dh = dh_at(r, j);
    var dc = dh * go * (1.0 - tc * tc);
    if p.has_dc != 0u {
        dc += f32(in3[p.off_dc + i]);
    }
    let dz = p.off_out + r * 4u * hh + j;
    out[dz] = Store(dc * gg * gi * (1.0 - gi));
    out[dz + hh] = Store(dc * prev_bwd(i) * gf * (1.0 - gf));
    out[dz + 2u * hh] = Store(dc * gi * (1.0 - gg * gg));
    out[dz + 3u * hh] = Store(dh * tc * go * (1.0 - go));
    out[p.off_out + 4u * plane + i] = Store(dc * gf);
}

@compute @workgroup_size(WG_FLAT)
fn gru_cell_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    let hh = hidden_units();
    let plane = p.rows * hh;
    if i >= plane {
        return;
    }
    let r = i / hh;
    let j = i % hh;
    let saved = p.off_state + plane + r * 4u * hh + j;
    let gr = f32(in4[saved]);
    let gz = f32(in4[saved + hh]);
    let gn = f32(in4[saved + 2u * hh]);
    let bn = f32(in4[saved + 3u * hh]);
    let dh = dh_at(r, j);
    let dan = dh * (1.0 - gz) * (1.0 - gn * gn);
    let dar = dan * bn * gr * (1.0 - gr);
    let daz = dh * (prev_bwd(i) - gn) * gz * (1.0 - gz);
    let dgx = p.off_out + r * 3u * hh + j;
    out[dgx] = Store(dar);
    out[dgx + hh] = Store(daz);
    out[dgx + 2u * hh] = Store(dan);
    let dgh = dgx + 3u * plane;
    out[dgh] = Store(dar);
    out[dgh + hh] = Store(daz);
    out[dgh + 2u * hh] = Store(dan * gr);
    out[p.off_out + 6u * plane + i] = Store(dh * gz);
}
