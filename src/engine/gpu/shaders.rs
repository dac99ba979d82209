//! The WGSL sources (one file per kernel family in `shaders/`) and the table of compute
//! pipelines built from them. `tests/it/shaders_validate.rs` checks this table with naga.

use crate::engine::graph::Optimizer;
use crate::engine::ops;
use crate::engine::plan::Kernel;

/// A shader module as compiled: the family's file with `common.wgsl` (the shared
/// constants and helpers) prepended, and before it a [`Precision`]'s header.
#[derive(Clone, Copy, Debug)]
pub struct ShaderModule {
    /// The file's name in `shaders/`.
    pub file: &'static str,
    /// The WGSL text, without the precision header.
    pub source: &'static str,
    /// Uses subgroup operations: compiled on a device with `Features::SUBGROUP` only.
    /// (No `enable subgroups;`: naga 30 refuses the directive and takes the built-ins
    /// without it, checking the device's capability instead.)
    pub needs_subgroups: bool,
}

impl ShaderModule {
    /// The module's text as a device compiles it in `precision`. (The bench modules,
    /// [`BENCH_MODULES`], declare their own types: they are compiled from `source`.)
    pub fn wgsl(&self, precision: Precision) -> String {
        format!("{}{}", precision.header(), self.source)
    }
}

/// The type engine kernels store tensors in (DESIGN.md, flow item 8): every binding that
/// holds a tensor is `array<Store>`, and kernels compute in f32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    /// `Store` is f32.
    F32,
    /// `Store` is f16 (the adapter needs `SHADER_F16`).
    F16,
}

impl Precision {
    /// The lines put before every engine module: the `Store` alias (and, for f16, the
    /// `enable` directive WGSL wants before any declaration).
    pub fn header(self) -> &'static str {
        match self {
            Precision::F32 => "alias Store = f32;\n",
            Precision::F16 => "enable f16;\nalias Store = f16;\n",
        }
    }

    /// Bytes of one `Store` element.
    pub fn store_bytes(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::F16 => 2,
        }
    }

    /// `data` as `Store` elements' bytes (f16: rounded to nearest even), zero-padded to
    /// a multiple of `align` bytes (a buffer write needs 4).
    pub fn encode_padded(self, data: &[f32], align: usize) -> Vec<u8> {
        let mut bytes: Vec<u8> = match self {
            Precision::F32 => bytemuck::cast_slice(data).to_vec(),
            Precision::F16 => data
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
        };
        bytes.resize(bytes.len().next_multiple_of(align), 0);
        bytes
    }

    /// `Store` elements' bytes as f32.
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            Precision::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Precision::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        }
    }
}

macro_rules! with_common {
    ($($file:literal),+) => {
        concat!(
            include_str!("../../../shaders/common.wgsl"),
            $("\n", include_str!(concat!("../../../shaders/", $file))),+
        )
    };
}

/// A GEMM variant's module: `common.wgsl`, the variant's `const` lines (named in its
/// kernel file's header), the parts the kernel shares with its family (a matmul's
/// operands file, matmul_operands.wgsl to read them a value at a time or
/// matmul_operands_vec4.wgsl as vec4, then matmul_common.wgsl: the record, the other
/// bindings and the loads; a convolution's conv_common.wgsl: its record, bindings,
/// operand gathers and store), then the kernel's file.
macro_rules! gemm_module {
    ($kernel:literal, $consts:literal, $($part:literal),+) => {
        ShaderModule {
            file: $kernel,
            source: concat!(
                include_str!("../../../shaders/common.wgsl"),
                "\n// This variant's constants.\n",
                $consts,
                "\n",
                $(include_str!(concat!("../../../shaders/", $part)),)+
                include_str!(concat!("../../../shaders/", $kernel))
            ),
            needs_subgroups: false,
        }
    };
}

