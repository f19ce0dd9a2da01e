//! [`TopoDict`]: strict access to a pickled `topo_dict` — every key must be read once, a
//! missing key or a key nobody reads is an error that names it.

use std::collections::BTreeSet;

use crate::error::{format_err, Result};
use crate::pickle::Value;

/// A `topo_dict` being decoded.
pub struct TopoDict {
    architecture: &'static str,
    entries: Vec<(String, Value)>,
    used: BTreeSet<String>,
}

impl TopoDict {
    /// Wraps the `topo_dict` of a file holding the given architecture.
    pub fn new(architecture: &'static str, topo: &Value) -> Result<Self> {
        let mut entries = Vec::new();
        for (k, v) in topo.as_dict("topo_dict")? {
            entries.push((k.as_str("topo_dict key")?, v));
        }
        Ok(TopoDict {
            architecture,
            entries,
            used: BTreeSet::new(),
        })
    }

    /// The keys, in file order.
    pub fn keys(&self) -> Vec<&str> {
        self.entries.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// The context string for errors about `key`.
    pub fn what(&self, key: &str) -> String {
        format!("topo_dict[{key:?}] of a dlsia {}", self.architecture)
    }

    /// The value of `key`, or an error naming the missing key.
    pub fn take(&mut self, key: &str) -> Result<Value> {
        let v = self
            .entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| {
                format_err(
                    format!("topo_dict of a dlsia {}", self.architecture),
                    format!(
                        "missing key `{key}` (keys present: {})",
                        self.keys().join(", ")
                    ),
                )
            })?;
        self.used.insert(key.to_string());
        Ok(v)
    }

    /// A non-negative integer entry.
    pub fn usize(&mut self, key: &str) -> Result<usize> {
        let what = self.what(key);
        self.take(key)?.as_usize(&what)
    }

    /// A number entry.
    pub fn f64(&mut self, key: &str) -> Result<f64> {
        let what = self.what(key);
        self.take(key)?.as_f64(&what)
    }

    /// A tuple of non-negative integers.
    pub fn shape(&mut self, key: &str) -> Result<Vec<usize>> {
        let what = self.what(key);
        self.take(key)?.as_usize_vec(&what)
    }

    /// Checks that every key was read: an unknown key means a dlsia version or architecture this
    /// importer does not know, so it is an error rather than something silently dropped.
    pub fn finish(self) -> Result<()> {
        let unknown: Vec<&str> = self
            .entries
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !self.used.contains(*k))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(format_err(
                format!("topo_dict of a dlsia {}", self.architecture),
                format!(
                    "unexpected key(s) {}: not part of dlsia 0.3.4's {} topology",
                    unknown.join(", "),
                    self.architecture
                ),
            ))
        }
    }
}
