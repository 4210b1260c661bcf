//! The single source of truth for every Bulkhead ABI.
//!
//! The microvisor, every domain and the host tools import these types; nothing else defines a
//! wire format. The crate is `no_std`, has no hardware dependencies and forbids `unsafe`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod addr;
pub mod boot;
pub mod cap;
pub mod control;
pub mod dt;
pub mod ids;
pub mod layout;
pub mod lock_holds;
pub mod manifest;
pub mod mgmt;
pub mod psci;
pub mod xen;
