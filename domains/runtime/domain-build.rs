//! Build script shared by every Rust domain: links the bare-metal binary with the linker
//! script the runtime publishes (target builds only; host builds are plain test binaries).
fn main() {
    let script = std::env::var("DEP_BULKHEAD_RUNTIME_LINKER_SCRIPT")
        .expect("bulkhead-runtime is a dependency and publishes its linker script");
    println!("cargo:rerun-if-changed={script}");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-T{script}");
    }
}
