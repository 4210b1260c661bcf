//! Host tests for the netdom core, over fake ring pages, grants and uplink.

mod batches;
mod fakes;
mod handshake;
mod paths;
mod props;
mod restart;
mod resume;
