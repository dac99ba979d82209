// Binary cross-entropy with logits, its gradient, and the loss accumulator.
//   bce_with_logits
//       out[0] = mean over i < n of pw * t * softplus(-z) + (1 - t) * softplus(z);
//       one workgroup: invocation j sums i = j, j+256, ... in order, then a fixed
//       pairwise tree (deterministic).
//   bce_with_logits_grad
//       out[i] = dloss[0] * loss_scale / n * (pw * t * (sigmoid(z) - 1) + (1 - t) * sigmoid(z))
// (The loss accumulator is state.wgsl's `accumulate`.)

struct LossParams {
    n: u32,
    off_logits: u32,
    off_targets: u32,
    off_dloss: u32,
    off_out: u32,
    pos_weight: f32,
    loss_scale: f32, // the gradient's factor (f16's loss scale; 1 in f32)
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: LossParams;
@group(0) @binding(1) var<storage, read> logits: array<Store>;
@group(0) @binding(2) var<storage, read> targets: array<Store>;
@group(0) @binding(3) var<storage, read> dloss: array<Store>;
@group(0) @binding(4) var<storage, read_write> out: array<Store>;

@compute @workgroup_size(WG)
fn bce_with_logits(@builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    for (var i = lid; i < p.n; i += WG) {
        let z = f32(logits[p.off_logits + i]);
        let t = f32(targets[p.off_targets + i]);
        acc += p.pos_weight * t * softplus(-z) + (1.0 - t) * softplus(z);
    }
    let sum = workgroup_tree_sum(lid, acc);
    if lid == 0u {
        out[p.off_out] = Store(sum / f32(p.n));
    }
}

@compute @workgroup_size(WG_FLAT)
fn bce_with_logits_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if i >= p.n {
        return;
    }
    let scale = f32(dloss[p.off_dloss]) * p.loss_scale / f32(p.n);
    let s = sigmoid(f32(logits[p.off_logits + i]));
    let t = f32(targets[p.off_targets + i]);
    out[p.off_out + i] = Store(scale * (p.pos_weight * t * (s - 1.0) + (1.0 - t) * s));
}
