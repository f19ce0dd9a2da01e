//! [`Batches`]: where the trainer gets its batches, epoch after epoch.
//!
//! A [`DataLoader`] is one; so is a fixed `Vec<Batch>` (same batches in the same order every
//! epoch). The trainer asks for the batches of epoch `e` with the stream number
//! `mix_seed(run seed, e)`, so that the run's seed together with the loader's own seed fixes the
//! order and the augmentation of every epoch, and a resumed run sees the same batches as an
//! uninterrupted one.

use dlsia_data::{Batch, DataLoader, Dataset};

use crate::error::Result;

/// A source of batches, one pass per call.
pub trait Batches: Sync {
    /// Batches in one pass.
    fn num_batches(&self) -> usize;
    /// The batches of one pass; `stream` picks the pass's order and augmentation (the same
    /// stream gives the same batches).
    fn batches(&self, stream: u64) -> Box<dyn Iterator<Item = Result<Batch>> + '_>;
}

impl<D: Dataset + 'static> Batches for DataLoader<D> {
    fn num_batches(&self) -> usize {
        self.len()
    }

    fn batches(&self, stream: u64) -> Box<dyn Iterator<Item = Result<Batch>> + '_> {
        Box::new(self.epoch(stream).map(|b| b.map_err(Into::into)))
    }
}

impl Batches for Vec<Batch> {
    fn num_batches(&self) -> usize {
        self.len()
    }

    fn batches(&self, _stream: u64) -> Box<dyn Iterator<Item = Result<Batch>> + '_> {
        Box::new(self.iter().cloned().map(Ok))
    }
}

impl Batches for [Batch] {
    fn num_batches(&self) -> usize {
        self.len()
    }

    fn batches(&self, _stream: u64) -> Box<dyn Iterator<Item = Result<Batch>> + '_> {
        Box::new(self.iter().cloned().map(Ok))
    }
}
