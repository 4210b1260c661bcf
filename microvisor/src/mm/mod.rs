//! Physical memory management: the frame allocator and the translation-table builder.

pub mod boot_ranges;
pub mod frames;
pub mod pagetable;
pub mod ram;
