//! The output folder of a workflow run: a new folder by default, an existing one only with
//! `--force`.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// Creates the folder a run writes into.
///
/// * `dir = Some(path)`: that folder; if it exists and is not empty, an error unless `force`.
/// * `dir = None`: a new folder `runs/<workflow>-<unix seconds>` (with a numeric suffix if that
///   name is taken), so a default run never touches an earlier one.
pub fn prepare_out_dir(dir: Option<&Path>, workflow: &str, force: bool) -> Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let base = PathBuf::from("runs").join(format!("{workflow}-{secs}"));
            let mut candidate = base.clone();
            let mut k = 1;
            while candidate.exists() {
                candidate = PathBuf::from(format!("{}-{k}", base.display()));
                k += 1;
            }
            candidate
        }
    };
    if dir.exists() {
        if !dir.is_dir() {
            bail!("output path {} exists and is not a folder", dir.display());
        }
        let non_empty = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read output folder {}", dir.display()))?
            .next()
            .is_some();
        if non_empty && !force {
            bail!(
                "output folder {} already exists and is not empty; pass --force to write into it, or choose another --out",
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create output folder {}", dir.display()))?;
    Ok(dir)
}

/// Writes `value` as pretty JSON to `dir/name`.
pub fn write_json(dir: &Path, name: &str, value: &impl Serialize) -> Result<PathBuf> {
    let path = dir.join(name);
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(&path, text + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_non_empty_folder_needs_force() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("run");
        assert_eq!(prepare_out_dir(Some(&out), "x", false).unwrap(), out);
        // Empty existing folder: fine.
        prepare_out_dir(Some(&out), "x", false).unwrap();
        std::fs::write(out.join("a.txt"), "1").unwrap();
        let e = prepare_out_dir(Some(&out), "x", false).unwrap_err();
        assert!(e.to_string().contains("--force"), "{e}");
        prepare_out_dir(Some(&out), "x", true).unwrap();
        assert!(out.join("a.txt").exists());
        let file = tmp.path().join("file");
        std::fs::write(&file, "1").unwrap();
        assert!(prepare_out_dir(Some(&file), "x", true).is_err());
    }
}
