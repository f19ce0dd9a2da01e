//! The first pass of two-pass connected-component labelling (Rosenfeld & Pfaltz 1966; with
//! union-find equivalences as in Wu, Otoo & Suzuki 2009, "Optimizing two-pass connected-component
//! labeling algorithms"): a raster scan that gives every foreground voxel a provisional label and
//! records which provisional labels touch.
//!
//! Multilabel: a neighbour joins a voxel only if it has the same value. Among the backward
//! neighbours, two that are adjacent to each other and share the value were already united when
//! the later one was scanned, so once a neighbour matches, every neighbour adjacent to it is
//! skipped (a bit-mask form of the decision trees of Wu et al.): in 26-connectivity a match with
//! the voxel straight below ends the search after one comparison.

use super::connectivity::NeighbourTable;
use super::union_find::UnionFind;
use super::LabelValue;
use crate::error::Result;

/// Scans a block of `d` planes of `h × w` (x fastest) and writes provisional labels into
/// `labels`, creating them in `uf` (which holds only the background on entry). Neighbours outside
/// the block are ignored: blocks are joined afterwards by [`merge_seam`]. With `zeroed`, `labels`
/// is known to be all zeros already and background voxels are not written.
pub(crate) fn scan_block<T: LabelValue>(
    input: &[T],
    labels: &mut [u32],
    dims: [usize; 3],
    table: &NeighbourTable,
    uf: &mut UnionFind,
    zeroed: bool,
    op: &'static str,
) -> Result<()> {
    let [d, h, w] = dims;
    assert_eq!(input.len(), d * h * w, "scan_block: input length");
    assert_eq!(labels.len(), d * h * w, "scan_block: labels length");
    // Monomorphise on the neighbour count so that the neighbour loop unrolls.
    match (table.len(), zeroed) {
        (2, _) => scan::<T, 2, false>(input, labels, dims, table, uf, op),
        (3, _) => scan::<T, 3, false>(input, labels, dims, table, uf, op),
        (4, _) => scan::<T, 4, false>(input, labels, dims, table, uf, op),
        (9, _) => scan::<T, 9, false>(input, labels, dims, table, uf, op),
        (13, true) => scan::<T, 13, true>(input, labels, dims, table, uf, op),
        (13, false) => scan::<T, 13, false>(input, labels, dims, table, uf, op),
        (n, _) => unreachable!("no connectivity has {n} backward neighbours"),
    }
}

