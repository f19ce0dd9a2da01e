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
/// the block are ignored: blocks are joined afterwards by [`merge_seam`].
pub(crate) fn scan_block<T: LabelValue>(
    input: &[T],
    labels: &mut [u32],
    [d, h, w]: [usize; 3],
    table: &NeighbourTable,
    uf: &mut UnionFind,
    op: &'static str,
) -> Result<()> {
    debug_assert_eq!(input.len(), d * h * w);
    debug_assert_eq!(labels.len(), d * h * w);
    let n = table.len();
    let full: u16 = ((1u32 << n) - 1) as u16;
    let linear = &table.linear[..];
    let adjacent = &table.adjacent[..];
    for z in 0..d {
        for y in 0..h {
            let (zp, yp, yn) = (z > 0, y > 0, y + 1 < h);
            let first = table.outside_mask(zp, yp, yn, false, w > 1);
            let inner = table.outside_mask(zp, yp, yn, true, true);
            let last = table.outside_mask(zp, yp, yn, true, false);
            let row = (z * h + y) * w;
            for x in 0..w {
                let i = row + x;
                let c = input[i];
                if c.is_background() {
                    labels[i] = 0;
                    continue;
                }
                let mut covered = if x == 0 {
                    first
                } else if x + 1 == w {
                    last
                } else {
                    inner
                };
                let mut lab = 0u32;
                let mut k = 0;
                while covered != full && k < n {
                    if covered & (1 << k) == 0 {
                        let j = i - linear[k];
                        if input[j] == c {
                            let l = labels[j];
                            lab = if lab == 0 { l } else { uf.union(lab, l) };
                            covered |= adjacent[k];
                        }
                    }
                    k += 1;
                }
                if lab == 0 {
                    lab = uf.make_set(op)?;
                }
                labels[i] = lab;
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
    let below: Vec<[i32; 3]> = table
        .offsets
        .iter()
        .copied()
        .filter(|o| o[0] < 0)
        .collect();
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
