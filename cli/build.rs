//! Embeds the demo store (`testdata/demo`) in the binary, so commands that read traces
//! work from any directory with no set-up.

use std::path::{Path, PathBuf};

fn main() {
    // A position-independent executable has its ~200,000 pointers in read-only data
    // relocated at every start (about 3 ms, most of a short query); a fixed-address
    // executable starts without that.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    // The directory cargo runs this script for (not the one it was compiled in: a
    // build directory may be shared between checkouts).
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let demo = PathBuf::from(manifest).join("../testdata/demo");
    println!("cargo:rerun-if-changed={}", demo.display());
    assert!(
        demo.is_dir(),
        "the demo store {} is missing; it is part of the repository",
        demo.display()
    );
    let mut files = Vec::new();
    collect(&demo, &demo, &mut files);
    files.sort();
    let mut out = String::from(
        "/// Paths relative to the store root and their contents.\npub const FILES: &[(&str, &[u8])] = &[\n",
    );
    for (relative, absolute) in &files {
        println!("cargo:rerun-if-changed={}", absolute.display());
        out.push_str(&format!(
            "    ({relative:?}, include_bytes!({:?})),\n",
            absolute.display().to_string()
        ));
    }
    out.push_str("];\n");
    let target = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("demo_files.rs");
    std::fs::write(target, out).expect("write demo_files.rs");
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read testdata/demo")
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            let relative = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .replace('\\', "/");
            out.push((
                relative,
                std::fs::canonicalize(&path).expect("canonical path"),
            ));
        }
    }
}
