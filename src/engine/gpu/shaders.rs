//! The WGSL sources (one file per kernel family in `shaders/`) and the table of compute
//! pipelines built from them. `tests/it/shaders_validate.rs` checks this table with naga.

use super::kernel_params::{CONV_FORWARD, CONV_GRAD_INPUT, CONV_GRAD_WEIGHT};
use crate::engine::graph::{CellKind, Optimizer};
use crate::engine::plan::Kernel;

/// A shader module as compiled: the family's file with `common.wgsl` (the shared
/// constants and helpers) prepended.
#[derive(Clone, Copy, Debug)]
pub struct ShaderModule {
    /// The file's name in `shaders/`.
    pub file: &'static str,
    /// The WGSL text.
    pub source: &'static str,
}

macro_rules! with_common {
    ($file:literal) => {
        concat!(
            include_str!("../../../shaders/common.wgsl"),
            "\n",
            include_str!(concat!("../../../shaders/", $file))
        )
    };
}

/// matmul.wgsl as one variant compiles it: `common.wgsl`, then the variant's constants
/// (`MM_SIDE`, `MM_STAGED`, `MM_BROKEN`; see the file's header), then the file.
macro_rules! matmul_variant {
    ($side:literal, $staged:literal, $broken:literal) => {
        concat!(
            include_str!("../../../shaders/common.wgsl"),
            "\n// This matmul variant's constants.\nconst MM_SIDE: u32 = ",
            $side,
            "u;\nconst MM_STAGED: bool = ",
            $staged,
            ";\nconst MM_BROKEN: bool = ",
            $broken,
            ";\n",
            include_str!("../../../shaders/matmul.wgsl")
        )
    };
}

/// One configuration of the matmul kernel: its own shader module (matmul.wgsl with the
/// variant's constants), built into four pipelines (the transpose flags). Every variant
/// sums over k in index order, so each gives the default's bits; which runs a launch is
/// the autotuner's choice (`tune`).
#[derive(Clone, Copy, Debug)]
pub struct MatMulVariant {
    /// A short name for logs and `riskgrad bench tune`.
    pub name: &'static str,
    /// Side of the output tile a workgroup computes (4 × the workgroup's side).
    pub tile: u32,
    /// The compiled module.
    pub module: ShaderModule,
    /// A deliberately wrong variant (adds 1 to every output), a candidate only when a
    /// test asks for it, to prove the autotuner drops a variant that disagrees.
    pub test_only: bool,
}

/// Every matmul variant; index 0 is the default (what `--tune off` runs and what the
/// autotuner checks the others against). The autotuner measures them in this order, so
/// the others come likeliest winner first (on lavapipe `tile32-direct` won 9–10 of the
/// default MLP's 11 shapes and `tile64-direct` the rest): when its budget stops a shape
/// part-way, the ones measured are the ones most worth it.
pub const MATMUL_VARIANTS: [MatMulVariant; 5] = [
    MatMulVariant {
        name: "tile64-staged",
        tile: 64,
        module: ShaderModule {
            file: "matmul.wgsl",
            source: matmul_variant!("16", "true", "false"),
        },
        test_only: false,
    },
    MatMulVariant {
        name: "tile32-direct",
        tile: 32,
        module: ShaderModule {
            file: "matmul.wgsl",
            source: matmul_variant!("8", "false", "false"),
        },
        test_only: false,
    },
    MatMulVariant {
        name: "tile64-direct",
        tile: 64,
        module: ShaderModule {
            file: "matmul.wgsl",
            source: matmul_variant!("16", "false", "false"),
        },
        test_only: false,
    },
    MatMulVariant {
        name: "tile32-staged",
        tile: 32,
        module: ShaderModule {
            file: "matmul.wgsl",
            source: matmul_variant!("8", "true", "false"),
        },
        test_only: false,
    },
    MatMulVariant {
        name: "broken-for-tests",
        tile: 64,
        module: ShaderModule {
            file: "matmul.wgsl",
            source: matmul_variant!("16", "true", "true"),
        },
        test_only: true,
    },
];

/// The default matmul variant's index in [`MATMUL_VARIANTS`].
pub const DEFAULT_MATMUL_VARIANT: usize = 0;

