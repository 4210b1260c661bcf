//! Host tests for the blkdom core, over a fake ring, disk and grant table.

mod fakes;
mod handshake;
mod ops;
mod props;
mod ringtests;
mod validation;
