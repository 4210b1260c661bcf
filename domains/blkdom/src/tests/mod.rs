//! Host tests for the blkdom core, over a fake ring, disk and grant table.

mod batch;
mod direct;
mod fakes;
mod handshake;
mod ops;
mod persist;
mod props;
mod restart;
mod ringtests;
mod validation;