/// A matmul variant: its name, its tile (rows x columns of the output a workgroup
/// computes), its kernel file and `const` lines, and how it reads its operands:
/// `scalar` (matmul_operands.wgsl, a value at a time) or `vec4` (matmul_operands_vec4.wgsl,
/// and `vec4_operands` set so that the tuner runs it only where offsets allow). One token
/// picks both, so the operands file and the flag cannot disagree. Neither test-only,
/// split-K nor using subgroups: an entry that is says so with struct-update syntax.
macro_rules! matmul_variant {
    ($name:literal, $rows:literal x $cols:literal, $kernel:literal, $consts:literal, scalar) => {
        matmul_variant!(@ $name, $rows, $cols, $kernel, $consts, "matmul_operands.wgsl", false)
    };
    ($name:literal, $rows:literal x $cols:literal, $kernel:literal, $consts:literal, vec4) => {
        matmul_variant!(@ $name, $rows, $cols, $kernel, $consts, "matmul_operands_vec4.wgsl", true)
    };
    (@ $name:literal, $rows:literal, $cols:literal, $kernel:literal, $consts:literal, $operands:literal, $vec4:literal) => {
        GemmVariant {
            name: $name,
            tile_rows: $rows,
            tile_cols: $cols,
            module: gemm_module!($kernel, $consts, $operands, "matmul_common.wgsl"),
            test_only: false,
            vec4_operands: $vec4,
            split_k: false,
        }
    };
}

/// One configuration of a GEMM kernel (the matmul, or the convolution's implicit GEMM):
/// its own shader module (the kernel's file with the variant's constants), built into
/// the kernel's pipelines (a matmul's four transpose flags, a convolution's three
/// products). Every variant but a split-K one sums over k in index order, so gives the
/// default's bits; which runs a launch is the autotuner's choice (`tune`).
#[derive(Clone, Copy, Debug)]
pub struct GemmVariant {
    /// A short name for logs and `riskgrad bench tune`.
    pub name: &'static str,
    /// Rows of the output tile a workgroup computes.
    pub tile_rows: u32,
    /// Columns of the output tile a workgroup computes.
    pub tile_cols: u32,
    /// The compiled module.
    pub module: ShaderModule,
    /// A deliberately bad variant, a candidate only when a test asks for it, to prove
    /// the autotuner drops it: `broken-for-tests` adds 1 to every output (it
    /// disagrees), `unbuildable-for-tests` asks for workgroups of 64 x 64 invocations,
    /// past what a device offers (1,024 on lavapipe and most GPUs), so no pipeline
    /// builds.
    pub test_only: bool,
    /// Reads its operands as vec4s (matmul_operands_vec4.wgsl): a candidate only on a
    /// device whose storage offsets are aligned to 16 bytes, so that every binding
    /// holds its tensor in whole vec4s.
    pub vec4_operands: bool,
    /// Splits the sum over k among invocations (matmul_splitk.wgsl): not the default's
    /// order of the sum, so not its bits; a candidate only for skinny products
    /// (`GemmShape::skinny`), chosen only where clearly faster (`tune::SPLIT_K_MARGIN`).
    pub split_k: bool,
}

impl GemmVariant {
    /// Uses subgroup operations (its module's `needs_subgroups`): a candidate only on a
    /// device with `Features::SUBGROUP`.
    pub fn needs_subgroups(&self) -> bool {
        self.module.needs_subgroups
    }
}

