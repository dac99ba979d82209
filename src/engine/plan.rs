//! Compiles a graph into a flat list of kernel launches over planned storage.
//!
//! Every tensor lives in one of a few places: a transient *slot* (a buffer that is reused
//! as soon as its last reader has run), a host-written *input*, the packed *parameter*
//! and *gradient* buffers (same layout, so an optimizer step is one launch), or a named
//! *state* that persists across steps (the loss sum, collected scores, the step counter).
//! Both executors run the same `Plan`; neither looks at the graph again.

use crate::engine::graph::{numel, Graph, NodeId, Op, Optimizer};
use crate::engine::ops::broadcast::BroadcastKernel;
use crate::engine::ops::conv::ConvKernel;
use crate::engine::ops::dropout::DropoutKernel;
use crate::engine::ops::elementwise::ElementwiseKernel;
use crate::engine::ops::gather::GatherKernel;
use crate::engine::ops::loss::LossKernel;
use crate::engine::ops::matmul::MatMulKernel;
use crate::engine::ops::pool::PoolKernel;
use crate::engine::ops::rnn::RnnKernel;
use crate::error::{Error, Result};
use std::collections::HashMap;

/// Parameters are padded to this many f32 so each one starts on a 256-byte boundary,
/// the largest storage-buffer offset alignment a WebGPU adapter may demand.
pub const PARAM_ALIGN: usize = 64;
/// Ranks up to this are handled by the broadcasting kernels.
pub const MAX_RANK: usize = 4;

/// Where a tensor's words live (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Storage {
    /// A transient buffer, by index into `Plan::slots`.
    Slot(usize),
    /// A host-written input, by index into `Plan::inputs`.
    Input(usize),
    /// The packed parameters.
    Params,
    /// The packed gradients, laid out as the parameters.
    Grads,
    /// A persistent named state, by index into `Plan::states`.
    State(usize),
}

/// A window of `len` 32-bit words at `offset` in a storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorRef {
    /// Which storage.
    pub storage: Storage,
    /// First word.
    pub offset: usize,
    /// Words.
    pub len: usize,
}

/// One kernel invocation with everything resolved: storage windows and sizes. Each
/// variant's doc gives its formula; the fields are the names it uses (inputs, `out`, and
/// sizes), so they go without docs of their own.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kernel {
    /// `out[i] = value`.
    Fill { out: TensorRef, value: f32 },
    /// A matrix product with its epilogue (`engine::ops::matmul`).
    MatMul(MatMulKernel),
    /// An elementwise map (`engine::ops::elementwise`).
    Elementwise(ElementwiseKernel),
    /// A sum to a shape or a broadcast from one (`engine::ops::broadcast`).
    Broadcast(BroadcastKernel),
    /// A launch of the loss family (`engine::ops::loss`).
    Loss(LossKernel),
    /// A launch of the row-gather family (`engine::ops::gather`).
    Gather(GatherKernel),
    /// Copies a block of columns between row-major matrices with `rows` rows:
    /// `out[r, dst_start + c] = x[r, src_start + c]` for `c < cols`.
    CopyCols {
        x: TensorRef,
        out: TensorRef,
        rows: usize,
        cols: usize,
        src_cols: usize,
        src_start: usize,
        dst_cols: usize,
        dst_start: usize,
    },
    /// `acc[0] += x[0]` (the epoch's loss sum, read by the host at epoch end).
    Accumulate { x: TensorRef, acc: TensorRef },
    /// `out[step * x.len + i] = x[i]`: collects each step's outputs (validation scores).
    Collect { x: TensorRef, out: TensorRef },
    /// One update of every parameter from its gradient; `step` holds the step counters.
    Optimize {
        optimizer: Optimizer,
        len: usize,
        step: TensorRef,
    },
    /// Advances the step counters `[step within run, optimizer step]`: the first always,
    /// the second only in a plan that updates the parameters (a validation plan shares
    /// the counters and must not move Adam's bias correction or dropout's masks).
    AdvanceStep { step: TensorRef, counters: u32 },
    /// A launch of the recurrent-cell family (`engine::ops::rnn`).
    Rnn(RnnKernel),
    /// A launch of the convolution family (`engine::ops::conv`).
    Conv(ConvKernel),
    /// A launch of the pooling family (`engine::ops::pool`).
    Pool(PoolKernel),
    /// Inverted dropout (`engine::ops::dropout`).
    Dropout(DropoutKernel),
}

