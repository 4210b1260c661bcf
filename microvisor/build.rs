//! Passes the microvisor's linker script, and links the bare-metal binary as a static
//! position-independent executable: the boot loader may put it anywhere, and its entry code
//! applies the relocations the linker lists (see `link.ld`, `src/reloc.rs`). `-z notext`
//! lets read-only data hold such relocations: the MMU is off while they are applied, so
//! nothing is read-only yet.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed={dir}/link.ld");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/link.ld");
        for arg in ["-pie", "--no-dynamic-linker", "-z", "notext"] {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
}
