//! Reading one packet out of a vif's TX ring: every slot copied out once and validated
//! before anything is done with it.
//!
//! A packet is a first request, optionally followed by extra-info slots (when it carries
//! [`NETTXF_EXTRA_INFO`]), then one request per further fragment while the previous one
//! carries [`NETTXF_MORE_DATA`]. The rules (each a [`Malformed`] variant, which halts the
//! vif):
//! * every slot of the packet is already published (netfront pushes a packet at once);
//! * at most [`XEN_NETBK_LEGACY_SLOTS_MAX`] data slots;
//! * each fragment lies inside its page (`offset + size <= 4096`), the first counting only
//!   its own bytes (its `size` minus the following fragments');
//! * the following fragments' sizes add up to no more than the first slot's `size`;
//! * extra-info slots have a known type, each at most once; GSO is refused (we do not
//!   offer `feature-gso-*`), multicast and hash extras are read and ignored.
//!
//! A packet that is well formed but cannot be forwarded (shorter than an Ethernet header)
//! is [`Verdict::Drop`]: answered with `NETIF_RSP_ERROR` and counted, the vif lives on.
//!
//! After a restart in place the requests a dead instance left unanswered are not sent but
//! answered at once ([`drop_window`]; why in [`crate::ring`]).

use crate::io::{GrantSeg, RingMem};
use crate::ring::{BackRing, RingError};
use alloc::vec::Vec;
use protocol::xen::blkif::XEN_PAGE_BYTES;
use protocol::xen::netif::{
    NetifExtraInfo, NetifTxRequest, NetifTxResponse, ETH_HLEN, NETIF_RSP_DROPPED, NETIF_RSP_NULL,
    NETTXF_CSUM_BLANK, NETTXF_EXTRA_INFO, NETTXF_MORE_DATA, TX_SLOT_BYTES,
    XEN_NETBK_LEGACY_SLOTS_MAX, XEN_NETIF_EXTRA_FLAG_MORE, XEN_NETIF_EXTRA_TYPE_GSO,
    XEN_NETIF_EXTRA_TYPE_MAX, XEN_NETIF_EXTRA_TYPE_NONE,
};
use zerocopy::{FromBytes, IntoBytes};

/// Why a TX packet is refused (the vif is halted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// the packet's slots run past the requests the frontend published
    Incomplete,
    /// the packet uses more slots than XEN_NETBK_LEGACY_SLOTS_MAX
    TooManySlots,
    /// a fragment crosses the end of its page
    CrossesPage {
        /// The fragment's offset.
        offset: u16,
        /// The fragment's size.
        size: u16,
    },
    /// the fragments add up to more than the packet's size
    FragmentsExceedPacket {
        /// The first slot's size.
        packet: u16,
        /// The sum of the following fragments.
        fragments: u32,
    },
    /// an extra-info slot has an unknown type, or a type given twice
    BadExtra(u8),
    /// a GSO extra (we do not offer segmentation offload)
    GsoNotOffered,
    /// a grant copy of the packet's data failed (a bad grant reference)
    BadGrant,
}

impl core::fmt::Display for Malformed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Incomplete => write!(f, "a packet's slots run past req_prod"),
            Self::TooManySlots => write!(
                f,
                "a packet uses more than {XEN_NETBK_LEGACY_SLOTS_MAX} slots"
            ),
            Self::CrossesPage { offset, size } => {
                write!(
                    f,
                    "a fragment at offset {offset} of size {size} crosses its page"
                )
            }
            Self::FragmentsExceedPacket { packet, fragments } => write!(
                f,
                "fragments of {fragments} bytes exceed the packet size {packet}"
            ),
            Self::BadExtra(t) => write!(f, "extra-info type {t} is unknown or repeated"),
            Self::GsoNotOffered => write!(f, "a GSO extra, and GSO was not offered"),
            Self::BadGrant => write!(f, "a grant copy of packet data failed"),
        }
    }
}

/// What to do with a parsed packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Copy its data in and forward it.
    Forward,
    /// Answer with an error and count a drop.
    Drop,
}

/// One packet's slots, validated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxPacket {
    /// Every consumed slot in ring order: the request id, and whether it was extra info
    /// (answered with `NETIF_RSP_NULL`).
    pub slots: Vec<(u16, bool)>,
    /// The data fragments, in packet order (the first trimmed to its own bytes).
    pub segs: Vec<GrantSeg>,
    /// The packet's length (the first slot's `size`).
    pub len: usize,
    /// The frontend left the TCP/UDP checksum blank.
    pub csum_blank: bool,
}

impl TxPacket {
    fn clear(&mut self) {
        self.slots.clear();
        self.segs.clear();
        self.len = 0;
        self.csum_blank = false;
    }
}