/// Every matmul variant; index 0 is the default (what `--tune off` runs and what the
/// autotuner checks the others against: square tiles of square workgroups, the shape a
/// hardware GPU wants). The autotuner measures them in this order, so the others come
/// likeliest winner first (on lavapipe `wide128x64-vec4`, 16 x 8 outputs an invocation
/// and its operands read as vec4, won most products with 64 or more columns and the
/// square ones, `wide64x64-vec4` the weight gradients of 64 rows; `rows16-cols32-vec4`,
/// a workgroup of 8 invocations, one SIMD register's lanes, most of the narrow ones;
/// then the same three reading a value at a time, for adapters whose storage offsets
/// are not aligned to 16 bytes and for operands that do not start on a vec4;
/// `splitk8x8-subgroup` and `splitk8x8-by4`, for a hardware GPU's skinny weight
/// gradients (the first summing across a subgroup's lanes, where the device has subgroup
/// operations, the second through workgroup memory); `tile32-direct` the
/// vectors): when its budget stops a shape part-way, the ones measured are the ones
/// most worth it. The wide kernel's 128 x 32 and 64 x 32 tiles were tried and never won
/// (BENCHMARKS.md).
pub const MATMUL_VARIANTS: [GemmVariant; 15] = [
    matmul_variant!(
        "tile64-staged",
        64 x 64,
        "matmul.wgsl",
        "const MM_SIDE: u32 = 16u; const MM_STAGED: bool = true; const MM_BROKEN: bool = false;",
        scalar
    ),
    matmul_variant!(
        "wide128x64-vec4",
        128 x 64,
        "matmul_wide.wgsl",
        "const MW_X: u32 = 8u; const MW_Y: u32 = 8u; const MW_K: u32 = 16u;",
        vec4
    ),
    matmul_variant!(
        "wide64x64-vec4",
        64 x 64,
        "matmul_wide.wgsl",
        "const MW_X: u32 = 8u; const MW_Y: u32 = 4u; const MW_K: u32 = 8u;",
        vec4
    ),
    matmul_variant!(
        "rows16-cols32-vec4",
        16 x 32,
        "matmul_rows.wgsl",
        "const MR_WG: u32 = 8u; const MR_VECS: u32 = 4u;",
        vec4
    ),
    matmul_variant!(
        "wide128x64",
        128 x 64,
        "matmul_wide.wgsl",
        "const MW_X: u32 = 8u; const MW_Y: u32 = 8u; const MW_K: u32 = 16u;",
        scalar
    ),
    matmul_variant!(
        "wide64x64",
        64 x 64,
        "matmul_wide.wgsl",
        "const MW_X: u32 = 8u; const MW_Y: u32 = 4u; const MW_K: u32 = 8u;",
        scalar
    ),
    matmul_variant!(
        "rows16-cols32",
        16 x 32,
        "matmul_rows.wgsl",
        "const MR_WG: u32 = 8u; const MR_VECS: u32 = 4u;",
        scalar
    ),
    GemmVariant {
        name: "splitk8x8-subgroup",
        tile_rows: 8,
        tile_cols: 8,
        module: ShaderModule {
            needs_subgroups: true,
            ..gemm_module!(
                "matmul_subgroup.wgsl",
                "const SG_SIDE: u32 = 8u;",
                "matmul_operands.wgsl",
                "matmul_common.wgsl"
            )
        },
        test_only: false,
        vec4_operands: false,
        split_k: true,
    },
    GemmVariant {
        split_k: true,
        ..matmul_variant!(
            "splitk8x8-by4",
            8 x 8,
            "matmul_splitk.wgsl",
            "const SK_SIDE: u32 = 8u; const SK_SPLITS: u32 = 4u;",
            scalar
        )
    },
    matmul_variant!(
        "tile32-direct",
        32 x 32,
        "matmul.wgsl",
        "const MM_SIDE: u32 = 8u; const MM_STAGED: bool = false; const MM_BROKEN: bool = false;",
        scalar
    ),
    matmul_variant!(
        "rows16-cols64",
        16 x 64,
        "matmul_rows.wgsl",
        "const MR_WG: u32 = 16u; const MR_VECS: u32 = 4u;",
        scalar
    ),
    matmul_variant!(
        "tile64-direct",
        64 x 64,
        "matmul.wgsl",
        "const MM_SIDE: u32 = 16u; const MM_STAGED: bool = false; const MM_BROKEN: bool = false;",
        scalar
    ),
    matmul_variant!(
        "tile32-staged",
        32 x 32,
        "matmul.wgsl",
        "const MM_SIDE: u32 = 8u; const MM_STAGED: bool = true; const MM_BROKEN: bool = false;",
        scalar
    ),
    GemmVariant {
        test_only: true,
        ..matmul_variant!(
            "broken-for-tests",
            64 x 64,
            "matmul.wgsl",
            "const MM_SIDE: u32 = 16u; const MM_STAGED: bool = true; const MM_BROKEN: bool = true;",
            scalar
        )
    },
    GemmVariant {
        test_only: true,
        ..matmul_variant!(
            "unbuildable-for-tests",
            256 x 256,
            "matmul.wgsl",
            "const MM_SIDE: u32 = 64u; const MM_STAGED: bool = false; const MM_BROKEN: bool = false;",
            scalar
        )
    },
];

