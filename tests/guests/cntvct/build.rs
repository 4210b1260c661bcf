//! Links `cntvct` as a static, non-PIE Linux executable with `link.ld` (target builds only;
//! a host build is a plain binary so that the formatting can be unit-tested).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=link.ld");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{dir}/link.ld");
        // A fixed-address ELF (ET_EXEC) that Linux maps as is: no interpreter, no relocations.
        println!("cargo:rustc-link-arg-bins=--no-pie");
        println!("cargo:rustc-link-arg-bins=-static");
        // It goes into every initramfs: keep the symbols, drop the DWARF (700 KB of it).
        println!("cargo:rustc-link-arg-bins=--strip-debug");
    }
}
