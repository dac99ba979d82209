// The row program: a training step's row launches (src/engine/step_split.rs: the
// gathers, the forward products, the loss gradient, the input gradients) as one
// dispatch instead of one dispatch each (src/engine/gpu/row_program.rs; issue 11 item
// 3). A workgroup takes a block of 16 batch rows and runs every operation of `prog` on
// it, in order, with a barrier between operations: each reads rows of its block that
// earlier operations wrote (the row tensors, all in one buffer, the arena) and the
// shared operands (weights, biases: the parameters; the loss seed: the arena), so no
// workgroup waits for another. Within an operation the RP_WG invocations share the
// block's columns as matmul_rows.wgsl shares a tile's: a product's invocation computes
// 4 columns of all 16 rows, so a[r, kk] is one value for every lane and only op(b)'s
// differ from lane to lane (the layout that runs best on lavapipe's SIMD lanes); an
// elementwise operation's invocations take the block's elements in turn.
//
// Each operation computes its row exactly as its own kernel computes it: a product sums
// over k in index order from 0 with one multiply-add per k, then adds the bias and
// applies the activation (matmul_rows.wgsl's `acc += a * b`, `store`); the elementwise
// and loss operations use the same expressions as elementwise.wgsl and loss.wgsl; so
// the weights are the bits of the step run launch by launch (a test holds them equal).
//
//   ROW_GATHER    out[c] = table_x[off_x + perm[off_y + counters[off_step] * rows + r] * width + c]
//                 (x_src: 0 binds table0, 1 table1; `n`: the table's rows, a larger
//                 index writes nothing, as gather_rows does)
//   ROW_MATMUL    out[c] = act(Σ_kk a[r, kk] · op(b)[kk, c] + bias), a = arena at off_x
//                 (k words a row); b at y_src/off_y ([k, width], or [width, k] when
//                 trans_b); bias_kind BIAS_ROW: z_src/off_z [width], BIAS_MATRIX: the
//                 arena at off_z, [rows, width]
//   ROW_UNARY     out[c] = act(x[r, c])
//   ROW_ACT_GRAD  out[c] = x[r, c] * act'(from y[r, c])
//   ROW_BINARY    out[c] = x[r, c] (op) y[r, c]
//   ROW_BCE_GRAD  out[c] = dloss / n * (pw * t * (sigmoid(z) - 1) + (1 - t) * sigmoid(z)),
//                 z = x[r, c], t = y[r, c], dloss at z_src/off_z, pw = `value`
//   ROW_DROPOUT   out[c] = x[r, c] * value where dropout_hash(code, optimizer step,
//                 r * width + c) >= n, else 0 (gather.wgsl's dropout: the seed in
//                 `code`, the threshold in `n`)
// Row tensors are row-major, `width` words a row, in the arena; `code` is the op's
// activation (`Act::code`) or binary operation (`BinaryOp::code`).

struct RowProgramParams {
    ops: u32,      // operations in prog
    rows: u32,     // batch rows: one invocation each
    off_step: u32, // the step counter in `counters`
    loss_scale: f32, // the loss gradient's factor (loss.wgsl's)
}

