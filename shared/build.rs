//! Compiles the deployed configuration into the library. SAM's Rust builder packages each
//! function as a lone `bootstrap`, so a YAML file beside it never reaches Lambda; compiled in,
//! the same file that runs the local runner runs every function (`AETHERIUM_CONFIG=embedded`).
//! `AETHERIUM_EMBED_CONFIG` names it (.cargo/config.toml sets config/aetherium.yaml); empty or
//! unset embeds nothing.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=AETHERIUM_EMBED_CONFIG");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded-config.yaml");
    let text = match std::env::var("AETHERIUM_EMBED_CONFIG") {
        Ok(path) if !path.is_empty() => {
            println!("cargo:rerun-if-changed={path}");
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("AETHERIUM_EMBED_CONFIG={path} cannot be read: {e}"))
        }
        _ => String::new(),
    };
    std::fs::write(&out, text).expect("write the embedded config");
}