impl Kernel {
    /// The window this kernel writes.
    pub fn output(&self) -> TensorRef {
        match *self {
            Kernel::Fill { out, .. }
            | Kernel::MatMul(MatMulKernel { out, .. })
            | Kernel::CopyCols { out, .. }
            | Kernel::Collect { out, .. }
            | Kernel::Dropout(DropoutKernel { out, .. }) => out,
            Kernel::Broadcast(ref k) => k.output(),
            Kernel::Elementwise(ref k) => k.output(),
            Kernel::Gather(ref k) => k.output(),
            Kernel::Loss(ref k) => k.output(),
            Kernel::Rnn(ref k) => k.output(),
            Kernel::Conv(ref k) => k.output(),
            Kernel::Pool(ref k) => k.output(),
            Kernel::Accumulate { acc, .. } => acc,
            Kernel::AdvanceStep { step, .. } => step,
            Kernel::Optimize { len, .. } => TensorRef {
                storage: Storage::Params,
                offset: 0,
                len,
            },
        }
    }
}

/// One step of a plan: a kernel, and the node it computes.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The graph node this launch computes (`None` for step bookkeeping).
    pub node: Option<NodeId>,
    /// What to run.
    pub kernel: Kernel,
}

/// Where each parameter sits in the packed parameter (and gradient) buffer.
#[derive(Clone, Debug)]
pub struct ParamLayout {
    /// First word of each parameter, in the graph's parameter order.
    pub offsets: Vec<usize>,
    /// Words of each parameter (without padding).
    pub lens: Vec<usize>,
    /// Words of the whole buffer, padding included.
    pub total: usize,
}

impl ParamLayout {
    /// The layout of `graph`'s parameters, each aligned to [`PARAM_ALIGN`].
    pub fn new(graph: &Graph) -> Self {
        let mut offsets = Vec::new();
        let mut lens = Vec::new();
        let mut total = 0;
        for p in &graph.params {
            offsets.push(total);
            let len = numel(&p.shape);
            lens.push(len);
            total += len.div_ceil(PARAM_ALIGN) * PARAM_ALIGN;
        }
        ParamLayout {
            offsets,
            lens,
            total: total.max(PARAM_ALIGN),
        }
    }
}

/// What a compiled plan must compute each step, besides its `outputs`.
#[derive(Clone, Debug, Default)]
pub struct PlanRequest {
    /// Nodes whose values the host reads after a run; they get storage of their own.
    pub keep: Vec<NodeId>,
    /// A `[1]` loss added into the state `"loss_sum"` each step.
    pub loss: Option<NodeId>,
    /// Gradient nodes per parameter index, written into the packed gradient buffer.
    pub grads: Vec<(usize, NodeId)>,
    /// The update applied after the gradients, each step.
    pub optimizer: Option<Optimizer>,
    /// A node whose values are appended each step into the state `"collected"`, of
    /// `steps` times its size.
    pub collect: Option<(NodeId, usize)>,
}

/// A host-written input of a plan.
#[derive(Clone, Debug)]
pub struct InputInfo {
    /// The graph input's name (the executor shares inputs of one name across plans).
    pub name: String,
    /// Words.
    pub len: usize,
}

/// A persistent state of a plan (see [`STEP_STATE`], [`LOSS_STATE`], [`COLLECT_STATE`]).
#[derive(Clone, Debug)]
pub struct StateInfo {
    /// The state's name.
    pub name: String,
    /// Words.
    pub len: usize,
}

