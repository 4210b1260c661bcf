//! Physical memory management: the frame allocator (a bitmap, seeded at boot from the
//! boot-time range list), domain RAM maps, and the translation-table builder.

pub mod boot_ranges;
pub mod frames;
pub mod pagetable;
pub mod ram;
