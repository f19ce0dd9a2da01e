//! Union-find over provisional labels, linking to the smaller root so that every label's
//! parent is never larger than the label itself; that makes the final renumbering one
//! forward sweep.

use crate::error::{Error, Result};

/// A disjoint-set forest over labels `0..len()`; label 0 is the background and stays alone.
#[derive(Debug, Clone)]
pub(crate) struct UnionFind {
    pub parent: Vec<u32>,
}

impl UnionFind {
    /// A forest holding only the background label 0.
    pub fn new() -> Self {
        Self { parent: vec![0] }
    }

    /// The number of labels, background included.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// A fresh label in a set of its own.
    #[inline]
    pub fn make_set(&mut self, op: &'static str) -> Result<u32> {
        let l = self.parent.len();
        if l >= u32::MAX as usize {
            return Err(Error::TooManyLabels {
                op,
                limit: u32::MAX as u64 - 1,
            });
        }
        self.parent.push(l as u32);
        Ok(l as u32)
    }

    /// The root of `x`'s set, halving the path on the way.
    #[inline]
    pub fn find(&mut self, mut x: u32) -> u32 {
        loop {
            let p = self.parent[x as usize];
            if p == x {
                return x;
            }
            let gp = self.parent[p as usize];
            self.parent[x as usize] = gp;
            x = gp;
        }
    }

    /// Joins the sets of `a` and `b`; returns the new root (the smaller of the two roots).
    #[inline]
    pub fn union(&mut self, a: u32, b: u32) -> u32 {
        if a == b {
            return a;
        }
        let ra = self.find(a);
        let rb = self.find(b);
        if ra < rb {
            self.parent[rb as usize] = ra;
            ra
        } else {
            self.parent[ra as usize] = rb;
            rb
        }
    }

    /// Appends another forest's labels `1..` shifted by `offset` (which must equal `self.len() - 1`).
    pub fn append_shifted(&mut self, other: &UnionFind) {
        let offset = (self.parent.len() - 1) as u32;
        self.parent
            .extend(other.parent[1..].iter().map(|&p| p + offset));
    }

    /// Final labels: roots are numbered `1, 2, …` in increasing label order (so in raster order of
    /// their first voxel) and every label maps to its root's number. `keep(root)` can drop a
    /// set (it then maps to 0). Returns the table and the number of kept sets.
    pub fn renumber(&self, mut keep: impl FnMut(usize) -> bool) -> (Vec<u32>, u32) {
        let mut table = vec![0u32; self.parent.len()];
        let mut next = 0u32;
        for i in 1..self.parent.len() {
            let p = self.parent[i] as usize;
            if p == i {
                if keep(i) {
                    next += 1;
                    table[i] = next;
                }
            } else {
                // p < i: its entry is final already.
                table[i] = table[p];
            }
        }
        (table, next)
    }

    /// Makes every label point straight at its root (the parent-never-larger invariant makes one
    /// forward sweep enough).
    pub fn flatten(&mut self) {
        for i in 1..self.parent.len() {
            let p = self.parent[i] as usize;
            self.parent[i] = self.parent[p];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renumbering_follows_first_appearance_and_honours_keep() {
        let mut uf = UnionFind::new();
        for _ in 0..6 {
            uf.make_set("t").unwrap();
        }
        uf.union(5, 2);
        uf.union(6, 5);
        uf.union(4, 1);
        let (t, n) = uf.renumber(|_| true);
        assert_eq!(n, 3);
        assert_eq!(t, vec![0, 1, 2, 3, 1, 2, 2]);
        let (t, n) = uf.renumber(|r| r != 2);
        assert_eq!(n, 2);
        assert_eq!(t, vec![0, 1, 0, 2, 1, 0, 0]);
    }

    #[test]
    fn flatten_points_to_roots() {
        let mut uf = UnionFind::new();
        for _ in 0..4 {
            uf.make_set("t").unwrap();
        }
        uf.union(4, 3);
        uf.union(3, 2);
        uf.union(2, 1);
        uf.flatten();
        assert_eq!(uf.parent, vec![0, 1, 1, 1, 1]);
    }
}
