//! A small pickle reader: enough of Python's pickle machine to read the files PyTorch's
//! `torch.save` writes for dlsia models, without running any Python code.
//!
//! [`unpickle`] turns a pickle stream into a [`Value`] tree. Containers are shared the way
//! Python shares objects (a dict stored in the memo and filled later is the same dict wherever
//! it is fetched), which networkx graphs rely on. Classes and functions are checked against a
//! fixed list ([`globals`]); an unknown one is an [`crate::Error::UnknownGlobal`].

pub mod globals;
pub mod numpy;
mod value;
mod vm;

pub use value::{Global, Object, Shared, StorageRef, TensorRef, Value};
pub use vm::unpickle;
