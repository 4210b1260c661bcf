//! Completing the TCP/UDP checksum of a frame whose sender left it blank.
//!
//! Linux's netfront hands over packets with a *partial* checksum (`CHECKSUM_PARTIAL`,
//! flagged `NETTXF_csum_blank`): the checksum field holds whatever the stack left there and
//! a NIC is expected to finish the job. Nothing we forward to (QEMU's user network, another
//! guest's netfront told nothing about it) would, so the switch computes the full checksum
//! in software before the frame leaves: it parses the Ethernet, IPv4 or IPv6 and TCP/UDP
//! headers itself (never trusting offsets from the frontend), and recomputes from zero.
//! A frame it cannot parse is left as it is (the receiver's checksum check then drops it,
//! as it would any corrupt frame).

/// EtherType of IPv4.
const ETH_P_IP: u16 = 0x0800;
/// EtherType of IPv6.
const ETH_P_IPV6: u16 = 0x86DD;
/// IP protocol number of TCP.
const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
const IPPROTO_UDP: u8 = 17;
/// Ethernet header bytes.
const ETH: usize = 14;

/// What [`complete`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The checksum was computed and written.
    Filled,
    /// Not a TCP or UDP packet over IPv4/IPv6 without IPv6 extension headers, or a
    /// fragment: nothing to do.
    NotApplicable,
    /// The headers are truncated or inconsistent: left as it is.
    Malformed,
}

/// Adds `data` as big-endian 16-bit words to a running one's-complement sum.
fn sum_words(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        acc += u64::from(*b) << 8;
    }
    acc
}

/// [`sum_words`] eight bytes at a time: summing a full segment two bytes at a time was a
/// large part of netdom's own work per packet (under `-icount` instructions are time; this
/// raised `bench net` guest to host by about 3%). The one's-complement
/// sum does not depend on byte order (RFC 1071 §2): the 32-bit halves of little-endian
/// 64-bit loads are summed, folded to 16 bits, and byte-swapped into a big-endian word
/// sum. The result folds ([`finish`]) to what [`sum_words`] gives.
fn sum_fast(acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    let mut le: u64 = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // Each step adds less than 2^33: no overflow below 2^31 chunks.
        le += (w & 0xFFFF_FFFF) + (w >> 32);
    }
    let folded = !finish(le);
    // The remainder starts at an even offset, so its words are paired as in `sum_words`.
    sum_words(acc + u64::from(folded.swap_bytes()), chunks.remainder())
}

/// Folds a running sum to 16 bits and complements it.
fn finish(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    !(acc as u16)
}

