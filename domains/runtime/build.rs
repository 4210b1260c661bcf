//! Publishes the runtime's linker script to the domain crates that link it.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:linker_script={dir}/link.ld");
}