/// The default variant's index in every GEMM kernel's list ([`MATMUL_VARIANTS`],
/// [`CONV_VARIANTS`]): what `--tune off` runs, and what the tuner checks the others
/// against.
pub const DEFAULT_VARIANT: usize = 0;

/// Every convolution variant; index 0 is the default (conv.wgsl: the default matmul's
/// 64×64 tiles staged through workgroup memory), then the row-uniform layouts of
/// matmul_rows.wgsl (conv_rows.wgsl), which on lavapipe also suit a credit CNN's
/// products of 32 or 64 channel rows.
pub const CONV_VARIANTS: [GemmVariant; 3] = [
    GemmVariant {
        name: "tile64-staged",
        tile_rows: 64,
        tile_cols: 64,
        module: gemm_module!("conv.wgsl", "", "conv_common.wgsl"),
        test_only: false,
        vec4_operands: false,
        split_k: false,
    },
    GemmVariant {
        name: "rows16-cols32",
        tile_rows: 16,
        tile_cols: 32,
        module: gemm_module!(
            "conv_rows.wgsl",
            "const CR_WG: u32 = 8u;",
            "conv_common.wgsl"
        ),
        test_only: false,
        vec4_operands: false,
        split_k: false,
    },
    GemmVariant {
        name: "rows16-cols64",
        tile_rows: 16,
        tile_cols: 64,
        module: gemm_module!(
            "conv_rows.wgsl",
            "const CR_WG: u32 = 16u;",
            "conv_common.wgsl"
        ),
        test_only: false,
        vec4_operands: false,
        split_k: false,
    },
];

/// Every GEMM kernel variant's module, the matmul's then the convolution's (the defaults
/// among them, which are also in [`MODULES`]).
pub fn gemm_variant_modules() -> impl Iterator<Item = &'static ShaderModule> {
    MATMUL_VARIANTS
        .iter()
        .chain(&CONV_VARIANTS)
        .map(|v| &v.module)
}

/// The shared helpers (`common.wgsl`) on their own, for validation.
pub const COMMON: ShaderModule = ShaderModule {
    file: "common.wgsl",
    source: include_str!("../../../shaders/common.wgsl"),
    needs_subgroups: false,
};

/// Every kernel module, indexed by `Family as usize`.
pub const MODULES: [ShaderModule; 12] = [
    MATMUL_VARIANTS[DEFAULT_VARIANT].module,
    ShaderModule {
        file: "elementwise.wgsl",
        source: with_common!("elementwise_params.wgsl", "elementwise.wgsl"),
        needs_subgroups: false,
    },
    ShaderModule {
        file: "reduce.wgsl",
        source: with_common!("reduce.wgsl"),
        needs_subgroups: false,
    },
    ShaderModule {
        file: "loss.wgsl",
        source: with_common!("loss.wgsl"),
        needs_subgroups: false,
    },
    ShaderModule {
        file: "gather.wgsl",
        source: with_common!("gather.wgsl"),
        needs_subgroups: false,
    },
    ShaderModule {
        file: "optimizer.wgsl",
        source: with_common!("optimizer.wgsl"),
        needs_subgroups: false,
    },
    ShaderModule {
        file: "rnn.wgsl",
        source: with_common!("rnn.wgsl"),
        needs_subgroups: false,
    },
    CONV_VARIANTS[DEFAULT_VARIANT].module,
    ShaderModule {
        file: "pool.wgsl",
        source: with_common!("pool.wgsl"),
        needs_subgroups: false,
    },
    ShaderModule {
        file: "rows.wgsl",
        source: with_common!("rows.wgsl"),
        needs_subgroups: false,
    },
    ShaderModule {
        file: "state.wgsl",
        source: with_common!("state.wgsl"),
        needs_subgroups: false,
    },
    ShaderModule {
        file: "copy_vec4.wgsl",
        source: with_common!("elementwise_params.wgsl", "copy_vec4.wgsl"),
        needs_subgroups: false,
    },
];