/// A compiled graph: the launches of one step over planned storage. Both executors run
/// it as it is.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The kernels of one step, in order.
    pub launches: Vec<Launch>,
    /// Capacity in words of each transient slot.
    pub slots: Vec<usize>,
    /// The host-written inputs.
    pub inputs: Vec<InputInfo>,
    /// The persistent states.
    pub states: Vec<StateInfo>,
    /// The packed parameters' layout.
    pub layout: ParamLayout,
    /// Words of optimizer state (momentum or Adam moments), 0 without an optimizer.
    pub opt_state_len: usize,
    /// Where each node's value lives, for nodes that were computed.
    pub locations: HashMap<NodeId, TensorRef>,
}

/// The step counters, `[step within run, optimizer step]` (two u32 words).
pub const STEP_STATE: &str = "step";
/// The running sum of the loss over an epoch's steps.
pub const LOSS_STATE: &str = "loss_sum";
/// Each step's collected outputs (validation scores), one after another.
pub const COLLECT_STATE: &str = "collected";

impl Plan {
    /// Index of the input named `name` in `inputs`.
    pub fn input_index(&self, name: &str) -> Option<usize> {
        self.inputs.iter().position(|i| i.name == name)
    }
    /// Index of the state named `name` in `states`.
    pub fn state_index(&self, name: &str) -> Option<usize> {
        self.states.iter().position(|s| s.name == name)
    }
    /// Where a kept node can be read after a run.
    pub fn location(&self, node: NodeId) -> Result<TensorRef> {
        self.locations
            .get(&node)
            .copied()
            .ok_or_else(|| Error::Internal(format!("node {node} is not part of the plan")))
    }
}

pub(crate) fn padded<const R: usize>(v: &[usize], fill: usize) -> [usize; R] {
    let mut out = [fill; R];
    out[R - v.len()..].copy_from_slice(v);
    out
}

/// Transient slots handed out and taken back by liveness.
#[derive(Default)]
struct SlotPool {
    capacity: Vec<usize>,
    free: Vec<usize>,
}

impl SlotPool {
    /// The smallest free slot that fits, else the largest free one grown, else a new one.
    fn take(&mut self, len: usize) -> usize {
        let fitting = self
            .free
            .iter()
            .enumerate()
            .filter(|(_, &s)| self.capacity[s] >= len)
            .min_by_key(|(_, &s)| self.capacity[s]);
        let pick = fitting.or_else(|| {
            self.free
                .iter()
                .enumerate()
                .max_by_key(|(_, &s)| self.capacity[s])
        });
        match pick.map(|(i, _)| i) {
            Some(i) => {
                let slot = self.free.swap_remove(i);
                self.capacity[slot] = self.capacity[slot].max(len);
                slot
            }
            None => {
                self.capacity.push(len);
                self.capacity.len() - 1
            }
        }
    }
    fn give_back(&mut self, slot: usize) {
        self.free.push(slot);
    }
}

