//! The Bulkhead EL2 core: CPU, stage-2 memory, vGICv3, timers, capabilities.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
