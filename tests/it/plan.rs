//! The plan's buffer reuse: liveness must never hand a live buffer to another tensor.

use riskgrad::engine::graph::{backward, Graph, Optimizer};
use riskgrad::engine::plan::{compile, verify, PlanRequest, Storage};
use riskgrad::nn::ModelSpec;

fn training_graph(hidden: &[usize]) -> (Graph, PlanRequest) {
    let mut g = Graph::new();
    let table = g.input("x", &[100, 9]).unwrap();
    let labels = g.input("y", &[100, 1]).unwrap();
    let perm = g.input("perm", &[64]).unwrap();
    let x = g.gather_rows(table, perm, 32).unwrap();
    let y = g.gather_rows(labels, perm, 32).unwrap();
    let logits = ModelSpec::mlp(9, hidden).unwrap().build(&mut g, x).unwrap();
    let loss = g.bce_with_logits(logits, y, 1.0).unwrap();
    let grads = backward(&mut g, loss, &[]).unwrap();
    let grads = (0..g.params.len())
        .map(|p| (p, grads.of(g.param_node(p)).unwrap()))
        .collect();
    let opt = Optimizer::Adam {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
    (
        g,
        PlanRequest {
            loss: Some(loss),
            grads,
            optimizer: Some(opt),
            ..Default::default()
        },
    )
}

#[test]
fn training_plans_reuse_buffers_only_when_dead() {
    for hidden in [&[5][..], &[64, 32], &[7, 33, 1, 12]] {
        let (g, request) = training_graph(hidden);
        let plan = compile(&g, &request).unwrap();
        verify(&g, &plan).unwrap();
        let tensors = plan
            .locations
            .values()
            .filter(|t| matches!(t.storage, Storage::Slot(_)))
            .count();
        assert!(
            plan.slots.len() < tensors,
            "{hidden:?}: {} slots for {tensors} tensors: nothing was reused",
            plan.slots.len()
        );
    }
}

#[test]
fn verify_catches_a_buffer_reused_while_live() {
    let (g, request) = training_graph(&[64, 32]);
    let mut plan = compile(&g, &request).unwrap();
    // Break the plan: give some node's output the slot of a value that is read later.
    let mut broken = false;
    let order: Vec<usize> = plan.launches.iter().filter_map(|l| l.node).collect();
    'search: for (i, &writer) in order.iter().enumerate() {
        for &later in &order[i + 1..] {
            for &input in &g.nodes[later].inputs {
                let (Some(&victim), Some(&out)) =
                    (plan.locations.get(&input), plan.locations.get(&writer))
                else {
                    continue;
                };
                let written_before = order[..i].contains(&input);
                if written_before
                    && victim.storage != out.storage
                    && matches!(
                        (victim.storage, out.storage),
                        (Storage::Slot(_), Storage::Slot(_))
                    )
                    && !g.nodes[later].inputs.contains(&writer)
                {
                    let mut moved = out;
                    moved.storage = victim.storage;
                    plan.locations.insert(writer, moved);
                    broken = true;
                    break 'search;
                }
            }
        }
    }
    assert!(broken, "found a live value to clobber");
    let err = verify(&g, &plan).unwrap_err().to_string();
    assert!(err.contains("which now holds"), "{err}");
}

#[test]
fn gradients_land_in_the_packed_buffer() {
    let (g, request) = training_graph(&[16]);
    let plan = compile(&g, &request).unwrap();
    for (p, node) in &request.grads {
        let at = plan.location(*node).unwrap();
        assert_eq!(at.storage, Storage::Grads);
        assert_eq!(at.offset, plan.layout.offsets[*p]);
        assert_eq!(at.offset % riskgrad::engine::plan::PARAM_ALIGN, 0);
    }
}