/// Orders, places and lowers everything `request` needs from `graph`.
pub fn compile(graph: &Graph, request: &PlanRequest) -> Result<Plan> {
    let layout = ParamLayout::new(graph);
    let n = graph.nodes.len();

    // Which nodes are needed: everything reachable backwards from what was asked for.
    let mut roots: Vec<NodeId> = request.keep.clone();
    roots.extend(request.loss);
    roots.extend(request.grads.iter().map(|&(_, g)| g));
    roots.extend(request.collect.map(|(c, _)| c));
    let mut needed = vec![false; n];
    let mut stack = roots.clone();
    while let Some(id) = stack.pop() {
        if !needed[id] {
            needed[id] = true;
            stack.extend(&graph.nodes[id].inputs);
        }
    }

    // Reshapes and views share their source's storage, and keep it alive.
    let mut alias_of: Vec<NodeId> = (0..n).collect();
    for id in 0..n {
        if matches!(graph.nodes[id].op, Op::Reshape | Op::View { .. }) {
            alias_of[id] = alias_of[graph.nodes[id].inputs[0]];
        }
    }

    // The last launch (in node order) that reads each storage root. Nodes the host reads,
    // or that the step's bookkeeping reads, stay live to the end.
    let mut last_use = vec![0usize; n];
    for (id, node) in graph.nodes.iter().enumerate().filter(|&(id, _)| needed[id]) {
        for &i in &node.inputs {
            last_use[alias_of[i]] = last_use[alias_of[i]].max(id);
        }
    }
    for &r in &roots {
        last_use[alias_of[r]] = usize::MAX;
    }

    // Gradients go straight into the packed buffer when nothing else reads them (so no
    // kernel both reads and writes that buffer); otherwise they are copied there.
    let mut grad_home: HashMap<NodeId, usize> = HashMap::new();
    let mut grad_copies: Vec<(usize, NodeId)> = Vec::new();
    let mut consumers = vec![0usize; n];
    for (_, node) in graph.nodes.iter().enumerate().filter(|&(id, _)| needed[id]) {
        for &i in &node.inputs {
            consumers[i] += 1;
        }
    }
    for &(p, gnode) in &request.grads {
        if graph.params.get(p).map(|s| &s.shape) != Some(&graph.nodes[gnode].shape) {
            return Err(Error::shape(
                "plan",
                format!("gradient node {gnode} does not match parameter {p}"),
            ));
        }
        let computes = !matches!(
            graph.nodes[gnode].op,
            Op::Input { .. } | Op::Param { .. } | Op::Reshape | Op::View { .. }
        );
        // A node that is the gradient of two parameters (the LSTM's two biases, which
        // enter as one sum) is copied into both places: the copy reads it.
        let shared = request
            .grads
            .iter()
            .filter(|&&(_, other)| other == gnode)
            .count()
            > 1;
        let read_elsewhere = shared
            || consumers[gnode] > 0
            || request.keep.contains(&gnode)
            || Some(gnode) == request.loss;
        if computes && !read_elsewhere && !grad_home.contains_key(&gnode) {
            grad_home.insert(gnode, p);
        } else {
            grad_copies.push((p, gnode));
        }
    }

    let mut plan = Plan {
        launches: Vec::new(),
        slots: Vec::new(),
        inputs: Vec::new(),
        states: Vec::new(),
        layout,
        opt_state_len: 0,
        locations: HashMap::new(),
    };
    let step = plan_state(&mut plan, STEP_STATE, 2);
    let mut pool = SlotPool::default();
    let mut loc: Vec<Option<TensorRef>> = vec![None; n];

    for id in 0..n {
        if !needed[id] {
            continue;
        }
        let node = &graph.nodes[id];
        let len = node.numel();
        let here = match (&node.op, grad_home.get(&id)) {
            (Op::Reshape, _) => TensorRef {
                len,
                ..loc[node.inputs[0]].expect("inputs precede their users")
            },
            (Op::View { offset }, _) => {
                let base = loc[node.inputs[0]].expect("inputs precede their users");
                TensorRef {
                    offset: base.offset + offset,
                    len,
                    ..base
                }
            }
            (Op::Input { name }, _) => {
                let index = plan.inputs.len();
                plan.inputs.push(InputInfo {
                    name: name.clone(),
                    len,
                });
                TensorRef {
                    storage: Storage::Input(index),
                    offset: 0,
                    len,
                }
            }
            (Op::Param { index }, _) => TensorRef {
                storage: Storage::Params,
                offset: plan.layout.offsets[*index],
                len,
            },
            (_, Some(&p)) => TensorRef {
                storage: Storage::Grads,
                offset: plan.layout.offsets[p],
                len,
            },
            _ => TensorRef {
                storage: Storage::Slot(pool.take(len)),
                offset: 0,
                len,
            },
        };
        loc[id] = Some(here);
        let ins: Vec<TensorRef> = node
            .inputs
            .iter()
            .map(|&i| loc[i].expect("inputs precede their users"))
            .collect();
        lower(graph, id, &ins, here, step, &mut plan.launches)?;
        // Free the slots whose last reader this was (after the output took its slot, so a
        // kernel never reads and writes the same buffer).
        for &i in node.inputs.iter().chain(std::iter::once(&id)) {
            let root = alias_of[i];
            if last_use[root] <= id && last_use[root] != usize::MAX {
                if let Some(TensorRef {
                    storage: Storage::Slot(s),
                    ..
                }) = loc[root]
                {
                    if !pool.free.contains(&s) {
                        pool.give_back(s);
                    }
                }
                last_use[root] = usize::MAX; // freed once
            }
        }
    }

    for (p, gnode) in grad_copies {
        let x = loc[gnode].expect("gradient computed");
        let len = x.len;
        let out = TensorRef {
            storage: Storage::Grads,
            offset: plan.layout.offsets[p],
            len,
        };
        plan.launches.push(Launch {
            node: None,
            kernel: copy_all(x, out),
        });
    }
    if let Some(loss) = request.loss {
        let acc = plan_state(&mut plan, LOSS_STATE, 1);
        plan.launches.push(Launch {
            node: None,
            kernel: Kernel::Accumulate {
                x: loc[loss].expect("loss computed"),
                acc,
            },
        });
    }
    if let Some((node, steps)) = request.collect {
        let x = loc[node].expect("collected node computed");
        let out = plan_state(&mut plan, COLLECT_STATE, x.len * steps);
        plan.launches.push(Launch {
            node: None,
            kernel: Kernel::Collect { x, out },
        });
    }
    if let Some(optimizer) = request.optimizer {
        if request.grads.len() != graph.params.len() {
            return Err(Error::Internal(
                "an optimizer needs a gradient for every parameter".into(),
            ));
        }
        plan.opt_state_len = plan.layout.total * optimizer.state_per_param();
        plan.launches.push(Launch {
            node: None,
            kernel: Kernel::Optimize {
                optimizer,
                len: plan.layout.total,
                step,
            },
        });
    }
    plan.launches.push(Launch {
        node: None,
        kernel: Kernel::AdvanceStep {
            step,
            counters: if request.optimizer.is_some() { 2 } else { 1 },
        },
    });
    plan.slots = pool.capacity;
    plan.locations = (0..n).filter_map(|i| loc[i].map(|l| (i, l))).collect();
    #[cfg(debug_assertions)]
    verify(graph, &plan)?;
    Ok(plan)
}