/// Reads the packet at `ring`'s `req_cons` into `out` without consuming it; `avail` is
/// [`BackRing::pending`]'s count (at least 1). On success the caller consumes
/// `out.slots.len()` requests.
pub fn parse<M: RingMem + ?Sized>(
    ring: &BackRing,
    mem: &M,
    avail: u32,
    out: &mut TxPacket,
) -> Result<Verdict, Malformed> {
    out.clear();
    let mut slot = [0u8; TX_SLOT_BYTES];
    let mut next = 0u32;
    let mut take = |slot: &mut [u8; TX_SLOT_BYTES]| -> Result<(), Malformed> {
        if next >= avail {
            return Err(Malformed::Incomplete);
        }
        ring.peek(mem, next, slot);
        next += 1;
        Ok(())
    };
    take(&mut slot)?;
    let first = NetifTxRequest::read_from_bytes(&slot).map_err(|_| Malformed::Incomplete)?;
    out.slots.push((first.id, false));
    if first.flags & NETTXF_EXTRA_INFO != 0 {
        let mut seen = 0u8;
        loop {
            take(&mut slot)?;
            let x = NetifExtraInfo::read_from_prefix(&slot)
                .map_err(|_| Malformed::Incomplete)?
                .0;
            let t = x.type_;
            if t == XEN_NETIF_EXTRA_TYPE_NONE
                || t >= XEN_NETIF_EXTRA_TYPE_MAX
                || seen & (1 << t) != 0
            {
                return Err(Malformed::BadExtra(t));
            }
            if t == XEN_NETIF_EXTRA_TYPE_GSO {
                return Err(Malformed::GsoNotOffered);
            }
            seen |= 1 << t;
            // An extra slot has no id of its own; netback answers it with the id field's
            // bytes as they are (netfront ignores the id of a NULL response).
            out.slots
                .push((u16::from_le_bytes([slot[0], slot[1]]), true));
            if x.flags & XEN_NETIF_EXTRA_FLAG_MORE == 0 {
                break;
            }
        }
    }
    let mut fragments: u32 = 0;
    let mut more = first.flags & NETTXF_MORE_DATA != 0;
    while more {
        if out.segs.len() + 1 >= XEN_NETBK_LEGACY_SLOTS_MAX {
            return Err(Malformed::TooManySlots);
        }
        take(&mut slot)?;
        let r = NetifTxRequest::read_from_bytes(&slot).map_err(|_| Malformed::Incomplete)?;
        check_page(r.offset, r.size)?;
        fragments += u32::from(r.size);
        out.slots.push((r.id, false));
        out.segs.push(GrantSeg {
            gref: r.gref,
            offset: r.offset,
            len: r.size,
        });
        more = r.flags & NETTXF_MORE_DATA != 0;
    }
    let own =
        u32::from(first.size)
            .checked_sub(fragments)
            .ok_or(Malformed::FragmentsExceedPacket {
                packet: first.size,
                fragments,
            })? as u16;
    check_page(first.offset, own)?;
    out.segs.insert(
        0,
        GrantSeg {
            gref: first.gref,
            offset: first.offset,
            len: own,
        },
    );
    out.len = usize::from(first.size);
    out.csum_blank = first.flags & NETTXF_CSUM_BLANK != 0;
    Ok(if out.len < ETH_HLEN {
        Verdict::Drop
    } else {
        Verdict::Forward
    })
}

fn check_page(offset: u16, size: u16) -> Result<(), Malformed> {
    if usize::from(offset) + usize::from(size) > XEN_PAGE_BYTES {
        return Err(Malformed::CrossesPage { offset, size });
    }
    Ok(())
}

/// What [`drop_window`] answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Packets dropped.
    pub packets: u32,
    /// Slots answered (their data slots and extra-info slots).
    pub slots: u32,
}

/// Restart in place: answers every request between `ring`'s position (a ring just
/// attached: the published `rsp_prod`) and `req_prod` without sending any, and publishes
/// the answers. A request slot is answered `NETIF_RSP_DROPPED` with its own id (netfront
/// frees the buffer of any answer but `NETIF_RSP_NULL`, whatever its status), an
/// extra-info slot `NETIF_RSP_NULL`. Slots are told apart as [`parse`] does, by the
/// `extra_info` flag of the request before and the `more` flag of each extra, so a
/// malformed chain only changes how the frontend's own slots are answered. A response the
/// dead instance wrote over a request slot leaves its `flags` and `id` readable; over an
/// extra slot it hides the extra's `more` flag, which matters only for a chain of several
/// extras (netfront sends them only with the GSO or multicast features, not offered).
pub fn drop_window<M: RingMem + ?Sized>(
    ring: &mut BackRing,
    mem: &mut M,
) -> Result<Dropped, RingError> {
    let n = ring.pending(mem)?;
    let mut out = Dropped::default();
    let mut slot = [0u8; TX_SLOT_BYTES];
    let mut extra_follows = false;
    let mut in_packet = false;
    for _ in 0..n {
        ring.peek(mem, 0, &mut slot);
        ring.consume(1);
        let rsp = if extra_follows {
            let x = NetifExtraInfo::read_from_prefix(&slot).map_or(0, |(x, _)| x.flags);
            extra_follows = x & XEN_NETIF_EXTRA_FLAG_MORE != 0;
            NetifTxResponse {
                id: u16::from_le_bytes([slot[0], slot[1]]),
                status: NETIF_RSP_NULL,
            }
        } else {
            // A slot is exactly one request: this cannot fail.
            let (flags, id) =
                NetifTxRequest::read_from_bytes(&slot).map_or((0, 0), |r| (r.flags, r.id));
            extra_follows = flags & NETTXF_EXTRA_INFO != 0;
            if !in_packet {
                out.packets += 1;
            }
            in_packet = flags & NETTXF_MORE_DATA != 0;
            NetifTxResponse {
                id,
                status: NETIF_RSP_DROPPED,
            }
        };
        ring.respond(mem, rsp.as_bytes());
        out.slots += 1;
    }
    ring.push(mem);
    Ok(out)
}