/// The shared helpers (`common.wgsl`) on their own, for validation.
pub const COMMON: ShaderModule = ShaderModule {
    file: "common.wgsl",
    source: include_str!("../../../shaders/common.wgsl"),
};

/// Every kernel module, indexed by `Family as usize`.
pub const MODULES: [ShaderModule; 9] = [
    MATMUL_VARIANTS[DEFAULT_MATMUL_VARIANT].module,
    ShaderModule {
        file: "elementwise.wgsl",
        source: with_common!("elementwise.wgsl"),
    },
    ShaderModule {
        file: "reduce.wgsl",
        source: with_common!("reduce.wgsl"),
    },
    ShaderModule {
        file: "loss.wgsl",
        source: with_common!("loss.wgsl"),
    },
    ShaderModule {
        file: "gather.wgsl",
        source: with_common!("gather.wgsl"),
    },
    ShaderModule {
        file: "optimizer.wgsl",
        source: with_common!("optimizer.wgsl"),
    },
    ShaderModule {
        file: "rnn.wgsl",
        source: with_common!("rnn.wgsl"),
    },
    ShaderModule {
        file: "conv.wgsl",
        source: with_common!("conv.wgsl"),
    },
    ShaderModule {
        file: "pool.wgsl",
        source: with_common!("pool.wgsl"),
    },
];

/// The peak-throughput kernels of `riskgrad bench peak` (fma chains, copy, read): not
/// engine kernels, so not in `MODULES` or `PIPELINES`. The bench builds them on a device
/// of its own; `peak_f16.wgsl` (it enables f16) only where the adapter has SHADER_F16.
/// Neither includes `common.wgsl`. Validated with the rest in
/// `tests/it/shaders_validate.rs`.
pub const BENCH_MODULES: [ShaderModule; 2] = [
    ShaderModule {
        file: "peak.wgsl",
        source: include_str!("../../../shaders/peak.wgsl"),
    },
    ShaderModule {
        file: "peak_f16.wgsl",
        source: include_str!("../../../shaders/peak_f16.wgsl"),
    },
];

/// A kernel family: one WGSL file each, named like the variant.
#[allow(missing_docs)] // the variants are the files' names
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    MatMul,
    Elementwise,
    Reduce,
    Loss,
    Gather,
    Optimizer,
    Rnn,
    Conv,
    Pool,
}

/// How a binding is used by the shader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read-only storage.
    Read,
    /// Read-write storage.
    ReadWrite,
}

/// The bindings of a pipeline: binding 0 is always the launch's uniform parameters;
/// these are the storage buffers after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// elementwise: x, y, out
    Read2Write1,
    /// reduce: x, out
    Read1Write1,
    /// matmul, loss, gather: three inputs, one output
    Read3Write1,
    /// params (rw), grads, optimizer state (rw), step counters
    Optimizer,
    /// the step counters (rw), at binding 5
    Counters,
    /// recurrent cells: five inputs, one output
    Read5Write1,
}

impl Layout {
    /// Every layout, for building their bind group layouts up front.
    pub const ALL: [Layout; 6] = [
        Layout::Read2Write1,
        Layout::Read1Write1,
        Layout::Read3Write1,
        Layout::Optimizer,
        Layout::Counters,
        Layout::Read5Write1,
    ];

    /// The storage bindings, each with its access.
    pub fn storage_bindings(self) -> &'static [(u32, Access)] {
        use Access::*;
        match self {
            Layout::Read2Write1 => &[(1, Read), (2, Read), (3, ReadWrite)],
            Layout::Read1Write1 => &[(1, Read), (2, ReadWrite)],
            Layout::Read3Write1 => &[(1, Read), (2, Read), (3, Read), (4, ReadWrite)],
            Layout::Optimizer => &[(1, ReadWrite), (2, Read), (3, ReadWrite), (4, Read)],
            Layout::Counters => &[(5, ReadWrite)],
            Layout::Read5Write1 => &[
                (1, Read),
                (2, Read),
                (3, Read),
                (4, Read),
                (5, Read),
                (6, ReadWrite),
            ],
        }
    }
}

