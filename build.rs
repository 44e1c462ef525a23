//! Compiles the shipped filters (`filters/*.toml`) and their samples (`tests/samples/*.toml`)
//! into the binary, so a fresh build works from a checkout with no install step.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn list(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().and_then(|s| s.to_str()) == Some("toml") {
                let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                out.push((name, fs::canonicalize(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn table(name: &str, items: &[(String, PathBuf)]) -> String {
    let mut s = format!("pub static {name}: &[(&str, &str)] = &[\n");
    for (n, p) in items {
        s.push_str(&format!(
            "    ({n:?}, include_str!({:?})),\n",
            p.display().to_string()
        ));
    }
    s.push_str("];\n");
    s
}

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let filters = root.join("filters");
    let samples = root.join("tests/samples");
    println!("cargo:rerun-if-changed={}", filters.display());
    println!("cargo:rerun-if-changed={}", samples.display());
    let f = list(&filters);
    let s = list(&samples);
    for (_, p) in f.iter().chain(s.iter()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let code = table("BUILTIN_FILTERS", &f) + &table("BUILTIN_SAMPLES", &s);
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("builtin.rs");
    fs::write(out, code).unwrap();
}
