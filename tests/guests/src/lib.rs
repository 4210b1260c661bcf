//! Adversarial and measurement micro-guests.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