fn plan_state(plan: &mut Plan, name: &str, len: usize) -> TensorRef {
    let index = plan.states.len();
    plan.states.push(StateInfo {
        name: name.to_string(),
        len,
    });
    TensorRef {
        storage: Storage::State(index),
        offset: 0,
        len,
    }
}

fn copy_all(x: TensorRef, out: TensorRef) -> Kernel {
    Kernel::CopyCols {
        x,
        out,
        rows: 1,
        cols: x.len,
        src_cols: x.len,
        src_start: 0,
        dst_cols: x.len,
        dst_start: 0,
    }
}

/// The launches that compute node `id` into `out`, given its inputs' places and the
/// step counters'.
fn lower(
    graph: &Graph,
    id: NodeId,
    ins: &[TensorRef],
    out: TensorRef,
    step: TensorRef,
    launches: &mut Vec<Launch>,
) -> Result<()> {
    let node = &graph.nodes[id];
    let shape_of = |k: usize| graph.shape(node.inputs[k]);
    let in_shapes: Vec<&[usize]> = (0..ins.len()).map(shape_of).collect();
    let mut push = |kernel| {
        launches.push(Launch {
            node: Some(id),
            kernel,
        })
    };
    if node.shape.len() > MAX_RANK {
        return Err(Error::shape(
            node.op.name(),
            format!("rank of {:?} is over {MAX_RANK}", node.shape),
        ));
    }
    match node.op {
        Op::Input { .. } | Op::Param { .. } | Op::Reshape | Op::View { .. } => {}
        Op::Fill { value } => push(Kernel::Fill { out, value }),
        Op::MatMul(op) => push(Kernel::MatMul(op.lower(ins, &in_shapes, &node.shape, out))),
        Op::Elementwise(op) => push(Kernel::Elementwise(op.lower(
            ins,
            &in_shapes,
            &node.shape,
            out,
        ))),
        Op::Broadcast(op) => push(Kernel::Broadcast(op.lower(
            ins,
            &in_shapes,
            &node.shape,
            out,
        ))),
        Op::Loss(op) => push(Kernel::Loss(op.lower(ins, out))),
        Op::Gather(op) => push(Kernel::Gather(op.lower(ins, &in_shapes, &node.shape, out))),
        Op::Concat => {
            let mut start = 0;
            for (k, &x) in ins.iter().enumerate() {
                let cols = shape_of(k)[1];
                push(Kernel::CopyCols {
                    x,
                    out,
                    rows: node.shape[0],
                    cols,
                    src_cols: cols,
                    src_start: 0,
                    dst_cols: node.shape[1],
                    dst_start: start,
                });
                start += cols;
            }
        }
        Op::SliceCols { start } => {
            let src_cols = shape_of(0)[1];
            push(Kernel::CopyCols {
                x: ins[0],
                out,
                rows: node.shape[0],
                cols: node.shape[1],
                src_cols,
                src_start: start,
                dst_cols: node.shape[1],
                dst_start: 0,
            })
        }
        Op::Rnn(ref op) => push(Kernel::Rnn(op.lower(graph, id, ins, &in_shapes, out)?)),
        Op::Conv(op) => push(Kernel::Conv(op.lower(ins, &in_shapes, &node.shape, out))),
        Op::Pool(op) => push(Kernel::Pool(op.lower(ins, &in_shapes, &node.shape, out))),
        Op::Dropout(op) => push(Kernel::Dropout(op.lower(ins[0], out, step))),
    }
    Ok(())
}

