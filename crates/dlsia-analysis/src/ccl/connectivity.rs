//! Connectivities and the table of already-visited ("backward") neighbours a raster scan looks at.

use serde::{Deserialize, Serialize};

/// Which neighbours touch: 4 or 8 in 2D images, 6, 18 or 26 in 3D volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Connectivity {
    /// 2D: pixels sharing an edge.
    Four,
    /// 2D: pixels sharing an edge or a corner.
    Eight,
    /// 3D: voxels sharing a face.
    Six,
    /// 3D: voxels sharing a face or an edge.
    Eighteen,
    /// 3D: voxels sharing a face, an edge or a corner.
    TwentySix,
}

impl Connectivity {
    /// Whether this connectivity is for 2D images (`Four`, `Eight`).
    pub fn is_2d(self) -> bool {
        matches!(self, Self::Four | Self::Eight)
    }

    /// The number of neighbours of an interior pixel or voxel (4, 8, 6, 18 or 26).
    pub fn neighbour_count(self) -> usize {
        match self {
            Self::Four => 4,
            Self::Eight => 8,
            Self::Six => 6,
            Self::Eighteen => 18,
            Self::TwentySix => 26,
        }
    }

    /// Whether the offset `(dz, dy, dx)` (each in -1..=1, not all zero) joins two voxels.
    pub fn connects(self, dz: i32, dy: i32, dx: i32) -> bool {
        let l1 = dz.abs() + dy.abs() + dx.abs();
        if l1 == 0 || dz.abs() > 1 || dy.abs() > 1 || dx.abs() > 1 {
            return false;
        }
        match self {
            Self::Four => dz == 0 && l1 == 1,
            Self::Eight => dz == 0,
            Self::Six => l1 == 1,
            Self::Eighteen => l1 <= 2,
            Self::TwentySix => true,
        }
    }

    /// The connectivity's backward neighbour offsets `(dz, dy, dx)`: those a raster scan
    /// (x fastest, then y, then z) has visited before the current voxel.
    pub fn backward_offsets(self) -> Vec<[i32; 3]> {
        let mut out = Vec::new();
        for dz in -1..=0 {
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let backward = dz < 0 || (dz == 0 && (dy < 0 || (dy == 0 && dx < 0)));
                    if backward && self.connects(dz, dy, dx) {
                        out.push([dz, dy, dx]);
                    }
                }
            }
        }
        out
    }
}

/// Bits saying which boundary a backward neighbour needs to exist.
const NEEDS_Z_PREV: u8 = 1;
const NEEDS_Y_PREV: u8 = 2;
const NEEDS_Y_NEXT: u8 = 4;
const NEEDS_X_PREV: u8 = 8;
const NEEDS_X_NEXT: u8 = 16;

/// The backward neighbours of one connectivity, ordered for the scan, with the masks that let the
/// scan skip neighbours already known to share a set with a matched one.
#[derive(Debug, Clone)]
pub(crate) struct NeighbourTable {
    /// Offsets `(dz, dy, dx)` in scan order.
    pub offsets: Vec<[i32; 3]>,
    /// `linear[k]`: how far back in the buffer neighbour `k` lies (`dz*h*w + dy*w + dx`, negated).
    pub linear: Vec<usize>,
    /// `adjacent[k]`: bit set of the neighbours adjacent to neighbour `k` (itself included).
    /// Two adjacent backward neighbours with the same value were already united when the later
    /// of them was scanned, so matching one makes checking the other unnecessary.
    pub adjacent: Vec<u16>,
    /// `needs[k]`: which boundaries neighbour `k` needs (the `NEEDS_*` bits).
    needs: Vec<u8>,
    /// Index of the neighbour just before in the row, `(0, 0, -1)`.
    pub left: usize,
}

