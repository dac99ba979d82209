//! Shape arithmetic shared by the graph builder and the kernels.

/// Elements of a tensor of `shape`.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Numpy broadcasting: shapes aligned on the right, each pair of sizes equal or one of
/// them 1. `None` when they don't broadcast.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i < rank - a.len() {
            1
        } else {
            a[i - (rank - a.len())]
        };
        let db = if i < rank - b.len() {
            1
        } else {
            b[i - (rank - b.len())]
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Strides (in elements) that read `shape` as if it had been broadcast to `out`:
/// 0 along broadcast axes. Both are padded on the left to `out.len()`.
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let pad = out.len() - shape.len();
    let mut strides = vec![0; out.len()];
    let mut stride = 1;
    for i in (0..shape.len()).rev() {
        strides[pad + i] = if shape[i] == 1 { 0 } else { stride };
        stride *= shape[i];
    }
    strides
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shape(&[4, 3], &[3]), Some(vec![4, 3]));
        assert_eq!(broadcast_shape(&[4, 1], &[1, 5]), Some(vec![4, 5]));
        assert_eq!(broadcast_shape(&[4, 3], &[4]), None);
        assert_eq!(broadcast_strides(&[3], &[4, 3]), vec![0, 1]);
        assert_eq!(broadcast_strides(&[4, 1], &[4, 5]), vec![1, 0]);
    }
}
