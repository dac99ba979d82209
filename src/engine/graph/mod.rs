//! The static graph: typed nodes with shapes known at build time, reverse-mode
//! autodiff that appends the backward pass to the same graph, and the rewrite pass
//! that fuses what autodiff emits (`fuse`).

mod act;
pub(crate) mod autodiff;
mod fuse;
mod op;
mod shape;

pub use crate::engine::ops::broadcast::BroadcastOp;
pub(crate) use crate::engine::ops::conv::rename;
pub use crate::engine::ops::conv::{conv_out_len, weight_grad_splits, ConvGeom, ConvOp};
pub use crate::engine::ops::dropout::{dropout_hash, dropout_threshold, DropoutOp};
pub use crate::engine::ops::elementwise::{BinaryOp, ElementwiseOp};
pub use crate::engine::ops::gather::GatherOp;
pub use crate::engine::ops::loss::LossOp;
pub use crate::engine::ops::matmul::MatMulOp;
pub use crate::engine::ops::pool::{PoolGeom, PoolOp};
pub use crate::engine::ops::rnn::{CellKind, Packing, RnnCellGradInputs, RnnCellInputs, RnnOp};
pub use act::{Act, Real, SlopeFrom, LEAKY_RELU_SLOPE};
pub use autodiff::{backward, Gradients};
pub use op::{Op, Optimizer, ProductInputs};
pub use shape::{broadcast_shape, broadcast_strides, numel};

use crate::error::{Error, Result};

/// A node's index in `Graph::nodes`.
pub type NodeId = usize;

/// One operation of a graph: its op, the nodes it reads and its output shape.
#[derive(Clone, Debug)]
pub struct Node {
    /// What it computes.
    pub op: Op,
    /// The nodes it reads, in the op's order.
    pub inputs: Vec<NodeId>,
    /// Its output's shape.
    pub shape: Vec<usize>,
}

impl Node {
    /// Elements of its output.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }
}

/// A trainable tensor of the model: its place in the packed parameter buffer is decided
/// by its position in `Graph::params`, so graphs built from the same model share them.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// The parameter's name in saved models (`layer.weight`).
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

/// A static computation graph: nodes in the order they were added (inputs before their
/// readers), and the model's parameters.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// Every node; a node's id is its index.
    pub nodes: Vec<Node>,
    /// The trainable parameters, in packing order.
    pub params: Vec<ParamSpec>,
    param_nodes: Vec<NodeId>,
    /// Prefixed to the names `param` is given (see `set_param_scope`).
    param_scope: String,
}

