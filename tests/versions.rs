//! One version everywhere: `gs_version()`, the crate (Cargo.toml), the Python package
//! (pyproject.toml, `gostack.__version__`, the loader's compatible major.minor), the soname of the
//! built library (`libgostack.so.<major>`), what `make install` installs, and CHANGELOG.md's latest
//! entry. Bump them together; this test names the one that was forgotten.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::process::Command;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const MAJOR: &str = env!("CARGO_PKG_VERSION_MAJOR");
const MINOR: &str = env!("CARGO_PKG_VERSION_MINOR");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// The first `"..."` on the first line of `text` that starts with `prefix`.
fn quoted_after(text: &str, prefix: &str, file: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("{file}: no line starting with {prefix:?}"));
    line.split('"').nth(1).unwrap_or_else(|| panic!("{file}: no quoted value in {line:?}")).to_string()
}

#[test]
fn gs_version_is_the_crate_version() {
    // SAFETY: gs_version returns a pointer to a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(gostack::abi::gs_version()) };
    assert_eq!(v.to_str().unwrap(), VERSION);
}

#[test]
fn python_package_has_the_crate_version() {
    let pyproject = read("python/pyproject.toml");
    assert_eq!(quoted_after(&pyproject, "version", "python/pyproject.toml"), VERSION, "python/pyproject.toml");
    let init = read("python/gostack/__init__.py");
    assert_eq!(quoted_after(&init, "__version__", "python/gostack/__init__.py"), VERSION, "gostack.__version__");
    let loader = read("python/gostack/_ffi.py");
    let line = loader
        .lines()
        .find(|l| l.starts_with("COMPATIBLE_VERSION"))
        .expect("python/gostack/_ffi.py: COMPATIBLE_VERSION");
    let want = format!("({MAJOR}, {MINOR})");
    assert!(line.contains(&want), "_ffi.COMPATIBLE_VERSION should be {want}: {line}");
}

#[test]
fn changelog_has_an_entry_for_this_version() {
    let changelog = read("CHANGELOG.md");
    let first = changelog.lines().find(|l| l.starts_with("## ")).expect("CHANGELOG.md: no '## ' entry");
    assert!(first.contains(&format!("[{VERSION}]")), "CHANGELOG.md's latest entry is {first:?}, not [{VERSION}]");
}

/// The cdylib that `cargo test` built next to this executable (see tests/c_tests.rs).
fn built_library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [deps.to_path_buf(), deps.parent().unwrap().to_path_buf()]
        .into_iter()
        .map(|d| d.join("libgostack.so"))
        .find(|p| p.is_file())
        .expect("libgostack.so next to the test executable")
}

fn soname(lib: &Path) -> String {
    let out = Command::new("readelf").arg("-d").arg(lib).output().expect("run readelf (binutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line =
        text.lines().find(|l| l.contains("(SONAME)")).unwrap_or_else(|| panic!("{} has no SONAME", lib.display()));
    line.split('[').nth(1).and_then(|s| s.split(']').next()).unwrap().to_string()
}

#[test]
fn soname_is_the_crate_major() {
    let lib = built_library();
    assert_eq!(soname(&lib), format!("libgostack.so.{MAJOR}"), "{}", lib.display());
    // build.rs's link for programs linked against the build tree.
    let link = lib.with_file_name(format!("libgostack.so.{MAJOR}"));
    assert_eq!(std::fs::read_link(&link).ok(), Some(PathBuf::from("libgostack.so")), "{}", link.display());
}

#[test]
fn make_installs_this_version() {
    let out =
        match Command::new("make").args(["-s", "--no-print-directory", "print-version"]).current_dir(repo()).output() {
            Ok(out) => out,
            Err(e) => {
                eprintln!("make not found ({e}): skipping");
                return;
            }
        };
    assert!(out.status.success(), "make print-version: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), VERSION);
}
