//! The real-time OS domain's core: the kernel state machine (fixed-priority preemptive
//! scheduler, tick-less timer queue, periodic jobs with deadlines and budgets, mutexes with
//! priority inheritance, semaphores, message queues, notifications), latency statistics,
//! the `printk` ring, the shell's commands and the command line. No hardware here: the
//! shell in `main.rs` wires it to the virtual timer, the GIC, thread stacks and the
//! console.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;
pub mod echo;
pub mod kernel;
pub mod log;
pub mod shell;
pub mod stats;

pub use kernel::{Error, Kernel, Op, PeriodicSpec, State, Tid, Wake, IDLE};
