//! Turning a strided view of a storage into contiguous row-major bytes, with bounds checks.

/// Number of elements of `shape`, or `None` on overflow.
pub fn numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// Whether every element of the view lies inside a storage of `storage_numel` elements.
pub fn fits(storage_numel: usize, offset: usize, shape: &[usize], stride: &[usize]) -> bool {
    if shape.len() != stride.len() {
        return false;
    }
    if shape.contains(&0) {
        return true; // no element is read
    }
    let last = shape.iter().zip(stride).try_fold(offset, |acc, (&d, &s)| {
        (d - 1).checked_mul(s).and_then(|x| acc.checked_add(x))
    });
    last.is_some_and(|l| l < storage_numel)
}

/// The view's elements, contiguous. `storage` holds the elements the view indexes into;
/// the caller has checked [`fits`] and that `numel(shape) * elsize` is affordable.
/// Returns `None` if the view does not fit after all.
pub fn gather(
    storage: &[u8],
    elsize: usize,
    offset: usize,
    shape: &[usize],
    stride: &[usize],
) -> Option<Vec<u8>> {
    let storage_numel = storage.len() / elsize.max(1);
    if !fits(storage_numel, offset, shape, stride) {
        return None;
    }
    let n = numel(shape)?;
    if n == 0 {
        return Some(Vec::new());
    }
    if is_contiguous(shape, stride) {
        let start = offset.checked_mul(elsize)?;
        return storage
            .get(start..start.checked_add(n.checked_mul(elsize)?)?)
            .map(<[u8]>::to_vec);
    }
    // Size-1 dimensions never move the index: without them, dims <= log2(n).
    let (shape, stride): (Vec<usize>, Vec<usize>) =
        shape.iter().zip(stride).filter(|(&d, _)| d != 1).unzip();
    let mut out = Vec::with_capacity(n.checked_mul(elsize)?);
    let mut index = vec![0usize; shape.len()];
    for _ in 0..n {
        // In bounds: `fits` checked the largest index without overflow.
        let at = index
            .iter()
            .zip(&stride)
            .fold(offset, |acc, (&i, &s)| acc + i * s);
        out.extend_from_slice(storage.get(at * elsize..(at + 1) * elsize)?);
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Some(out)
}

/// Row-major contiguity, ignoring the stride of size-1 dimensions.
fn is_contiguous(shape: &[usize], stride: &[usize]) -> bool {
    let mut expected = 1usize;
    for (&d, &s) in shape.iter().zip(stride).rev() {
        if d != 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(d);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(v: &[u8]) -> Vec<u8> {
        v.to_vec()
    }

    #[test]
    fn transposed_view() {
        // storage 0..6 as a 2x3 matrix; its transpose is 3x2 with stride (1, 3)
        let s = bytes(&[0, 1, 2, 3, 4, 5]);
        assert_eq!(
            gather(&s, 1, 0, &[3, 2], &[1, 3]).unwrap(),
            [0, 3, 1, 4, 2, 5]
        );
    }

    #[test]
    fn offset_and_bounds() {
        let s = bytes(&[0, 1, 2, 3, 4, 5]);
        assert_eq!(gather(&s, 1, 4, &[2], &[1]).unwrap(), [4, 5]);
        assert!(gather(&s, 1, 5, &[2], &[1]).is_none());
        assert!(!fits(6, 0, &[2, 2], &[usize::MAX, 1]));
        assert!(fits(0, 99, &[0, 5], &[1, 1]));
    }

    #[test]
    fn broadcast_stride_zero() {
        let s = bytes(&[7, 0, 8, 0]);
        assert_eq!(gather(&s, 2, 0, &[3], &[0]).unwrap(), [7, 0, 7, 0, 7, 0]);
    }
}
