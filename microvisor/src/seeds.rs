//! The randomness each Linux guest's device tree carries (`/chosen/rng-seed`, 32 bytes, and
//! `/chosen/kaslr-seed`), as a boot loader gives it to a kernel booted natively: without it
//! a guest on a CPU without `RNDR` (a Cortex-A53 board) boots with its kernel at a fixed
//! address and its random pool unseeded.
//!
//! The microvisor never hands its own sources on. They key a ChaCha20 stream, one block
//! of it per guest build: the boot loader's seeds (read from the host tree at boot) and,
//! where the CPU has FEAT_RNG, 32 bytes of `RNDR`, XORed into one key, so either source
//! alone keeps the key secret. The nonce is the build's sequence number, so no two builds
//! (a restart in place included) get the same seeds. With neither source there is no key,
//! and guests get no seeds rather than predictable ones.
#![forbid(unsafe_code)]

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;

/// What one guest's tree gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestSeed {
    /// `/chosen/rng-seed`.
    pub rng: [u8; 32],
    /// `/chosen/kaslr-seed`.
    pub kaslr: u64,
}

/// The key guests' seeds are drawn from, and how many builds drew from it.
#[derive(Clone)]
pub struct Seeds {
    key: [u8; 32],
    builds: u64,
}

impl core::fmt::Debug for Seeds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Seeds { .. }")
    }
}

/// Folds byte strings into 32 bytes (byte `i` of the input XORed into byte `i % 32`);
/// `None` if there were no bytes at all.
pub fn fold<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut any = false;
    for (i, b) in parts.into_iter().flatten().enumerate() {
        out[i % 32] ^= b;
        any = true;
    }
    any.then_some(out)
}

/// Zeroes the boot loader's seeds in the host tree `blob` once they are read (`spans`:
/// offset and length of each value, [`crate::platform::Platform::seed_spans`]), as Linux
/// wipes its own tree's: the microvisor keeps that tree for its whole life, and no later
/// bug reading it should find them. A span outside the tree is left alone.
pub fn wipe(blob: &mut [u8], spans: &[Option<(usize, usize)>]) {
    for &(at, len) in spans.iter().flatten() {
        if let Some(value) = at.checked_add(len).and_then(|end| blob.get_mut(at..end)) {
            value.fill(0);
        }
    }
}

impl Seeds {
    /// A key from the boot loader's randomness and the CPU's, whichever exist.
    pub fn new(boot: Option<[u8; 32]>, cpu: Option<[u8; 32]>) -> Option<Self> {
        let mut key = [0u8; 32];
        for src in [boot, cpu].into_iter().flatten() {
            for (k, b) in key.iter_mut().zip(src) {
                *k ^= b;
            }
        }
        (boot.is_some() || cpu.is_some()).then_some(Self { key, builds: 0 })
    }

    /// What keys the seeds, for the boot log, given which sources exist.
    pub fn describe(boot: bool, cpu: bool) -> &'static str {
        match (boot, cpu) {
            (true, true) => "keyed from the boot loader's rng-seed and RNDR",
            (true, false) => "keyed from the boot loader's rng-seed",
            (false, true) => "keyed from RNDR",
            (false, false) => "none (no rng-seed from the boot loader, no RNDR)",
        }
    }

    /// The next build's seeds (no two builds of one boot get the same).
    pub fn draw(&mut self) -> GuestSeed {
        self.builds += 1;
        self.for_build(self.builds)
    }

    /// The seeds of build number `build`.
    fn for_build(&self, build: u64) -> GuestSeed {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&build.to_le_bytes());
        let mut out = [0u8; 40];
        ChaCha20::new(&self.key.into(), &nonce.into()).apply_keystream(&mut out);
        let mut rng = [0u8; 32];
        rng.copy_from_slice(&out[..32]);
        let mut kaslr = [0u8; 8];
        kaslr.copy_from_slice(&out[32..]);
        GuestSeed {
            rng,
            kaslr: u64::from_le_bytes(kaslr),
        }
    }
}

#[cfg(test)]
#[path = "seeds_tests.rs"]
mod tests;