/// Every compute pipeline, in the order of `PIPELINES`. Each is named after the kernel
/// (and the graph op) it runs, with a suffix where one kernel has several variants
/// (`MatMulNT`, `ReduceToTree`); its WGSL entry point is the same name in snake case.
#[allow(missing_docs)] // each is named after the kernel it runs
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pipe {
    MatMulNN,
    MatMulNT,
    MatMulTN,
    MatMulTT,
    Fill,
    Binary,
    Unary,
    ActGrad,
    ExpandTo,
    CopyCols,
    ReduceToSerial,
    ReduceToTree,
    BceWithLogits,
    BceWithLogitsGrad,
    Accumulate,
    GatherRows,
    ScatterAddRows,
    Collect,
    Sgd,
    Adam,
    AdvanceStep,
    LstmCell,
    GruCell,
    LstmCellGrad,
    GruCellGrad,
    Conv2d,
    Conv2dGradInput,
    Conv2dGradWeight,
    MaxPoolArgmax,
    PoolGather,
    MaxPoolGrad,
    AvgPool,
    AvgPoolGrad,
    Transpose,
    Dropout,
}

/// A pipeline as built: the kernel's [`Pipe`] and, for a matmul, which of
/// [`MATMUL_VARIANTS`] (every other kernel has only the default, 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PipeKey {
    /// The entry point and its constants.
    pub pipe: Pipe,
    /// The matmul variant; 0 for any other pipe.
    pub variant: usize,
}

impl PipeKey {
    /// The pipeline that runs `kernel`, a matmul as `matmul_variant`: the one place a
    /// plan's launch becomes a GPU pipeline (through [`Pipe::of`]).
    pub fn of(kernel: &Kernel, matmul_variant: usize) -> PipeKey {
        let pipe = Pipe::of(kernel);
        PipeKey {
            pipe,
            variant: if pipe.is_matmul() { matmul_variant } else { 0 },
        }
    }

    /// The shader module its entry point is in.
    pub fn module(&self) -> ShaderModule {
        match self.pipe.is_matmul() {
            true => MATMUL_VARIANTS[self.variant].module,
            false => self.pipe.spec().module(),
        }
    }
}

impl From<Pipe> for PipeKey {
    fn from(pipe: Pipe) -> PipeKey {
        PipeKey { pipe, variant: 0 }
    }
}

/// Reductions with fewer outputs than this and at least `TREE_MIN_COUNT` summands each
/// run on `ReduceToTree` (one workgroup per output); others on `ReduceToSerial`.
const TREE_MAX_OUTPUTS: usize = 4096;
const TREE_MIN_COUNT: usize = 256;

impl Pipe {
    /// The pipeline that runs `kernel`: the one place a plan's launch becomes a GPU
    /// entry point (the executor then fills in its record, bindings and grid).
    pub fn of(kernel: &Kernel) -> Pipe {
        match *kernel {
            Kernel::Fill { .. } => Pipe::Fill,
            Kernel::MatMul {
                trans_a, trans_b, ..
            } => Pipe::matmul(trans_a, trans_b),
            Kernel::Binary { .. } => Pipe::Binary,
            Kernel::Unary { .. } => Pipe::Unary,
            Kernel::ActGrad { .. } => Pipe::ActGrad,
            Kernel::ReduceTo {
                in_shape,
                out_shape,
                ..
            } => {
                let n_out = out_shape.iter().product();
                let count = (0..in_shape.len())
                    .filter(|&d| out_shape[d] == 1)
                    .map(|d| in_shape[d])
                    .product();
                Pipe::reduce_to(n_out, count)
            }
            Kernel::ExpandTo { .. } => Pipe::ExpandTo,
            Kernel::BceWithLogits { .. } => Pipe::BceWithLogits,
            Kernel::BceWithLogitsGrad { .. } => Pipe::BceWithLogitsGrad,
            Kernel::GatherRows { .. } => Pipe::GatherRows,
            Kernel::ScatterAddRows { .. } => Pipe::ScatterAddRows,
            Kernel::CopyCols { .. } => Pipe::CopyCols,
            Kernel::Accumulate { .. } => Pipe::Accumulate,
            Kernel::Collect { .. } => Pipe::Collect,
            Kernel::Optimize { optimizer, .. } => match optimizer {
                Optimizer::Sgd { .. } => Pipe::Sgd,
                Optimizer::Adam { .. } | Optimizer::AdamW { .. } => Pipe::Adam,
            },
            Kernel::AdvanceStep { .. } => Pipe::AdvanceStep,
            Kernel::RnnCell { kind, .. } => match kind {
                CellKind::Lstm => Pipe::LstmCell,
                CellKind::Gru => Pipe::GruCell,
            },
            Kernel::RnnCellGrad { kind, .. } => match kind {
                CellKind::Lstm => Pipe::LstmCellGrad,
                CellKind::Gru => Pipe::GruCellGrad,
            },
            Kernel::Conv2d { .. } => Pipe::Conv2d,
            Kernel::Conv2dGradInput { .. } => Pipe::Conv2dGradInput,
            Kernel::Conv2dGradWeight { .. } => Pipe::Conv2dGradWeight,
            // The bias gradient is a reduction: Σ over images and positions.
            Kernel::ConvGradBias { n, o, plane, .. } => Pipe::reduce_to(o, n * plane),
            Kernel::Transpose { .. } => Pipe::Transpose,
            Kernel::MaxPoolArgmax { .. } => Pipe::MaxPoolArgmax,
            Kernel::PoolGather { .. } => Pipe::PoolGather,
            Kernel::MaxPoolGrad { .. } => Pipe::MaxPoolGrad,
            Kernel::AvgPool { .. } => Pipe::AvgPool,
            Kernel::AvgPoolGrad { .. } => Pipe::AvgPoolGrad,
            Kernel::Dropout { .. } => Pipe::Dropout,
        }
    }