impl NeighbourTable {
    /// Builds the table for a plane of `h` rows by `w` columns.
    pub fn new(connectivity: Connectivity, h: usize, w: usize) -> Self {
        let mut offsets = connectivity.backward_offsets();
        let adj = |a: &[i32; 3], b: &[i32; 3]| {
            connectivity.connects(a[0] - b[0], a[1] - b[1], a[2] - b[2])
        };
        // Scan order: the neighbour adjacent to the most others first (the voxel straight below
        // in 26-connectivity is adjacent to all twelve others), then the nearest in memory.
        let cover = |a: &[i32; 3]| offsets_cover(&connectivity.backward_offsets(), a, adj);
        offsets.sort_by_key(|o| {
            let dist = -(o[0] as i64 * (h * w) as i64 + o[1] as i64 * w as i64 + o[2] as i64);
            (std::cmp::Reverse(cover(o)), dist)
        });
        let linear = offsets
            .iter()
            .map(|o| {
                (-(o[0] as i64 * (h * w) as i64 + o[1] as i64 * w as i64 + o[2] as i64)) as usize
            })
            .collect();
        let adjacent = offsets
            .iter()
            .map(|a| {
                offsets.iter().enumerate().fold(0u16, |m, (j, b)| {
                    if a == b || adj(a, b) {
                        m | (1 << j)
                    } else {
                        m
                    }
                })
            })
            .collect();
        let needs = offsets
            .iter()
            .map(|o| {
                let mut n = 0;
                if o[0] < 0 {
                    n |= NEEDS_Z_PREV;
                }
                if o[1] < 0 {
                    n |= NEEDS_Y_PREV;
                }
                if o[1] > 0 {
                    n |= NEEDS_Y_NEXT;
                }
                if o[2] < 0 {
                    n |= NEEDS_X_PREV;
                }
                if o[2] > 0 {
                    n |= NEEDS_X_NEXT;
                }
                n
            })
            .collect();
        let left = offsets
            .iter()
            .position(|o| *o == [0, 0, -1])
            .expect("every connectivity joins row neighbours");
        Self {
            offsets,
            linear,
            adjacent,
            needs,
            left,
        }
    }

    /// The number of backward neighbours.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Bit set of the neighbours that lie outside the block for a voxel whose missing sides are
    /// given (e.g. `z_prev == false` on the block's first plane).
    pub fn outside_mask(
        &self,
        z_prev: bool,
        y_prev: bool,
        y_next: bool,
        x_prev: bool,
        x_next: bool,
    ) -> u16 {
        let mut missing = 0u8;
        if !z_prev {
            missing |= NEEDS_Z_PREV;
        }
        if !y_prev {
            missing |= NEEDS_Y_PREV;
        }
        if !y_next {
            missing |= NEEDS_Y_NEXT;
        }
        if !x_prev {
            missing |= NEEDS_X_PREV;
        }
        if !x_next {
            missing |= NEEDS_X_NEXT;
        }
        self.needs.iter().enumerate().fold(
            0u16,
            |m, (k, &n)| if n & missing != 0 { m | (1 << k) } else { m },
        )
    }
}

fn offsets_cover(
    all: &[[i32; 3]],
    a: &[i32; 3],
    adj: impl Fn(&[i32; 3], &[i32; 3]) -> bool,
) -> usize {
    all.iter().filter(|b| *b != a && adj(a, b)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backward_neighbour_counts_are_half_the_neighbourhood() {
        for c in [
            Connectivity::Four,
            Connectivity::Eight,
            Connectivity::Six,
            Connectivity::Eighteen,
            Connectivity::TwentySix,
        ] {
            assert_eq!(c.backward_offsets().len() * 2, c.neighbour_count(), "{c:?}");
        }
    }

    #[test]
    fn straight_below_comes_first_in_26_connectivity() {
        let t = NeighbourTable::new(Connectivity::TwentySix, 5, 7);
        assert_eq!(t.offsets[0], [-1, 0, 0]);
        assert_eq!(t.linear[0], 35);
        assert_eq!(t.adjacent[0], (1 << 13) - 1);
    }

    #[test]
    fn outside_mask_drops_the_right_neighbours() {
        let t = NeighbourTable::new(Connectivity::Six, 4, 4);
        // On the first plane of a block only the two in-plane neighbours remain.
        let m = t.outside_mask(false, true, true, true, true);
        let remaining: Vec<_> = (0..t.len())
            .filter(|k| m & (1 << k) == 0)
            .map(|k| t.offsets[k])
            .collect();
        assert_eq!(remaining.len(), 2);
        assert!(remaining.iter().all(|o| o[0] == 0));
    }
}