/// The peak-throughput kernels of `riskgrad bench peak` (fma chains, copy, read): not
/// engine kernels, so not in `MODULES` or `Pipe::all`. The bench builds them on a device
/// of its own; `peak_f16.wgsl` (it enables f16) only where the adapter has SHADER_F16.
/// Neither includes `common.wgsl`. Validated with the rest in
/// `tests/it/shaders_validate.rs`.
pub const BENCH_MODULES: [ShaderModule; 2] = [
    ShaderModule {
        file: "peak.wgsl",
        source: include_str!("../../../shaders/peak.wgsl"),
        needs_subgroups: false,
    },
    ShaderModule {
        file: "peak_f16.wgsl",
        source: include_str!("../../../shaders/peak_f16.wgsl"),
        needs_subgroups: false,
    },
];

/// A kernel family: one WGSL file each, named like the variant.
#[allow(missing_docs)] // the variants are the files' names
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    RowProgram,
    State,
    CopyVec4,
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
    /// params (rw), grads, optimizer state (rw), step counters, the f32 master
    /// parameters (rw, at binding 6; f16 only)
    Optimizer,
    /// the step counters (rw), at binding 5
    Counters,
    /// recurrent cells: five inputs, one output
    Read5Write1,
    /// the row program: its operations, the arena (rw), the parameters, two tables, the
    /// index list and the step counters
    RowProgram,
}

impl Layout {
    /// Every layout, for building their bind group layouts up front.
    pub const ALL: [Layout; 7] = [
        Layout::Read2Write1,
        Layout::Read1Write1,
        Layout::Read3Write1,
        Layout::Optimizer,
        Layout::Counters,
        Layout::Read5Write1,
        Layout::RowProgram,
    ];

    /// The storage bindings, each with its access.
    pub fn storage_bindings(self) -> &'static [(u32, Access)] {
        use Access::*;
        match self {
            Layout::Read2Write1 => &[(1, Read), (2, Read), (3, ReadWrite)],
            Layout::Read1Write1 => &[(1, Read), (2, ReadWrite)],
            Layout::Read3Write1 => &[(1, Read), (2, Read), (3, Read), (4, ReadWrite)],
            Layout::Optimizer => &[
                (1, ReadWrite),
                (2, Read),
                (3, ReadWrite),
                (4, Read),
                (6, ReadWrite),
            ],
            Layout::Counters => &[(5, ReadWrite)],
            Layout::Read5Write1 => &[
                (1, Read),
                (2, Read),
                (3, Read),
                (4, Read),
                (5, Read),
                (6, ReadWrite),
            ],
            Layout::RowProgram => &[
                (1, Read),
                (2, ReadWrite),
                (3, Read),
                (4, Read),
                (5, Read),
                (6, Read),
                (7, Read),
            ],
        }
    }
}