struct RowOp {
    kind: u32,
    width: u32,
    off_out: u32,
    k: u32,
    code: u32,
    x_src: u32,
    off_x: u32,
    y_src: u32,
    off_y: u32,
    z_src: u32,
    off_z: u32,
    trans_b: u32,
    bias_kind: u32,
    n: u32,
    value: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: RowProgramParams;
@group(0) @binding(1) var<storage, read> prog: array<RowOp>;
@group(0) @binding(2) var<storage, read_write> arena: array<Store>;
@group(0) @binding(3) var<storage, read> params: array<Store>;
@group(0) @binding(4) var<storage, read> table0: array<Store>;
@group(0) @binding(5) var<storage, read> table1: array<Store>;
@group(0) @binding(6) var<storage, read> perm: array<u32>;
@group(0) @binding(7) var<storage, read> counters: array<u32>;

// Invocations per workgroup (a pipeline override: each row-program pipe sets its own).
override RP_WG: u32 = 8u;

// A shared operand's word i: the parameters' or the arena's.
fn shared_at(src: u32, i: u32) -> f32 {
    if src == SRC_PARAMS {
        return f32(params[i]);
    }
    return f32(arena[i]);
}

// op(b)[kk, c] of a product, 0 past the last column.
fn product_b(op: RowOp, kk: u32, c: u32) -> f32 {
    if c >= op.width {
        return 0.0;
    }
    if op.trans_b != 0u {
        return shared_at(op.y_src, op.off_y + c * op.k + kk);
    }
    return shared_at(op.y_src, op.off_y + kk * op.width + c);
}

// a[r, kk] of a product, 0 past the last row.
fn product_a(op: RowOp, r: u32, kk: u32) -> f32 {
    if r >= p.rows {
        return 0.0;
    }
    return f32(arena[op.off_x + r * op.k + kk]);
}

// Column c of row r of a product: bias and activation on the sum, as matmul's `store`.
fn product_store(op: RowOp, r: u32, c: u32, z0: f32) {
    if r >= p.rows || c >= op.width {
        return;
    }
    var z = z0;
    if op.bias_kind == BIAS_ROW {
        z += shared_at(op.z_src, op.off_z + c);
    } else if op.bias_kind == BIAS_MATRIX {
        z += f32(arena[op.off_z + r * op.width + c]);
    }
    arena[op.off_out + r * op.width + c] = Store(activate(op.code, z));
}

// The block's 16 rows of a product, 4 columns an invocation a pass; every column's sum
// runs over kk in index order from 0, as the matmul kernels'. The accumulators are
// constant-indexed, so they stay in registers.
fn block_matmul(op: RowOp, r: u32, lane: u32) {
    for (var c = 4u * lane; c < op.width; c += 4u * RP_WG) {
        var acc: array<vec4<f32>, 16>;
        for (var kk = 0u; kk < op.k; kk++) {
            let bv = vec4<f32>(product_b(op, kk, c), product_b(op, kk, c + 1u), product_b(op, kk, c + 2u), product_b(op, kk, c + 3u));
            acc[0] += product_a(op, r + 0u, kk) * bv;
            acc[1] += product_a(op, r + 1u, kk) * bv;
            acc[2] += product_a(op, r + 2u, kk) * bv;
            acc[3] += product_a(op, r + 3u, kk) * bv;
            acc[4] += product_a(op, r + 4u, kk) * bv;
            acc[5] += product_a(op, r + 5u, kk) * bv;
            acc[6] += product_a(op, r + 6u, kk) * bv;
            acc[7] += product_a(op, r + 7u, kk) * bv;
            acc[8] += product_a(op, r + 8u, kk) * bv;
            acc[9] += product_a(op, r + 9u, kk) * bv;
            acc[10] += product_a(op, r + 10u, kk) * bv;
            acc[11] += product_a(op, r + 11u, kk) * bv;
            acc[12] += product_a(op, r + 12u, kk) * bv;
            acc[13] += product_a(op, r + 13u, kk) * bv;
            acc[14] += product_a(op, r + 14u, kk) * bv;
            acc[15] += product_a(op, r + 15u, kk) * bv;
        }
        for (var j = 0u; j < 4u; j++) {
            product_store(op, r + 0u, c + j, acc[0][j]);
            product_store(op, r + 1u, c + j, acc[1][j]);
            product_store(op, r + 2u, c + j, acc[2][j]);
            product_store(op, r + 3u, c + j, acc[3][j]);
            product_store(op, r + 4u, c + j, acc[4][j]);
            product_store(op, r + 5u, c + j, acc[5][j]);
            product_store(op, r + 6u, c + j, acc[6][j]);
            product_store(op, r + 7u, c + j, acc[7][j]);
            product_store(op, r + 8u, c + j, acc[8][j]);
            product_store(op, r + 9u, c + j, acc[9][j]);
            product_store(op, r + 10u, c + j, acc[10][j]);
            product_store(op, r + 11u, c + j, acc[11][j]);
            product_store(op, r + 12u, c + j, acc[12][j]);
            product_store(op, r + 13u, c + j, acc[13][j]);
            product_store(op, r + 14u, c + j, acc[14][j]);
            product_store(op, r + 15u, c + j, acc[15][j]);
        }
    }
}

// One element (row r, column c) of a gather or an elementwise operation.
fn element(op: RowOp, r: u32, c: u32) {
    let i = r * op.width + c;
    var v: f32;
    switch op.kind {
        case ROW_GATHER: {
            let row = perm[op.off_y + counters[p.off_step] * p.rows + r];
            if row >= op.n {
                return;
            }
            let src = op.off_x + row * op.width + c;
            if op.x_src == 0u {
                v = f32(table0[src]);
            } else {
                v = f32(table1[src]);
            }
        }
        case ROW_UNARY: { v = activate(op.code, f32(arena[op.off_x + i])); }
        case ROW_ACT_GRAD: { v = f32(arena[op.off_x + i]) * activation_slope(op.code, f32(arena[op.off_y + i])); }
        case ROW_BINARY: {
            let u = f32(arena[op.off_x + i]);
            let w = f32(arena[op.off_y + i]);
            switch op.code {
                case BINARY_ADD: { v = u + w; }
                case BINARY_SUB: { v = u - w; }
                case BINARY_MUL: { v = u * w; }
                default: { v = u / w; }
            }
        }
        case ROW_DROPOUT: {
            let keep = dropout_hash(op.code, counters[p.off_step + 1u], i) >= op.n;
            v = select(0.0, f32(arena[op.off_x + i]) * op.value, keep);
        }
        default: {
            // ROW_BCE_GRAD
            let scale = shared_at(op.z_src, op.off_z) * p.loss_scale / f32(op.n);
            let s = sigmoid(f32(arena[op.off_x + i]));
            let t = f32(arena[op.off_y + i]);
            v = scale * (op.value * t * (s - 1.0) + (1.0 - t) * s);
        }
    }
    arena[op.off_out + i] = Store(v);
}

@compute @workgroup_size(RP_WG)
fn row_program(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = (wg.y * nwg.x + wg.x) * RP_ROWS;
    for (var i = 0u; i < p.ops; i++) {
        let op = prog[i];
        if op.kind == ROW_MATMUL {
            block_matmul(op, r, lid);
        } else {
            let count = min(RP_ROWS, p.rows - min(r, p.rows)) * op.width;
            for (var e = lid; e < count; e += RP_WG) {
                element(op, r + e / op.width, e % op.width);
            }
        }
        // What this operation wrote is what the next one reads, across the workgroup.
        storageBarrier();
    }
}