    /// The reduction pipeline for `n_out` outputs of `count` summands each.
    fn reduce_to(n_out: usize, count: usize) -> Pipe {
        if n_out < TREE_MAX_OUTPUTS && count >= TREE_MIN_COUNT {
            Pipe::ReduceToTree
        } else {
            Pipe::ReduceToSerial
        }
    }

    /// The matmul pipeline for the transpose flags.
    pub fn matmul(trans_a: bool, trans_b: bool) -> Pipe {
        match (trans_a, trans_b) {
            (false, false) => Pipe::MatMulNN,
            (false, true) => Pipe::MatMulNT,
            (true, false) => Pipe::MatMulTN,
            (true, true) => Pipe::MatMulTT,
        }
    }

    /// Whether it is one of the four matmul pipelines (which come in variants).
    pub fn is_matmul(self) -> bool {
        matches!(
            self,
            Pipe::MatMulNN | Pipe::MatMulNT | Pipe::MatMulTN | Pipe::MatMulTT
        )
    }

    /// Its entry in [`PIPELINES`].
    pub fn spec(self) -> &'static PipelineSpec {
        &PIPELINES[self as usize]
    }
}

/// One compute pipeline: its module, entry point, override constants and bindings.
#[derive(Debug)]
pub struct PipelineSpec {
    /// The pipeline it builds.
    pub pipe: Pipe,
    /// The module it comes from.
    pub family: Family,
    /// The entry point's name.
    pub entry: &'static str,
    /// WGSL `override` constants, by name.
    pub constants: &'static [(&'static str, f64)],
    /// Its bindings.
    pub layout: Layout,
}

impl PipelineSpec {
    /// The shader module its entry point is in.
    pub fn module(&self) -> ShaderModule {
        MODULES[self.family as usize]
    }
}

const fn spec(pipe: Pipe, family: Family, entry: &'static str, layout: Layout) -> PipelineSpec {
    PipelineSpec {
        pipe,
        family,
        entry,
        constants: &[],
        layout,
    }
}

const fn matmul(pipe: Pipe, constants: &'static [(&'static str, f64)]) -> PipelineSpec {
    PipelineSpec {
        pipe,
        family: Family::MatMul,
        entry: "matmul",
        constants,
        layout: Layout::Read3Write1,
    }
}

const fn conv(pipe: Pipe, constants: &'static [(&'static str, f64)]) -> PipelineSpec {
    PipelineSpec {
        pipe,
        family: Family::Conv,
        entry: "conv",
        constants,
        layout: Layout::Read3Write1,
    }
}