/// Computes and writes the TCP or UDP checksum of `frame` (an Ethernet frame).
pub fn complete(frame: &mut [u8]) -> Outcome {
    if frame.len() < ETH {
        return Outcome::Malformed;
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let (proto, l4, l4_len, pseudo) = match ethertype {
        ETH_P_IP => {
            let ip = &frame[ETH..];
            if ip.len() < 20 || ip[0] >> 4 != 4 {
                return Outcome::Malformed;
            }
            let ihl = usize::from(ip[0] & 0xF) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            if ihl < 20 || total < ihl || total > ip.len() {
                return Outcome::Malformed;
            }
            // A fragment's checksum covers the whole datagram: not ours to compute.
            let frag = u16::from_be_bytes([ip[6], ip[7]]);
            if frag & 0x3FFF != 0 {
                return Outcome::NotApplicable;
            }
            let proto = ip[9];
            let l4_len = total - ihl;
            let mut pseudo = sum_words(0, &ip[12..20]);
            pseudo += u64::from(proto) + l4_len as u64;
            (proto, ETH + ihl, l4_len, pseudo)
        }
        ETH_P_IPV6 => {
            let ip = &frame[ETH..];
            if ip.len() < 40 || ip[0] >> 4 != 6 {
                return Outcome::Malformed;
            }
            let l4_len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            if 40 + l4_len > ip.len() {
                return Outcome::Malformed;
            }
            let proto = ip[6];
            let mut pseudo = sum_words(0, &ip[8..40]);
            pseudo += u64::from(proto) + l4_len as u64;
            (proto, ETH + 40, l4_len, pseudo)
        }
        _ => return Outcome::NotApplicable,
    };
    let field = match proto {
        IPPROTO_TCP if l4_len >= 20 => 16,
        IPPROTO_UDP if l4_len >= 8 => 6,
        IPPROTO_TCP | IPPROTO_UDP => return Outcome::Malformed,
        _ => return Outcome::NotApplicable,
    };
    let seg = &mut frame[l4..l4 + l4_len];
    seg[field] = 0;
    seg[field + 1] = 0;
    let mut sum = finish(sum_fast(pseudo, seg));
    // UDP sends a computed zero as all ones (zero means "no checksum").
    if proto == IPPROTO_UDP && sum == 0 {
        sum = 0xFFFF;
    }
    seg[field..field + 2].copy_from_slice(&sum.to_be_bytes());
    Outcome::Filled
}

/// The one's-complement sum check of a TCP/UDP segment over IPv4 (for tests): true if the
/// checksum in `frame` is right.
#[cfg(test)]
pub fn verify_ipv4(frame: &[u8]) -> bool {
    let ip = &frame[ETH..];
    let ihl = usize::from(ip[0] & 0xF) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let mut acc = sum_words(0, &ip[12..20]) + u64::from(ip[9]) + (total - ihl) as u64;
    acc = sum_words(acc, &ip[ihl..total]);
    finish(acc) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + UDP frame from 10.0.2.15:1234 to 10.0.2.2:7 carrying `payload`.
    pub fn udp4(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&ETH_P_IP.to_be_bytes());
        let total = (20 + 8 + payload.len()) as u16;
        f[14] = 0x45;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f[22] = 64;
        f[23] = IPPROTO_UDP;
        f[26..30].copy_from_slice(&[10, 0, 2, 15]);
        f[30..34].copy_from_slice(&[10, 0, 2, 2]);
        f[34..36].copy_from_slice(&1234u16.to_be_bytes());
        f[36..38].copy_from_slice(&7u16.to_be_bytes());
        f[38..40].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f[40..42].copy_from_slice(&[0xAB, 0xCD]); // a partial checksum's leftovers
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn udp_over_ipv4_gets_a_correct_checksum() {
        for payload in [&b""[..], b"x", b"hello, world", &[0xFF; 1001]] {
            let mut f = udp4(payload);
            assert!(!verify_ipv4(&f));
            assert_eq!(complete(&mut f), Outcome::Filled);
            assert!(verify_ipv4(&f), "payload {} bytes", payload.len());
        }
    }

    #[test]
    fn a_known_udp_checksum() {
        // Worked by hand: pseudo header 0a00020f 0a000202 0011 000a, UDP 04d2 0007 000a
        // 0000, data "hi" (6869).
        let mut f = udp4(b"hi");
        assert_eq!(complete(&mut f), Outcome::Filled);
        let sum: u32 = [
            0x0a00u32, 0x020f, 0x0a00, 0x0202, 0x11, 0x0a, 0x04d2, 0x7, 0x0a, 0x6869,
        ]
        .iter()
        .sum();
        let folded = (sum & 0xFFFF) + (sum >> 16);
        assert_eq!(u16::from_be_bytes([f[40], f[41]]), !(folded as u16));
    }

    #[test]
    fn tcp_over_ipv6_sums_to_zero() {
        let mut f = vec![0u8; 14 + 40 + 20 + 5];
        f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
        f[14] = 0x60;
        f[18..20].copy_from_slice(&25u16.to_be_bytes());
        f[20] = IPPROTO_TCP;
        f[22] = 0xfe;
        f[23] = 0x80;
        f[37] = 1;
        f[38] = 0xfe;
        f[39] = 0x80;
        f[53] = 2;
        f[54 + 12] = 0x50;
        f[74..79].copy_from_slice(b"abcde");
        assert_eq!(complete(&mut f), Outcome::Filled);
        let mut acc = sum_words(0, &f[22..54]) + 6 + 25;
        acc = sum_words(acc, &f[54..79]);
        assert_eq!(finish(acc), 0);
    }

    proptest::proptest! {
        #[test]
        fn the_fast_sum_folds_as_the_word_sum(
            acc in 0u64..(1 << 40),
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
        ) {
            proptest::prop_assert_eq!(finish(sum_fast(acc, &data)), finish(sum_words(acc, &data)));
        }
    }

    #[test]
    fn the_fast_sum_keeps_zero_apart_from_all_ones() {
        // All zeros sums to 0 (complement 0xFFFF); data summing to 0xFFFF folds to 0xFFFF
        // (complement 0): the two must not be confused.
        for data in [vec![0u8; 24], vec![0xFFu8; 24], vec![0xFF; 7], vec![0; 0]] {
            assert_eq!(finish(sum_fast(0, &data)), finish(sum_words(0, &data)));
        }
    }

    #[test]
    fn truncated_and_foreign_frames_are_left_alone() {
        let mut f = udp4(b"data");
        let n = f.len();
        f.truncate(n - 2); // IP total length now exceeds the frame
        let before = f.clone();
        assert_eq!(complete(&mut f), Outcome::Malformed);
        assert_eq!(f, before);
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(complete(&mut arp), Outcome::NotApplicable);
        let mut frag = udp4(b"data");
        frag[20] = 0x20; // more fragments
        assert_eq!(complete(&mut frag), Outcome::NotApplicable);
        assert_eq!(complete(&mut [0u8; 5]), Outcome::Malformed);
    }
}