#[inline(always)]
fn scan<T: LabelValue, const N: usize, const ZEROED: bool>(
    input: &[T],
    labels: &mut [u32],
    [d, h, w]: [usize; 3],
    table: &NeighbourTable,
    uf: &mut UnionFind,
    op: &'static str,
) -> Result<()> {
    let linear: [usize; N] = table.linear[..].try_into().expect("N neighbours");
    let adjacent: [u16; N] = table.adjacent[..].try_into().expect("N neighbours");
    let full: u16 = ((1u32 << N) - 1) as u16;
    let left = table.left;
    let not_left = full & !adjacent[left];
    for z in 0..d {
        for y in 0..h {
            let (zp, yp, yn) = (z > 0, y > 0, y + 1 < h);
            let first = table.outside_mask(zp, yp, yn, false, w > 1);
            let inner = table.outside_mask(zp, yp, yn, true, true);
            let last = table.outside_mask(zp, yp, yn, true, false);
            let row = (z * h + y) * w;
            // Rows where every backward neighbour of voxels 1..w-1 lies inside the block.
            let interior_row = inner == 0 && w > 2;
            for x in 0..w {
                let i = row + x;
                // SAFETY: i < d*h*w = input.len() = labels.len() (asserted by the caller).
                let c = unsafe { *input.get_unchecked(i) };
                if c.is_background() {
                    if !ZEROED {
                        // SAFETY: as above.
                        unsafe { *labels.get_unchecked_mut(i) = 0 };
                    }
                    continue;
                }
                let lab = if interior_row && x > 0 && x + 1 < w {
                    // Interior voxel: compare with all backward neighbours without branching,
                    // then unite one representative of each group of adjacent matches.
                    // SAFETY (both blocks): every backward neighbour of an interior voxel is
                    // inside the block and before voxel i.
                    // Neighbour 0 is adjacent to all others in 26-connectivity (and the most
                    // likely match inside objects): one comparison settles most voxels.
                    let j0 = i - linear[0];
                    if adjacent[0] == full && unsafe { *input.get_unchecked(j0) } == c {
                        let lab = unsafe { *labels.get_unchecked(j0) };
                        unsafe { *labels.get_unchecked_mut(i) = lab };
                        continue;
                    }
                    // The voxel before in the row is the next most likely match; once it
                    // matches, only the neighbours not adjacent to it need a look.
                    let left_matches = unsafe { *input.get_unchecked(i - 1) } == c;
                    let mut matches = 0u16;
                    if left_matches {
                        matches |= 1 << left;
                        let mut r = not_left;
                        while r != 0 {
                            let k = r.trailing_zeros() as usize;
                            let v = unsafe { *input.get_unchecked(i - linear[k]) };
                            matches |= ((v == c) as u16) << k;
                            r &= r - 1;
                        }
                    } else {
                        for (k, &back) in linear.iter().enumerate() {
                            // SAFETY: every backward neighbour of an interior voxel is inside
                            // the block and before voxel i.
                            let v = unsafe { *input.get_unchecked(i - back) };
                            matches |= ((v == c) as u16) << k;
                        }
                    }
                    if matches == 0 {
                        0
                    } else {
                        let k = matches.trailing_zeros() as usize;
                        // SAFETY: as above.
                        let mut lab = unsafe { *labels.get_unchecked(i - linear[k]) };
                        let mut rest = matches & !adjacent[k];
                        while rest != 0 {
                            let k = rest.trailing_zeros() as usize;
                            // SAFETY: as above.
                            let l = unsafe { *labels.get_unchecked(i - linear[k]) };
                            lab = uf.union(lab, l);
                            rest &= !adjacent[k];
                        }
                        lab
                    }
                } else {
                    let mut covered = if x == 0 {
                        first
                    } else if x + 1 == w {
                        last
                    } else {
                        inner
                    };
                    let mut lab = 0u32;
                    for k in 0..N {
                        if covered & (1 << k) == 0 {
                            // SAFETY: a neighbour whose bit is clear lies inside the block (the
                            // outside masks set the bits of all others) and before voxel i, so
                            // 0 <= i - linear[k] < i.
                            let j = i - linear[k];
                            if unsafe { *input.get_unchecked(j) } == c {
                                let l = unsafe { *labels.get_unchecked(j) };
                                lab = if lab == 0 { l } else { uf.union(lab, l) };
                                covered |= adjacent[k];
                                if covered == full {
                                    break;
                                }
                            }
                        }
                    }
                    lab
                };
                let lab = if lab == 0 { uf.make_set(op)? } else { lab };
                // SAFETY: i < labels.len().
                unsafe { *labels.get_unchecked_mut(i) = lab };
            }
        }
    }
    Ok(())
}

/// Unites the labels across the seam between a block's last plane (`prev_*`) and the next
/// block's first plane (`next_*`), both `h × w`. Each block's labels are local; adding its
/// offset moves them into the shared label space of `uf`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn merge_seam<T: LabelValue>(
    prev_input: &[T],
    prev_labels: &[u32],
    prev_offset: u32,
    next_input: &[T],
    next_labels: &[u32],
    next_offset: u32,
    [h, w]: [usize; 2],
    table: &NeighbourTable,
    uf: &mut UnionFind,
) {
    let below: Vec<[i32; 3]> = table.offsets.iter().copied().filter(|o| o[0] < 0).collect();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let c = next_input[i];
            if c.is_background() {
                continue;
            }
            for o in &below {
                let (ny, nx) = (y as i64 + o[1] as i64, x as i64 + o[2] as i64);
                if ny < 0 || nx < 0 || ny >= h as i64 || nx >= w as i64 {
                    continue;
                }
                let j = ny as usize * w + nx as usize;
                if prev_input[j] == c {
                    uf.union(next_labels[i] + next_offset, prev_labels[j] + prev_offset);
                }
            }
        }
    }
}
