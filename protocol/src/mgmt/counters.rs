//! The text form backends use to publish counters in xenstore: `key=value` pairs separated
//! by spaces. Shared by block ([`super::VbdCounters`]) and network ([`super::VifCounters`])
//! backends so dom0 reads both the same way.

use alloc::string::String;
use core::fmt::Write;

/// `keys[i]=values[i]` pairs separated by spaces.
pub fn encode(keys: &[&str], values: &[u64]) -> String {
    let mut s = String::new();
    for (k, v) in keys.iter().zip(values) {
        if !s.is_empty() {
            s.push(' ');
        }
        // Writing into a String cannot fail.
        let _ = write!(s, "{k}={v}");
    }
    s
}

/// Reads [`encode`]'s text back into values ordered like `keys`. Unknown keys are skipped
/// (a newer backend may publish more); a malformed pair or value is `None` (the backend is
/// not trusted); absent keys read as 0.
pub fn decode<const N: usize>(text: &str, keys: &[&str; N]) -> Option<[u64; N]> {
    let mut values = [0u64; N];
    for pair in text.split_whitespace() {
        let (k, v) = pair.split_once('=')?;
        let v: u64 = v.parse().ok()?;
        if let Some(i) = keys.iter().position(|known| *known == k) {
            values[i] = v;
        }
    }
    Some(values)
}
