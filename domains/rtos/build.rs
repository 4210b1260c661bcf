//! Links the bare-metal binary with the runtime's linker script (target builds only).
fn main() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../runtime/link.ld");
    println!("cargo:rerun-if-changed={script}");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let abs = std::fs::canonicalize(script).expect("runtime linker script exists");
        println!("cargo:rustc-link-arg-bins=-T{}", abs.display());
    }
}