/// Row-major strides of a padded shape.
pub fn contiguous_strides(shape: &[usize; MAX_RANK]) -> [usize; MAX_RANK] {
    let mut strides = [1; MAX_RANK];
    for d in (0..MAX_RANK - 1).rev() {
        strides[d] = strides[d + 1] * shape[d + 1];
    }
    strides
}

/// Replays a plan's storage use and checks that every launch reads the value it means
/// to read: no slot was handed to another tensor between a value's write and its last
/// read, and no launch writes a buffer it also reads. A planner bug that reuses a live
/// buffer fails here, before any kernel runs.
pub fn verify(graph: &Graph, plan: &Plan) -> Result<()> {
    // The node whose value each slot holds now.
    let mut holder: HashMap<Storage, NodeId> = HashMap::new();
    let root = |mut id: NodeId| {
        while matches!(graph.nodes[id].op, Op::Reshape | Op::View { .. }) {
            id = graph.nodes[id].inputs[0];
        }
        id
    };
    for launch in &plan.launches {
        let Some(id) = launch.node else { continue };
        let out = plan.location(id)?;
        for &input in &graph.nodes[id].inputs {
            let at = plan.location(input)?;
            if at.storage == out.storage {
                return Err(Error::Internal(format!(
                    "launch for node {id} reads and writes {:?}",
                    out.storage
                )));
            }
            if let Storage::Slot(_) = at.storage {
                if holder.get(&at.storage) != Some(&root(input)) {
                    return Err(Error::Internal(format!(
                        "node {id} ({}) reads node {input} from {:?}, which now holds node {:?}",
                        graph.nodes[id].op.name(),
                        at.storage,
                        holder.get(&at.storage)
                    )));
                }
            }
        }
        if let Storage::Slot(_) = out.storage {
            holder.insert(out.storage, id);
        }
    }
    Ok(())
}
