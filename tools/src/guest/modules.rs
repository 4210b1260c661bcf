//! Picking kernel modules for the initramfs: which files, in which load order, decompressed.
//!
//! Dependencies come from `modules.dep` when the tree has one (depmod's output: `path: dep
//! dep…`, paths relative to `/lib/modules/<version>/`). Debian's kernel packages do not ship
//! it (their postinst runs depmod), so otherwise the same map is built from each needed
//! module's own `.modinfo` `depends=` field, which modpost computes at build time from the
//! same symbol references depmod resolves.
//! Module names compare with `-` and `_` equal, as the kernel does.

use super::GuestError;
use anyhow::{Context, Result};
use object::read::elf::ElfFile64;
use object::{Endianness, Object, ObjectSection};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Module file (relative path) to the files of its direct dependencies.
pub type DepMap = BTreeMap<String, Vec<String>>;

/// Suffixes a module file may carry, longest first.
const SUFFIXES: [&str; 4] = [".ko.xz", ".ko.zst", ".ko.gz", ".ko"];

/// Parses `modules.dep`; blank and `#` lines are skipped.
pub fn parse_modules_dep(text: &str) -> DepMap {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|line| {
            let (module, deps) = line.split_once(':')?;
            let deps = deps.split_whitespace().map(str::to_owned).collect();
            Some((module.trim().to_owned(), deps))
        })
        .collect()
}

/// The module name of a file: `kernel/drivers/block/xen-blkfront.ko.xz` → `xen-blkfront`.
pub fn module_name(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    SUFFIXES
        .iter()
        .find_map(|s| base.strip_suffix(s))
        .unwrap_or(base)
}

/// The path a module is stored under in the initramfs: compression suffix dropped.
pub fn plain_path(path: &str) -> String {
    match SUFFIXES.iter().find_map(|s| path.strip_suffix(s)) {
        Some(stem) => format!("{stem}.ko"),
        None => path.to_owned(),
    }
}

/// Whether two module names are the same module (`-` and `_` are interchangeable).
pub fn same_module(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.replace('-', "_");
    norm(a) == norm(b)
}

/// The file of module `name` among `paths`.
pub fn find<'a>(paths: impl IntoIterator<Item = &'a String>, name: &str) -> Option<&'a str> {
    paths
        .into_iter()
        .map(String::as_str)
        .find(|p| same_module(module_name(p), name))
}

/// Whether `modules.builtin` (one path per line) lists module `name`.
pub fn is_builtin(modules_builtin: &str, name: &str) -> bool {
    modules_builtin
        .lines()
        .any(|l| same_module(module_name(l.trim()), name))
}

/// `roots` (module files) and everything they need, each after its dependencies.
pub fn load_order(deps: &DepMap, roots: &[&str]) -> Result<Vec<String>, GuestError> {
    fn visit(
        deps: &DepMap,
        module: &str,
        open: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) -> Result<(), GuestError> {
        if order.iter().any(|m| m == module) {
            return Ok(());
        }
        if !open.insert(module.to_owned()) {
            return Err(GuestError::ModuleCycle {
                module: module_name(module).to_owned(),
            });
        }
        for dep in deps.get(module).into_iter().flatten() {
            visit(deps, dep, open, order)?;
        }
        open.remove(module);
        order.push(module.to_owned());
        Ok(())
    }
    let mut order = Vec::new();
    for root in roots {
        visit(deps, root, &mut BTreeSet::new(), &mut order)?;
    }
    Ok(order)
}

/// The names in a module's `.modinfo` `depends=` field (empty if it has none).
pub fn modinfo_depends(module: &[u8]) -> Result<Vec<String>> {
    let elf = ElfFile64::<Endianness>::parse(module).context("not an ELF64 kernel module")?;
    let Some(section) = elf.section_by_name(".modinfo") else {
        return Ok(Vec::new());
    };
    let info = section.data().context("reading .modinfo")?;
    Ok(info
        .split(|&b| b == 0)
        .filter_map(|field| field.strip_prefix(b"depends="))
        .flat_map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect())
}

/// A module file's contents, decompressed if its name says so.
pub fn read_module(path: &Path) -> Result<Vec<u8>> {
    let raw = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path.to_string_lossy();
    if name.ends_with(".ko.xz") {
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut raw.as_slice(), &mut out)
            .map_err(|e| anyhow::anyhow!("decompressing {}: {e}", path.display()))?;
        Ok(out)
    } else if name.ends_with(".ko.gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .with_context(|| format!("decompressing {}", path.display()))?;
        Ok(out)
    } else if name.ends_with(".ko") {
        Ok(raw)
    } else {
        Err(GuestError::UnsupportedCompression {
            path: path.to_path_buf(),
        }
        .into())
    }
}

/// Every module file under `dir`, relative to it (for the `.modinfo` fallback).
fn module_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(entries) = fs::read_dir(dir.join(&rel)) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = rel.join(entry.file_name());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else {
                let path = path.to_string_lossy().into_owned();
                if SUFFIXES.iter().any(|s| path.ends_with(s)) {
                    found.push(path);
                }
            }
        }
    }
    found.sort();
    found
}

/// The dependency map of `dir` (`/lib/modules/<version>` of the extracted tree), covering at
/// least `names` and what they need. Names missing from it are the caller's to report.
pub fn dep_map(dir: &Path, names: &[&str]) -> Result<DepMap> {
    let dep_file = dir.join("modules.dep");
    if dep_file.is_file() {
        let text = fs::read_to_string(&dep_file)
            .with_context(|| format!("reading {}", dep_file.display()))?;
        return Ok(parse_modules_dep(&text));
    }
    let files = module_files(dir);
    let mut map = DepMap::new();
    let mut todo: Vec<String> = names
        .iter()
        .filter_map(|n| find(&files, n).map(str::to_owned))
        .collect();
    while let Some(module) = todo.pop() {
        if map.contains_key(&module) {
            continue;
        }
        let mut deps = Vec::new();
        for dep in modinfo_depends(&read_module(&dir.join(&module))?)
            .with_context(|| format!("reading {module}"))?
        {
            let file = find(&files, &dep).ok_or_else(|| GuestError::ModuleNotFound {
                module: dep.clone(),
                dir: dir.to_path_buf(),
            })?;
            deps.push(file.to_owned());
            todo.push(file.to_owned());
        }
        map.insert(module, deps);
    }
    Ok(map)
}
