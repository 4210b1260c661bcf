//! Physical memory management: the frame allocator and the translation-table builder.

pub mod frames;
pub mod pagetable;
