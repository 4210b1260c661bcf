//! Host side of Bulkhead: builds the images, packs the boot image (modules, manifest, DTB),
//! runs QEMU and the test suites. The `bulkhead` binary is a thin clap front end over these
//! modules; the integration tests (`bulkhead-tests`) call [`qemu::run`] directly.
#![forbid(unsafe_code)]

pub mod bench;
pub mod build;
pub mod ctl;
pub mod deps;
pub mod dtb;
pub mod elf;
pub mod fuzz;
pub mod guest;
pub mod host_tree;
pub mod image;
pub mod machine;
pub mod markers;
pub mod memfit;
pub mod partial_dt;
pub mod passthru;
pub mod paths;
pub mod qemu;
pub mod system;
pub mod testcmd;
pub mod uboot;
pub mod xlcfg;