/// One compute pipeline as a table row: its name, the module and entry point it is built
/// from, the WGSL `override` constants it sets, and its bindings. A pipe is named after
/// the kernel (and the graph op) it runs, with a suffix where one kernel has several
/// pipes (`matmul_nt`, `reduce_to_tree`); its entry point is that name unless one entry
/// serves several pipes through constants (`matmul`, `conv`).
#[derive(Debug)]
pub struct PipelineSpec {
    /// The pipe's name, unique among pipes (a test checks).
    pub name: &'static str,
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

/// A compute pipeline: a reference to its [`PipelineSpec`], declared as a constant
/// beside the kernel it runs (the core kernels' here, an op family's in its
/// `engine::ops` module). Pipes are equal when their names are.
#[derive(Clone, Copy)]
pub struct Pipe(pub &'static PipelineSpec);

/// A [`Pipe`] constant: `pipe!(name, Family, Layout)` for an entry point of the pipe's
/// name, or `pipe!(name, Family, Layout, entry, [("CONST", value), ..])` (where the name
/// may be any constant `&str` expression, `concat!` included).
#[macro_export]
#[doc(hidden)]
macro_rules! pipe {
    ($name:literal, $family:ident, $layout:ident) => {
        $crate::engine::gpu::shaders::Pipe(&$crate::engine::gpu::shaders::PipelineSpec {
            name: $name,
            family: $crate::engine::gpu::shaders::Family::$family,
            entry: $name,
            constants: &[],
            layout: $crate::engine::gpu::shaders::Layout::$layout,
        })
    };
    ($name:expr, $family:ident, $layout:ident, $entry:literal, [$(($k:literal, $v:expr)),*]) => {
        $crate::engine::gpu::shaders::Pipe(&$crate::engine::gpu::shaders::PipelineSpec {
            name: $name,
            family: $crate::engine::gpu::shaders::Family::$family,
            entry: $entry,
            constants: &[$(($k, $v as f64)),*],
            layout: $crate::engine::gpu::shaders::Layout::$layout,
        })
    };
}

impl PartialEq for Pipe {
    fn eq(&self, other: &Pipe) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Pipe {}

impl std::hash::Hash for Pipe {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state)
    }
}

impl std::fmt::Debug for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

#[allow(missing_docs)] // each is named after the kernel it runs
impl Pipe {
    pub const MATMUL_NN: Pipe = pipe!(
        "matmul_nn",
        MatMul,
        Read3Write1,
        "matmul",
        [("TRANS_A", 0), ("TRANS_B", 0)]
    );
    pub const MATMUL_NT: Pipe = pipe!(
        "matmul_nt",
        MatMul,
        Read3Write1,
        "matmul",
        [("TRANS_A", 0), ("TRANS_B", 1)]
    );
    pub const MATMUL_TN: Pipe = pipe!(
        "matmul_tn",
        MatMul,
        Read3Write1,
        "matmul",
        [("TRANS_A", 1), ("TRANS_B", 0)]
    );
    pub const MATMUL_TT: Pipe = pipe!(
        "matmul_tt",
        MatMul,
        Read3Write1,
        "matmul",
        [("TRANS_A", 1), ("TRANS_B", 1)]
    );
    pub const FILL: Pipe = pipe!("fill", Elementwise, Read2Write1);
    pub const COPY_COLS: Pipe = pipe!("copy_cols", Elementwise, Read2Write1);
    /// `copy_cols` in vec4s, for copies aligned to them ([`Pipe::of`]).
    pub const COPY_COLS_VEC4: Pipe = pipe!("copy_cols_vec4", CopyVec4, Read1Write1);
    pub const ACCUMULATE: Pipe = pipe!("accumulate", State, Read3Write1);
    pub const COLLECT: Pipe = pipe!("collect", State, Read3Write1);
    pub const SGD: Pipe = pipe!("sgd", Optimizer, Optimizer);
    pub const ADAM: Pipe = pipe!("adam", Optimizer, Optimizer);
    pub const ADVANCE_STEP: Pipe = pipe!("advance_step", Optimizer, Counters);
    /// A step's row launches as one dispatch (`gpu::row_program`), in workgroups of 8
    /// invocations (one 256-bit register's lanes on lavapipe) or 64 (a hardware GPU's
    /// warp or two): the autotuner times both against the launches one by one. No plan
    /// launch of its own, so not in `Pipe::of`.
    pub const ROW_PROGRAMS: [Pipe; 2] = [
        pipe!(
            "row_program_w8",
            RowProgram,
            RowProgram,
            "row_program",
            [("RP_WG", 8)]
        ),
        pipe!(
            "row_program_w64",
            RowProgram,
            RowProgram,
            "row_program",
            [("RP_WG", 64)]
        ),
    ];