/// Every pipeline, indexed by `Pipe as usize`.
pub const PIPELINES: [PipelineSpec; 35] = {
    use Family::{Elementwise, Gather, Loss, Reduce};
    use Layout::{Counters, Read1Write1, Read2Write1, Read3Write1};
    [
        matmul(Pipe::MatMulNN, &[("TRANS_A", 0.0), ("TRANS_B", 0.0)]),
        matmul(Pipe::MatMulNT, &[("TRANS_A", 0.0), ("TRANS_B", 1.0)]),
        matmul(Pipe::MatMulTN, &[("TRANS_A", 1.0), ("TRANS_B", 0.0)]),
        matmul(Pipe::MatMulTT, &[("TRANS_A", 1.0), ("TRANS_B", 1.0)]),
        spec(Pipe::Fill, Elementwise, "fill", Read2Write1),
        spec(Pipe::Binary, Elementwise, "binary", Read2Write1),
        spec(Pipe::Unary, Elementwise, "unary", Read2Write1),
        spec(Pipe::ActGrad, Elementwise, "act_grad", Read2Write1),
        spec(Pipe::ExpandTo, Elementwise, "expand_to", Read2Write1),
        spec(Pipe::CopyCols, Elementwise, "copy_cols", Read2Write1),
        spec(
            Pipe::ReduceToSerial,
            Reduce,
            "reduce_to_serial",
            Read1Write1,
        ),
        spec(Pipe::ReduceToTree, Reduce, "reduce_to_tree", Read1Write1),
        spec(Pipe::BceWithLogits, Loss, "bce_with_logits", Read3Write1),
        spec(
            Pipe::BceWithLogitsGrad,
            Loss,
            "bce_with_logits_grad",
            Read3Write1,
        ),
        spec(Pipe::Accumulate, Loss, "accumulate", Read3Write1),
        spec(Pipe::GatherRows, Gather, "gather_rows", Read3Write1),
        spec(
            Pipe::ScatterAddRows,
            Gather,
            "scatter_add_rows",
            Read3Write1,
        ),
        spec(Pipe::Collect, Gather, "collect", Read3Write1),
        spec(Pipe::Sgd, Family::Optimizer, "sgd", Layout::Optimizer),
        spec(Pipe::Adam, Family::Optimizer, "adam", Layout::Optimizer),
        spec(
            Pipe::AdvanceStep,
            Family::Optimizer,
            "advance_step",
            Counters,
        ),
        spec(
            Pipe::LstmCell,
            Family::Rnn,
            "lstm_cell",
            Layout::Read5Write1,
        ),
        spec(Pipe::GruCell, Family::Rnn, "gru_cell", Layout::Read5Write1),
        spec(
            Pipe::LstmCellGrad,
            Family::Rnn,
            "lstm_cell_grad",
            Layout::Read5Write1,
        ),
        spec(
            Pipe::GruCellGrad,
            Family::Rnn,
            "gru_cell_grad",
            Layout::Read5Write1,
        ),
        conv(Pipe::Conv2d, &[("MODE", CONV_FORWARD as f64)]),
        conv(Pipe::Conv2dGradInput, &[("MODE", CONV_GRAD_INPUT as f64)]),
        conv(Pipe::Conv2dGradWeight, &[("MODE", CONV_GRAD_WEIGHT as f64)]),
        spec(
            Pipe::MaxPoolArgmax,
            Family::Pool,
            "max_pool_argmax",
            Read2Write1,
        ),
        spec(Pipe::PoolGather, Family::Pool, "pool_gather", Read2Write1),
        spec(
            Pipe::MaxPoolGrad,
            Family::Pool,
            "max_pool_grad",
            Read2Write1,
        ),
        spec(Pipe::AvgPool, Family::Pool, "avg_pool", Read2Write1),
        spec(
            Pipe::AvgPoolGrad,
            Family::Pool,
            "avg_pool_grad",
            Read2Write1,
        ),
        spec(Pipe::Transpose, Family::Pool, "transpose", Read2Write1),
        spec(Pipe::Dropout, Gather, "dropout", Read3Write1),
    ]
};

/// Bytes of each launch's uniform record; every params struct (`kernel_params`) fits.
pub const UNIFORM_BYTES: u64 = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_table_is_indexed_by_pipe() {
        for (i, p) in PIPELINES.iter().enumerate() {
            assert_eq!(p.pipe as usize, i, "{:?}", p.pipe);
        }
    }
}
