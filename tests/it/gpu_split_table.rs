//! Tables larger than one storage binding: the GPU executor splits a row gather's table
//! (and a row scatter's output) by rows into pieces, a launch per piece. With the
//! binding limit forced small (`GpuExecutor::limit_binding_bytes`), the split gathers
//! and scatters must equal the CPU executor's and the unsplit GPU path's bit for bit (a
//! gather copies; the scatter sums each output in the CPU's order), and a whole training
//! run must give the same losses as the unsplit run.

use crate::common;
use common::{context, rng_for, take_turn, train_default_mlp, values};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::{indices_as_words, Executor};
use riskgrad::engine::gpu::executor::MIN_BINDING_BYTES;
use riskgrad::engine::gpu::GpuExecutor;
use riskgrad::engine::ops::gather::GatherKernel;
use riskgrad::engine::plan::{
    InputInfo, Kernel, Launch, ParamLayout, Plan, StateInfo, Storage, TensorRef, STEP_STATE,
};

/// A plan of one gather and one scatter-add over a `rows × cols` table that starts
/// `lead` words into its input (so pieces start off the binding alignment), and the
/// step counter's advance. Reads back: node 0 the gathered batch, node 1 the scattered
/// table.
fn gather_scatter_plan(rows: usize, cols: usize, batch: usize, steps: usize, lead: usize) -> Plan {
    let n = batch * cols;
    let input = |i, offset, len| TensorRef {
        storage: Storage::Input(i),
        offset,
        len,
    };
    let slot = |i, offset, len| TensorRef {
        storage: Storage::Slot(i),
        offset,
        len,
    };
    let table = input(0, lead, rows * cols);
    let perm = input(1, 0, steps * batch);
    let gathered = slot(0, 0, n);
    let scattered = slot(1, lead, rows * cols);
    let step = TensorRef {
        storage: Storage::State(0),
        offset: 0,
        len: 2,
    };
    let kernels = [
        Kernel::Gather(GatherKernel::GatherRows {
            table,
            perm,
            out: gathered,
            batch,
            cols,
        }),
        Kernel::Gather(GatherKernel::ScatterAddRows {
            dy: input(2, 0, n),
            perm,
            out: scattered,
            batch,
            cols,
        }),
        Kernel::AdvanceStep { step, counters: 2 },
    ];
    let info = |name: &str, len| InputInfo {
        name: name.into(),
        len,
    };
    Plan {
        launches: kernels
            .into_iter()
            .map(|kernel| Launch { node: None, kernel })
            .collect(),
        slots: vec![n, lead + rows * cols],
        inputs: vec![
            info("table", lead + rows * cols),
            info("perm", steps * batch),
            info("dy", n),
        ],
        states: vec![StateInfo {
            name: STEP_STATE.into(),
            len: 2,
        }],
        layout: ParamLayout {
            offsets: vec![],
            lens: vec![],
            total: 64,
        },
        opt_state_len: 0,
        locations: [gathered, scattered].into_iter().enumerate().collect(),
    }
}

fn assert_bits_equal(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            g.to_bits(),
            w.to_bits(),
            "{what}: element {i} is {g}, want {w}"
        );
    }
}

#[test]
fn split_row_gather_and_scatter_equal_the_cpu_bit_for_bit() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut rng = rng_for("split_row_gather");
    // Rows and columns that fill no alignment unit evenly; a lead that starts the table
    // mid-unit; a limit of a few KiB, so the table is 3 to 40 pieces.
    for (rows, cols, batch, lead, limit) in [
        (1031, 7, 33, 37, 8192),
        (509, 13, 57, 0, MIN_BINDING_BYTES),
        (3001, 3, 5, 61, 4100),
        (300, 57, 64, 5, 20_000),
    ] {
        let steps = 3;
        let table_bytes = (rows * cols * 4) as u64;
        let what = format!("rows={rows} cols={cols} batch={batch} lead={lead} limit={limit}");
        assert!(
            table_bytes > 3 * limit,
            "{what}: the limit must split the table into 3 pieces or more"
        );
        let plan = gather_scatter_plan(rows, cols, batch, steps, lead);
        let table = values(&mut rng, lead + rows * cols);
        // Rows from every piece, the first and last rows, and repeats.
        let mut perm: Vec<u32> = (0..steps * batch).map(|_| rng.below(rows) as u32).collect();
        // The read-back outputs are the last step's: its window has both end rows.
        let last = perm.len() - 1;
        perm[last] = 0;
        perm[last - 1] = (rows - 1) as u32;
        perm.iter_mut()
            .skip(2)
            .step_by(5)
            .for_each(|p| *p = (rows / 2) as u32);
        let dy = values(&mut rng, batch * cols);

        let mut split = GpuExecutor::new(ctx.clone());
        split.limit_binding_bytes(limit);
        split.set_poison(true);
        let mut whole = GpuExecutor::new(ctx.clone());
        whole.set_poison(true);
        let run = |exec: &mut dyn Executor| run(exec, &plan, &table, &perm, &dy, steps);
        let cpu = run(&mut CpuExecutor::new());
        let split = run(&mut split);
        let whole = run(&mut whole);
        for (k, name) in ["gather", "scatter_add"].iter().enumerate() {
            assert_bits_equal(&format!("{name} split vs CPU, {what}"), &split[k], &cpu[k]);
            assert_bits_equal(
                &format!("{name} unsplit vs CPU, {what}"),
                &whole[k],
                &cpu[k],
            );
        }
    }
}

