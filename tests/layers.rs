//! The layers of src/ go one way (docs/DESIGN.md, lib.rs): a module may use the layers below it,
//! never one above. This test reads every source file and fails on a `crate::<module>` path that
//! points up, so a new upward dependency is caught when it is written, not in review. There are
//! no exceptions: a lower layer that needs something decided above it registers a callback
//! (`base::fatal::set_dump_hook`, `signal::set_fault_hook`), which the higher layer fills in.

use std::path::Path;

/// Bottom to top; modules on one line (the same rank) may not use each other either.
const LAYERS: &[&[&str]] = &[&["arch"], &["base"], &["stack"], &["signal"], &["sched"], &["sync", "embed"], &["abi"]];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a file of src/ belongs to (`src/sched/grow.rs` -> `sched`).
fn module_of(rel: &Path) -> String {
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `crate::name` (or `$crate::name`) in `text`, with the path that follows, outside comments.
fn crate_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let tail = &rest[i + "crate::".len()..];
            let path: String = tail.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            out.push(path);
            rest = tail;
        }
    }
    out
}

#[test]
fn no_layer_uses_a_higher_one() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut bad = Vec::new();
    let mut seen = 0;
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let from = module_of(rel);
        if from == "lib" {
            continue;
        }
        let from_rank = rank(&from).unwrap_or_else(|| panic!("{}: module {from} is not in LAYERS", rel.display()));
        for path in crate_paths(&std::fs::read_to_string(f).unwrap()) {
            let to = path.split("::").next().unwrap_or("").to_string();
            if to.is_empty() || to == from {
                continue;
            }
            seen += 1;
            let to_rank = rank(&to).unwrap_or_else(|| panic!("{}: crate::{to} is not in LAYERS", rel.display()));
            if to_rank < from_rank {
                continue;
            }
            bad.push(format!("{}: {from} uses crate::{path} ({to} is not below {from})", rel.display()));
        }
    }
    assert!(seen > 20, "the scan found only {seen} cross-module paths: is it still reading src/?");
    assert!(bad.is_empty(), "upward dependencies:\n{}", bad.join("\n"));
}

#[test]
fn the_scan_sees_paths() {
    let paths = crate_paths("use crate::sched::grow; // crate::abi in a comment\nlet x = $crate::fatal::throw;");
    assert_eq!(paths, vec!["sched::grow".to_string(), "fatal::throw".to_string()]);
}

/// No Rust panic crosses the C boundary (issue #18 item 3): the body of every `#[no_mangle]`
/// function in src/abi goes through the one wrapper, `abi::export!` (entry checks unless
/// `unchecked`, then catch_unwind), and nothing else in src/abi calls catch_unwind on its own.
#[test]
fn every_export_catches_panics() {
    let abi = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/abi");
    let mut files = Vec::new();
    rust_files(&abi, &mut files);
    let (mut exports, mut bare) = (0, Vec::new());
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        if !f.ends_with("mod.rs") && text.contains("catch_unwind") {
            bare.push(format!("{}: catch_unwind outside abi::export!", f.display()));
        }
        let mut rest = text.as_str();
        while let Some(i) = rest.find("#[no_mangle]") {
            rest = &rest[i + "#[no_mangle]".len()..];
            let sig_end = rest.find('{').expect("an export has a body");
            let name =
                rest[..sig_end].split("fn ").nth(1).and_then(|s| s.split('(').next()).unwrap_or("?").trim().to_string();
            // The body: up to the closing brace at the start of a line.
            let body_start = sig_end + 1;
            let body_len = rest[body_start..].find("\n}").expect("a body ends with '}' on its own line");
            let body = &rest[body_start..body_start + body_len];
            exports += 1;
            // One wrapper for all (abi::export!): the entry checks and catch_unwind.
            if !body.contains("export!(") {
                bare.push(format!("{}: {name}", f.display()));
            }
        }
    }
    assert!(exports >= 45, "found only {exports} exports: is the scan still reading src/abi?");
    assert!(bare.is_empty(), "exports that let a panic cross into C:\n{}", bare.join("\n"));
}
