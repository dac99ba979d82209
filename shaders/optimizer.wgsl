// One optimizer update over the packed parameters, and the step counters.
// `step` is [step within run, optimizer steps so far] as u32; the update number is
// t = step[1] + 1. Adam's moments live in one buffer: m at [0, len), v at [len, 2 len).
//   sgd           buf = momentum * buf + g;  p -= lr * buf
//   adam          PyTorch's Adam; weight_decay > 0 makes it AdamW (decoupled decay)
//   advance_step  step[0] += 1, and step[1] += 1 when len is 2 (plans that update)

struct OptimizerParams {
    len: u32,
    off_step: u32,
    lr: f32,
    beta1: f32,        // SGD: momentum
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    master: u32,      // 1: the update runs on master (f32) and stores it rounded to params
    grad_scale: f32,  // the gradients' factor: 1 / f16's loss scale, 1 in f32
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: OptimizerParams;
@group(0) @binding(1) var<storage, read_write> params: array<Store>;
@group(0) @binding(2) var<storage, read> grads: array<Store>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
@group(0) @binding(4) var<storage, read> counters: array<u32>;
@group(0) @binding(5) var<storage, read_write> counters_rw: array<u32>;
@group(0) @binding(6) var<storage, read_write> master: array<f32>;

// Parameter i as the update sees it: the f32 master copy where there is one.
fn weight(i: u32) -> f32 {
    if p.master != 0u {
        return master[i];
    }
    return f32(params[i]);
}

// Stores parameter i's update (and its master copy).
fn set_weight(i: u32, w: f32) {
    if p.master != 0u {
        master[i] = w;
    }
    params[i] = Store(w);
}

// x^n by binary powering, the same sequence of f32 products as Rust's `powi`, so the
// bias corrections agree with the CPU exactly; pow() = exp2(n log2 x) would lose
// ~1e-4 of 1 - 0.999^t to log2's absolute error.
fn powi(x: f32, n: u32) -> f32 {
    var r = 1.0;
    var base = x;
    var e = n;
    loop {
        if (e & 1u) != 0u {
            r *= base;
        }
        e >>= 1u;
        if e == 0u {
            break;
        }
        base *= base;
    }
    return r;
}

@compute @workgroup_size(WG_FLAT)
fn sgd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if i >= p.len {
        return;
    }
    let buf = p.beta1 * state[i] + f32(grads[i]) * p.grad_scale;
    state[i] = buf;
    set_weight(i, weight(i) - p.lr * buf);
}

@compute @workgroup_size(WG_FLAT)
fn adam(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if i >= p.len {
        return;
    }
    let t = counters[p.off_step + 1u] + 1u;
    let correction1 = 1.0 - powi(p.beta1, t);
    let correction2 = 1.0 - powi(p.beta2, t);
    let g = f32(grads[i]) * p.grad_scale;
    let m = p.beta1 * state[i] + (1.0 - p.beta1) * g;
    let v = p.beta2 * state[p.len + i] + (1.0 - p.beta2) * g * g;
    state[i] = m;
    state[p.len + i] = v;
    let m_hat = m / correction1;
    let v_hat = v / correction2;
    let w = weight(i);
    set_weight(i, w - p.lr * (p.weight_decay * w + m_hat / (sqrt(v_hat) + p.eps)));
}

@compute @workgroup_size(1)
fn advance_step() {
    counters_rw[p.off_step] += 1u;
    if p.len > 1u {
        counters_rw[p.off_step + 1u] += 1u;
    }
}