fn shape_err<T>(op: &str, detail: String) -> Result<T> {
    Err(Error::shape(op, detail))
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// The node `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// The output shape of node `id`.
    pub fn shape(&self, id: NodeId) -> &[usize] {
        &self.nodes[id].shape
    }

    pub(crate) fn push(&mut self, op: Op, inputs: Vec<NodeId>, shape: Vec<usize>) -> NodeId {
        self.nodes.push(Node { op, inputs, shape });
        self.nodes.len() - 1
    }

    /// Pushes a product whose epilogue applies `act` (`op_with(act)`, e.g. a matmul):
    /// fused when `act`'s slope comes from its output, else the product with no
    /// activation followed by a `Unary(act)`, so the pre-activation the gradient reads
    /// stays in the graph (see `SlopeFrom`).
    pub(crate) fn push_with_act(
        &mut self,
        act: Act,
        op_with: impl Fn(Act) -> Op,
        inputs: Vec<NodeId>,
        shape: Vec<usize>,
    ) -> NodeId {
        match act.slope_from() {
            SlopeFrom::Output => self.push(op_with(act), inputs, shape),
            SlopeFrom::Input => {
                let z = self.push(op_with(Act::Identity), inputs, shape.clone());
                self.push(Op::Elementwise(ElementwiseOp::Unary(act)), vec![z], shape)
            }
        }
    }

    /// The node of the named input, if the graph has one.
    pub fn input_id(&self, name: &str) -> Option<NodeId> {
        self.nodes
            .iter()
            .position(|n| matches!(&n.op, Op::Input { name: m } if m == name))
    }

    /// The node of parameter `index`.
    pub fn param_node(&self, index: usize) -> NodeId {
        self.param_nodes[index]
    }

    /// A host-written input named `name` (unique in the graph) of `shape`.
    pub fn input(&mut self, name: &str, shape: &[usize]) -> Result<NodeId> {
        if self.input_id(name).is_some() {
            return shape_err("input", format!("an input named {name:?} exists already"));
        }
        if shape.is_empty() || shape.contains(&0) {
            return shape_err("input", format!("{name:?} has an empty shape {shape:?}"));
        }
        Ok(self.push(
            Op::Input {
                name: name.to_string(),
            },
            vec![],
            shape.to_vec(),
        ))
    }

    /// A tensor of `shape` with every element `value`.
    pub fn fill(&mut self, shape: &[usize], value: f32) -> Result<NodeId> {
        if shape.is_empty() || shape.contains(&0) {
            return shape_err("fill", format!("empty shape {shape:?}"));
        }
        Ok(self.push(Op::Fill { value }, vec![], shape.to_vec()))
    }

    /// Prefixes `scope` to the name of every parameter declared from now on (`""` for
    /// none), so the same builder can add several independent copies of a model, e.g.
    /// `member0.dense0.weight`, `member1.dense0.weight`.
    pub fn set_param_scope(&mut self, scope: &str) {
        self.param_scope = scope.to_string();
    }

    /// A trainable tensor. Declaring the same name twice returns the same node (and the
    /// shapes must agree), so layers can be shared.
    pub fn param(&mut self, name: &str, shape: &[usize]) -> Result<NodeId> {
        let scoped = format!("{}{name}", self.param_scope);
        let name = scoped.as_str();
        if let Some(i) = self.params.iter().position(|p| p.name == name) {
            if self.params[i].shape != shape {
                return shape_err(
                    "param",
                    format!(
                        "{name:?} declared as {:?} and as {shape:?}",
                        self.params[i].shape
                    ),
                );
            }
            return Ok(self.param_nodes[i]);
        }
        if shape.is_empty() || shape.contains(&0) {
            return shape_err("param", format!("{name:?} has an empty shape {shape:?}"));
        }
        let index = self.params.len();
        self.params.push(ParamSpec {
            name: name.to_string(),
            shape: shape.to_vec(),
        });
        let id = self.push(Op::Param { index }, vec![], shape.to_vec());
        self.param_nodes.push(id);
        Ok(id)
    }

    /// `x` under another shape of as many elements (no copy).
    pub fn reshape(&mut self, x: NodeId, shape: &[usize]) -> Result<NodeId> {
        if numel(shape) != self.nodes[x].numel() {
            return shape_err(
                "reshape",
                format!("{:?} has a different size from {shape:?}", self.shape(x)),
            );
        }
        Ok(self.push(Op::Reshape, vec![x], shape.to_vec()))
    }

    /// Sum along `axis`, removing it.
    pub fn sum(&mut self, x: NodeId, axis: usize) -> Result<NodeId> {
        let shape = self.shape(x).to_vec();
        if axis >= shape.len() {
            return shape_err("sum", format!("axis {axis} out of range for {shape:?}"));
        }
        let mut kept = shape.clone();
        kept[axis] = 1;
        let r = self.reduce_to(x, &kept, 1.0)?;
        let mut out = shape;
        out.remove(axis);
        if out.is_empty() {
            out.push(1);
        }
        self.reshape(r, &out)
    }

    /// The mean of all elements, as a `[1]` tensor.
    pub fn mean(&mut self, x: NodeId) -> Result<NodeId> {
        let n = self.nodes[x].numel();
        self.reduce_to(x, &[1], 1.0 / n as f32)
    }

    /// Words `[offset, offset + numel(shape))` of `x` as a tensor of `shape`, without a
    /// copy. Only the planes of recurrent cells (`cell_h`, `cell_c`) can carry gradients.
    pub fn view(&mut self, x: NodeId, offset: usize, shape: &[usize]) -> Result<NodeId> {
        let n: usize = shape.iter().product();
        if shape.is_empty() || n == 0 || offset + n > self.nodes[x].numel() {
            return shape_err(
                "view",
                format!(
                    "words {offset}..{} of {:?} as {shape:?}",
                    offset + n,
                    self.shape(x)
                ),
            );
        }
        Ok(self.push(Op::View { offset }, vec![x], shape.to_vec()))
    }

    /// Concatenate 2-D tensors with the same number of rows along axis 1.
    pub fn concat(&mut self, parts: &[NodeId]) -> Result<NodeId> {
        let rows = match parts.first() {
            Some(&p) => self.shape(p)[0],
            None => return shape_err("concat", "nothing to concatenate".into()),
        };
        let mut cols = 0;
        for &p in parts {
            let s = self.shape(p);
            if s.len() != 2 || s[0] != rows {
                return shape_err("concat", format!("part {s:?} is not 2-D with {rows} rows"));
            }
            cols += s[1];
        }
        Ok(self.push(Op::Concat, parts.to_vec(), vec![rows, cols]))
    }

    /// Columns `[start, start + len)` of a 2-D tensor (a copy). Its gradient is placed
    /// back into the full width, zero elsewhere; the slices of one tensor that autodiff
    /// finds side by side are put back with one concatenation.
    pub fn slice_cols(&mut self, x: NodeId, start: usize, len: usize) -> Result<NodeId> {
        let s = self.shape(x).to_vec();
        if s.len() != 2 || start + len > s[1] || len == 0 {
            return shape_err(
                "slice_cols",
                format!("columns {start}..{} of {s:?}", start + len),
            );
        }
        Ok(self.push(Op::SliceCols { start }, vec![x], vec![s[0], len]))
    }
}