    /// The four matmul pipes, in the order `matmul(trans_a, trans_b)` indexes them.
    pub const MATMUL: [Pipe; 4] = [
        Pipe::MATMUL_NN,
        Pipe::MATMUL_NT,
        Pipe::MATMUL_TN,
        Pipe::MATMUL_TT,
    ];

    /// The pipes of the core kernels (those of `plan::Kernel` outside the op families).
    const CORE: [Pipe; 10] = [
        Pipe::FILL,
        Pipe::COPY_COLS,
        Pipe::COPY_COLS_VEC4,
        Pipe::ACCUMULATE,
        Pipe::COLLECT,
        Pipe::SGD,
        Pipe::ADAM,
        Pipe::ADVANCE_STEP,
        Pipe::ROW_PROGRAMS[0],
        Pipe::ROW_PROGRAMS[1],
    ];

    /// Every pipe the executor can build: the matmul's (which sit here beside their
    /// variants, `MATMUL_VARIANTS`), the core kernels', then each op family's.
    pub fn all() -> Vec<Pipe> {
        [
            &Pipe::MATMUL[..],
            &Pipe::CORE[..],
            ops::broadcast::PIPES,
            ops::conv::PIPES,
            &[ops::dropout::PIPE],
            ops::elementwise::PIPES,
            ops::gather::PIPES,
            ops::loss::PIPES,
            ops::pool::PIPES,
            &ops::rnn::PIPES.concat(),
        ]
        .concat()
    }

    /// Its table row.
    pub fn spec(self) -> &'static PipelineSpec {
        self.0
    }

    /// The pipe's name (unique).
    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// The pipeline that runs `kernel`: the one place a plan's launch becomes a GPU
    /// entry point (the executor then fills in its record, bindings and grid).
    pub fn of(kernel: &Kernel) -> Pipe {
        match *kernel {
            Kernel::Fill { .. } => Pipe::FILL,
            Kernel::MatMul(ref k) => k.pipe(),
            Kernel::Elementwise(ref k) => k.pipe(),
            Kernel::Broadcast(ref k) => k.pipe(),
            // In vec4s (copy_vec4.wgsl) where every column count, start and offset is a
            // multiple of 4, else a value at a time.
            Kernel::CopyCols {
                x,
                out,
                cols,
                src_cols,
                src_start,
                dst_cols,
                dst_start,
                ..
            } => {
                let in_vec4s = [
                    x.offset, out.offset, cols, src_cols, src_start, dst_cols, dst_start,
                ]
                .iter()
                .all(|v| v % 4 == 0);
                if in_vec4s {
                    Pipe::COPY_COLS_VEC4
                } else {
                    Pipe::COPY_COLS
                }
            }
            Kernel::Accumulate { .. } => Pipe::ACCUMULATE,
            Kernel::Collect { .. } => Pipe::COLLECT,
            Kernel::Optimize { optimizer, .. } => match optimizer {
                Optimizer::Sgd { .. } => Pipe::SGD,
                Optimizer::Adam { .. } | Optimizer::AdamW { .. } => Pipe::ADAM,
            },
            Kernel::AdvanceStep { .. } => Pipe::ADVANCE_STEP,
            Kernel::Loss(ref k) => k.pipe(),
            Kernel::Gather(ref k) => k.pipe(),
            Kernel::Dropout(_) => ops::dropout::PIPE,
            Kernel::Rnn(ref k) => k.pipe(),
            Kernel::Conv(ref k) => k.pipe(),
            Kernel::Pool(ref k) => k.pipe(),
        }
    }

