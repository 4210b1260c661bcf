//! Host stand-in for the arch layer: the few names host-compiled code reaches for.

/// Counter frequency the host tests assume (QEMU's virt board runs its counter at 62.5 MHz).
pub const fn counter_hz() -> u64 {
    62_500_000
}

/// Host stand-in: the console goes to stderr so test output stays readable.
pub fn write_console(bytes: &[u8]) {
    #[cfg(test)]
    eprint!("{}", String::from_utf8_lossy(bytes));
    #[cfg(not(test))]
    let _ = bytes;
}

/// Host stand-in: waiting for an event is a spin hint (a yield in tests, whose threads
/// share few cores with the lock holder).
pub fn wait_for_event() {
    #[cfg(test)]
    std::thread::yield_now();
    core::hint::spin_loop();
}

/// Host stand-in: there is no one to wake.
pub fn send_event() {}