/// Loads `plan`, writes its inputs, runs its steps from 1 (so the counter moves past
/// the first window) and reads back the gathered batch and the scattered table.
fn run(
    exec: &mut dyn Executor,
    plan: &Plan,
    table: &[f32],
    perm: &[u32],
    dy: &[f32],
    steps: usize,
) -> Vec<Vec<f32>> {
    let h = exec.load(plan.clone()).unwrap();
    exec.write("table", table).unwrap();
    exec.write("perm", &indices_as_words(perm)).unwrap();
    exec.write("dy", dy).unwrap();
    exec.run_from(h, 1, steps - 1).unwrap();
    vec![exec.read_node(h, 0).unwrap(), exec.read_node(h, 1).unwrap()]
}

#[test]
fn a_split_launch_is_timed_as_its_plan_launch() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut gpu = GpuExecutor::new(ctx);
    gpu.limit_binding_bytes(8192);
    let plan = gather_scatter_plan(1031, 7, 33, 2, 37);
    let launches = plan.launches.len();
    let h = gpu.load(plan).unwrap();
    gpu.write("table", &[0.5; 37 + 1031 * 7]).unwrap();
    gpu.write("perm", &indices_as_words(&[5; 66])).unwrap();
    if let Some(times) = gpu.time_launches(h, 0).unwrap() {
        assert_eq!(times.len(), launches, "one time per plan launch");
        assert!(times.iter().all(|(_, t)| t.is_finite() && *t >= 0.0));
    }
}

#[test]
fn a_row_over_the_binding_limit_is_a_clear_error() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut gpu = GpuExecutor::new(ctx);
    gpu.limit_binding_bytes(MIN_BINDING_BYTES);
    let cols = MIN_BINDING_BYTES as usize / 4 + 1;
    let err = gpu
        .load(gather_scatter_plan(2, cols, 1, 1, 0))
        .unwrap_err()
        .to_string();
    // The gathered batch (a row at least) is refused first: either way, before wgpu.
    assert!(err.contains("storage binding limit of 4096 bytes"), "{err}");
}

/// The default MLP trained with its training and validation tables split into pieces
/// gives the same losses and validation AUC, bit for bit, as with each table in one
/// binding.
#[test]
fn training_on_split_tables_equals_training_on_whole_ones() {
    let (ctx, _turn) = gpu_or_skip!();
    let data = riskgrad::data::prepare_bundled(&riskgrad::data::PrepareOptions {
        seed: 3,
        ..riskgrad::data::PrepareOptions::bundled()
    })
    .unwrap();
    let table_bytes = data.train.x.len() as u64 * 4;
    // A third of the table and a bit: 3 pieces for the training table, at least one
    // for the validation table; every other tensor of the plans is far smaller.
    let limit = table_bytes / 3 + 4096;
    let mut split = GpuExecutor::new(ctx.clone());
    split.limit_binding_bytes(limit);
    let a = train_default_mlp(&mut split, 1, 3);
    let b = train_default_mlp(&mut GpuExecutor::new(ctx), 1, 3);
    for (s, w) in a.iter().zip(&b) {
        assert_eq!(s.train_loss.to_bits(), w.train_loss.to_bits(), "loss");
        assert_eq!(
            s.validation.auc.to_bits(),
            w.validation.auc.to_bits(),
            "AUC"
        );
    }
}