    /// The matmul pipeline for the transpose flags.
    pub fn matmul(trans_a: bool, trans_b: bool) -> Pipe {
        Pipe::MATMUL[trans_a as usize * 2 + trans_b as usize]
    }

    /// Where it is in [`Pipe::MATMUL`], for one of the four matmul pipelines (which
    /// come in variants).
    pub fn matmul_index(self) -> Option<usize> {
        Pipe::MATMUL.iter().position(|&p| p == self)
    }

    /// Whether it is one of the four matmul pipelines.
    pub fn is_matmul(self) -> bool {
        self.matmul_index().is_some()
    }

    /// The variants its kernel comes in (the GEMM kernels': the matmul's, the
    /// convolution's implicit GEMM's), or `None` for a kernel of one variant.
    pub fn variants(self) -> Option<&'static [GemmVariant]> {
        if self.is_matmul() {
            Some(&MATMUL_VARIANTS)
        } else if self.spec().family == Family::Conv {
            Some(&CONV_VARIANTS)
        } else {
            None
        }
    }
}

/// A pipeline as built: the kernel's [`Pipe`] and, for a GEMM kernel, which of its
/// variants ([`Pipe::variants`]; every other kernel has only the default, 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PipeKey {
    /// The entry point and its constants.
    pub pipe: Pipe,
    /// The variant, an index into `pipe.variants()`; 0 for any other pipe.
    pub variant: usize,
}

impl PipeKey {
    /// The pipeline that runs `kernel`, a GEMM kernel as `variant`: the one place a
    /// plan's launch becomes a GPU pipeline (through [`Pipe::of`]).
    pub fn of(kernel: &Kernel, variant: usize) -> PipeKey {
        let pipe = Pipe::of(kernel);
        PipeKey {
            pipe,
            variant: if pipe.variants().is_some() {
                variant
            } else {
                0
            },
        }
    }

    /// The shader module its entry point is in.
    pub fn module(&self) -> ShaderModule {
        match self.pipe.variants() {
            Some(variants) => variants[self.variant].module,
            None => self.pipe.spec().module(),
        }
    }

    /// Every pipeline the engine can build: each pipe, in each of its variants.
    pub fn all() -> impl Iterator<Item = PipeKey> {
        Pipe::all().into_iter().flat_map(|pipe| {
            let variants = pipe.variants().map_or(1, |v| v.len());
            (0..variants).map(move |variant| PipeKey { pipe, variant })
        })
    }

    /// The variant's name, for a GEMM kernel's pipe.
    pub fn variant_name(&self) -> Option<&'static str> {
        self.pipe.variants().map(|v| v[self.variant].name)
    }
}

impl From<Pipe> for PipeKey {
    fn from(pipe: Pipe) -> PipeKey {
        PipeKey { pipe, variant: 0 }
    }
}

/// Bytes of each launch's uniform record; every params struct (`kernel_params`) fits.
pub const UNIFORM_BYTES: u64 = 128;

#[cfg(test)]
mod tests {
    use super::Precision;

    #[test]
    fn encoding_pads_to_the_alignment_and_decodes_back() {
        // Values f16 holds exactly, an odd count so f16 needs padding.
        let data = [1.5f32, -0.25, 3.0, 1024.0, -7.125];
        for (precision, align) in [
            (Precision::F32, 16),
            (Precision::F16, 4),
            (Precision::F16, 16),
        ] {
            let bytes = precision.encode_padded(&data, align);
            let used = data.len() * precision.store_bytes();
            assert_eq!(bytes.len(), used.next_multiple_of(align), "{precision:?}");
            assert!(bytes[used..].iter().all(|&b| b == 0), "padding is zeros");
            assert_eq!(precision.decode(&bytes[..used]), data, "{precision:?}");
        }
        // f16 rounds to nearest even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
        let halfway = Precision::F16.encode_padded(&[1.0 + 2f32.powi(-11)], 2);
        assert_eq!(Precision::F16.decode(&halfway), [1.0]);
    }
}
