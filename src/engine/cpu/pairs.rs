//! Two matmuls at once. The backward pass of a matmul is two matmuls that read the same
//! gradient and write different tensors (`dA = dZ·Bᵀ`, `dB = Aᵀ·dZ`), and autodiff emits
//! them side by side. On a small machine each is too small to split well across
//! threads (the split's synchronisation costs as much as it saves), but the two run
//! side by side on two threads, each on one, with a single join. Through time this
//! pairs every recurrent step's `dh` product with its weight-gradient product.
//!
//! The executor moves each output buffer out while its kernel runs, so a pair must
//! write two different storages and neither kernel may read the other's output
//! storage at all.

use crate::engine::ops::matmul::MatMulKernel;
use crate::engine::plan::{Kernel, Launch, Storage, TensorRef};

/// The storages a matmul reads.
fn reads(k: &Kernel) -> Vec<Storage> {
    match *k {
        Kernel::MatMul(MatMulKernel { a, b, bias, .. }) => [Some(a), Some(b), bias]
            .into_iter()
            .flatten()
            .map(|t: TensorRef| t.storage)
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether launches `i` and `i + 1` are independent matmuls that may run at once.
fn pairable(first: &Kernel, second: &Kernel) -> bool {
    let (
        Kernel::MatMul(MatMulKernel { out: o1, .. }),
        Kernel::MatMul(MatMulKernel { out: o2, .. }),
    ) = (first, second)
    else {
        return false;
    };
    o1.storage != o2.storage
        && !reads(second).contains(&o1.storage)
        && !reads(first).contains(&o2.storage)
}

/// For each launch, whether it runs together with the next one. Pairs do not overlap:
/// a launch paired with its successor is not also paired with its predecessor.
pub fn plan_pairs(launches: &[Launch]) -> Vec<bool> {
    let mut pairs = vec![false; launches.len()];
    let mut i = 0;
    while i + 1 < launches.len() {
        if pairable(&launches[i].kernel, &launches[i + 1].kernel) {
            pairs[i] = true;
            i += 2;
        } else {
            i += 1;
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::graph::Act;

    fn mm(a: Storage, b: Storage, out: Storage) -> Launch {
        let t = |storage| TensorRef {
            storage,
            offset: 0,
            len: 4,
        };
        Launch {
            node: None,
            kernel: Kernel::MatMul(MatMulKernel {
                a: t(a),
                b: t(b),
                bias: None,
                out: t(out),
                m: 2,
                n: 2,
                k: 2,
                trans_a: false,
                trans_b: false,
                act: Act::Identity,
            }),
        }
    }

    #[test]
    fn only_independent_neighbours_pair() {
        use Storage::*;
        // dA and dB of one product: pair. A chain (the second reads the first): no.
        let launches = [
            mm(Slot(0), Params, Slot(1)),
            mm(Slot(2), Slot(0), Slot(3)),
            mm(Slot(1), Params, Slot(4)),
            mm(Slot(4), Params, Slot(5)),
        ];
        assert_eq!(plan_pairs(&launches), vec![true, false, false, false]);
        // Writing the same storage (two gradients in the packed buffer): no.
        assert_eq!(
            plan_pairs(&[mm(Slot(0), Slot(1), Grads), mm(Slot(0), Slot(2), Grads)]),
            vec![false, false]
        );
        // The second writes what the first reads: no.
        assert_eq!(
            plan_pairs(&[mm(Slot(0), Slot(1), Slot(2)), mm(Slot(3), Slot(4), Slot(1))]),
            vec![false, false]
        );
        // Three independent ones: the first two pair, the third runs alone.
        assert_eq!(
            plan_pairs(&[
                mm(Slot(0), Params, Slot(1)),
                mm(Slot(0), Params, Slot(2)),
                mm(Slot(0), Params, Slot(3))
            ]),
            vec![true, false, false]
        );
    }
}
