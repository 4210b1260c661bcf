//! The netif network-device ring ABI (Xen's `public/io/netif.h` over `io/ring.h`).
//!
//! A vif has two one-page rings, each with the 64-byte [`SringHeader`] of every Xen ring:
//!
//! * TX (guest → backend): slots of 12 bytes holding a [`NetifTxRequest`] (or, after a
//!   request flagged [`NETTXF_EXTRA_INFO`], a [`NetifExtraInfo`]); the backend answers each
//!   consumed slot with a [`NetifTxResponse`] written over it. A packet is one request per
//!   fragment: the first slot's `size` is the whole packet's length and every following
//!   slot's `size` is its own; all but the last carry [`NETTXF_MORE_DATA`]. An extra-info
//!   slot is answered with status [`NETIF_RSP_NULL`].
//! * RX (backend → guest): slots of 8 bytes; the guest posts [`NetifRxRequest`]s naming an
//!   empty granted page, the backend copies a frame in and answers with a [`NetifRxResponse`]
//!   whose `status` is the byte count in that page (or a negative `NETIF_RSP_*`).
//!
//! Both rings have [`NET_TX_RING_SIZE`]/[`NET_RX_RING_SIZE`] slots. The indexes are the
//! [`SringHeader`]'s; slot `i` lives at [`tx_slot_offset`]/[`rx_slot_offset`].

use super::blkif::{SringHeader, RING_HEADER_BYTES, XEN_PAGE_BYTES};
use super::structs::GrantRef;

/// `_NETTXF_csum_blank`: the packet's TCP/UDP checksum is not filled in (partial checksum);
/// the backend must complete it before the packet leaves the host.
pub const NETTXF_CSUM_BLANK: u16 = 1 << 0;
/// `_NETTXF_data_validated`: the data is known to be intact (no need to check it).
pub const NETTXF_DATA_VALIDATED: u16 = 1 << 1;
/// `_NETTXF_more_data`: another fragment of this packet follows in the next slot.
pub const NETTXF_MORE_DATA: u16 = 1 << 2;
/// `_NETTXF_extra_info`: a [`NetifExtraInfo`] slot follows this request.
pub const NETTXF_EXTRA_INFO: u16 = 1 << 3;

/// `_NETRXF_data_validated`: the data was validated (the guest need not check it).
pub const NETRXF_DATA_VALIDATED: u16 = 1 << 0;
/// `_NETRXF_csum_blank`: the checksum is partial; the guest completes it if it forwards.
pub const NETRXF_CSUM_BLANK: u16 = 1 << 1;
/// `_NETRXF_more_data`: the frame continues in the next response's page.
pub const NETRXF_MORE_DATA: u16 = 1 << 2;
/// `_NETRXF_extra_info`: a [`NetifExtraInfo`] slot follows this response.
pub const NETRXF_EXTRA_INFO: u16 = 1 << 3;
/// `_NETRXF_gso_prefix`: this slot holds only GSO prefix data (never sent by us).
pub const NETRXF_GSO_PREFIX: u16 = 1 << 4;

/// `NETIF_RSP_DROPPED`: the packet was dropped.
pub const NETIF_RSP_DROPPED: i16 = -2;
/// `NETIF_RSP_ERROR`: the request could not be carried out.
pub const NETIF_RSP_ERROR: i16 = -1;
/// `NETIF_RSP_OKAY`: done.
pub const NETIF_RSP_OKAY: i16 = 0;
/// `NETIF_RSP_NULL`: the answer to an extra-info slot (nothing to report).
pub const NETIF_RSP_NULL: i16 = 1;

/// `XEN_NETIF_EXTRA_TYPE_NONE`: never valid in a slot.
pub const XEN_NETIF_EXTRA_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_EXTRA_TYPE_GSO`: segmentation offload parameters.
pub const XEN_NETIF_EXTRA_TYPE_GSO: u8 = 1;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_ADD`: join a multicast group (multicast control).
pub const XEN_NETIF_EXTRA_TYPE_MCAST_ADD: u8 = 2;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_DEL`: leave a multicast group (multicast control).
pub const XEN_NETIF_EXTRA_TYPE_MCAST_DEL: u8 = 3;
/// `XEN_NETIF_EXTRA_TYPE_HASH`: the packet's receive-side hash.
pub const XEN_NETIF_EXTRA_TYPE_HASH: u8 = 4;
/// `XEN_NETIF_EXTRA_TYPE_MAX`: every valid type is below this.
pub const XEN_NETIF_EXTRA_TYPE_MAX: u8 = 5;
/// `XEN_NETIF_EXTRA_FLAG_MORE`: another extra-info slot follows.
pub const XEN_NETIF_EXTRA_FLAG_MORE: u8 = 1 << 0;

/// `XEN_NETBK_LEGACY_SLOTS_MAX`: slots a packet may use (Linux netback's `MAX_SKB_FRAGS`
/// as of the protocol's definition, plus one for the head). Frontends never use more.
pub const XEN_NETBK_LEGACY_SLOTS_MAX: usize = 18;
/// `XEN_NETIF_MAX_TX_SIZE`: the largest packet a TX request can describe.
pub const XEN_NETIF_MAX_TX_SIZE: usize = 0xFFFF;
/// `ETH_HLEN`: a frame shorter than an Ethernet header is refused.
pub const ETH_HLEN: usize = 14;

wire! {
    /// `netif_tx_request`: one fragment of a packet the guest sends.
    pub struct NetifTxRequest {
        /// Grant of the page holding the fragment (read-only is enough).
        pub gref: GrantRef,
        /// Offset of the fragment within the page.
        pub offset: u16,
        /// `NETTXF_*`.
        pub flags: u16,
        /// The guest's id, echoed in the response.
        pub id: u16,
        /// First slot: the whole packet's length; later slots: this fragment's length.
        pub size: u16,
    }
}
layout!(
    NetifTxRequest,
    12,
    gref = 0,
    offset = 4,
    flags = 6,
    id = 8,
    size = 10
);

wire! {
    /// `netif_tx_response`: the backend's answer to one TX slot.
    pub struct NetifTxResponse {
        /// The request's `id`.
        pub id: u16,
        /// `NETIF_RSP_*`.
        pub status: i16,
    }
}
layout!(NetifTxResponse, 4, id = 0, status = 2);

wire! {
    /// `netif_extra_info`: an extra slot after a request flagged `*_EXTRA_INFO`. The union's
    /// six bytes are kept raw: their meaning depends on `type_`.
    pub struct NetifExtraInfo {
        /// `XEN_NETIF_EXTRA_TYPE_*`.
        pub type_: u8,
        /// `XEN_NETIF_EXTRA_FLAG_*`.
        pub flags: u8,
        /// The type's parameters (GSO: size u16, type u8, pad u8, features u16; multicast: a
        /// MAC address; hash: type u8, algorithm u8, value [u8; 4]).
        pub u: [u8; 6],
    }
}
layout!(NetifExtraInfo, 8, type_ = 0, flags = 1, u = 2);

wire! {
    /// `netif_rx_request`: an empty page the guest posts for a received frame.
    pub struct NetifRxRequest {
        /// The guest's id, echoed in the response.
        pub id: u16,
        /// Padding.
        pub _pad0: u16,
        /// Grant of the page (writable).
        pub gref: GrantRef,
    }
}
layout!(NetifRxRequest, 8, id = 0, gref = 4);

wire! {
    /// `netif_rx_response`: what the backend put in a posted page.
    pub struct NetifRxResponse {
        /// The request's `id`.
        pub id: u16,
        /// Offset of the data within the page.
        pub offset: u16,
        /// `NETRXF_*`.
        pub flags: u16,
        /// Bytes in this page (positive), or a negative `NETIF_RSP_*`.
        pub status: i16,
    }
}
layout!(
    NetifRxResponse,
    8,
    id = 0,
    offset = 2,
    flags = 4,
    status = 6
);

/// Bytes per TX slot: the union of a request, a response and an extra-info slot.
pub const TX_SLOT_BYTES: usize = 12;
/// Bytes per RX slot: the union of a request, a response and an extra-info slot.
pub const RX_SLOT_BYTES: usize = 8;

static_assertions::const_assert_eq!(TX_SLOT_BYTES, core::mem::size_of::<NetifTxRequest>());
static_assertions::const_assert!(core::mem::size_of::<NetifTxResponse>() <= TX_SLOT_BYTES);
static_assertions::const_assert!(core::mem::size_of::<NetifExtraInfo>() <= TX_SLOT_BYTES);
static_assertions::const_assert_eq!(RX_SLOT_BYTES, core::mem::size_of::<NetifRxRequest>());
static_assertions::const_assert_eq!(RX_SLOT_BYTES, core::mem::size_of::<NetifRxResponse>());
static_assertions::const_assert_eq!(RING_HEADER_BYTES, core::mem::size_of::<SringHeader>());

/// Slots in a one-page ring of `slot`-byte slots: `(4096 - 64) / slot` rounded down to a
/// power of two (`__CONST_RING_SIZE`).
const fn one_page_entries(slot: usize) -> u32 {
    let raw = (XEN_PAGE_BYTES - RING_HEADER_BYTES) / slot;
    1u32 << (usize::BITS - 1 - raw.leading_zeros())
}

/// `NET_TX_RING_SIZE`: slots in the TX ring.
pub const NET_TX_RING_SIZE: u32 = one_page_entries(TX_SLOT_BYTES);
/// `NET_RX_RING_SIZE`: slots in the RX ring.
pub const NET_RX_RING_SIZE: u32 = one_page_entries(RX_SLOT_BYTES);

static_assertions::const_assert_eq!(NET_TX_RING_SIZE, 256);
static_assertions::const_assert_eq!(NET_RX_RING_SIZE, 256);

/// Byte offset of TX slot `index % NET_TX_RING_SIZE` in the ring page.
pub const fn tx_slot_offset(index: u32) -> usize {
    RING_HEADER_BYTES + (index & (NET_TX_RING_SIZE - 1)) as usize * TX_SLOT_BYTES
}

/// Byte offset of RX slot `index % NET_RX_RING_SIZE` in the ring page.
pub const fn rx_slot_offset(index: u32) -> usize {
    RING_HEADER_BYTES + (index & (NET_RX_RING_SIZE - 1)) as usize * RX_SLOT_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::{FromBytes, IntoBytes};

    #[test]
    fn slots_stay_inside_the_page_for_every_index() {
        for i in [0u32, 1, 255, 256, 257, u32::MAX] {
            assert!(tx_slot_offset(i) + TX_SLOT_BYTES <= XEN_PAGE_BYTES);
            assert!(rx_slot_offset(i) + RX_SLOT_BYTES <= XEN_PAGE_BYTES);
        }
        assert_eq!(tx_slot_offset(257), 64 + 12);
        assert_eq!(rx_slot_offset(u32::MAX), 64 + 255 * 8);
    }

    #[test]
    fn wire_bytes_decode_in_the_c_layout() {
        let b = [7, 0, 0, 0, 0x10, 0, 0x05, 0, 0x34, 0x12, 0xEA, 0x05];
        let r = NetifTxRequest::read_from_bytes(&b).unwrap();
        assert_eq!(r.gref, 7);
        assert_eq!(r.offset, 16);
        assert_eq!(r.flags, NETTXF_CSUM_BLANK | NETTXF_MORE_DATA);
        assert_eq!((r.id, r.size), (0x1234, 1514));
        let rsp = NetifRxResponse {
            id: 3,
            offset: 0,
            flags: NETRXF_MORE_DATA,
            status: 4096,
        };
        assert_eq!(rsp.as_bytes(), &[3, 0, 0, 0, 4, 0, 0, 0x10]);
        let tx = NetifTxResponse {
            id: 9,
            status: NETIF_RSP_NULL,
        };
        assert_eq!(tx.as_bytes(), &[9, 0, 1, 0]);
        let x = NetifExtraInfo::read_from_bytes(&[1, 1, 0xDC, 0x05, 1, 0, 0, 0]).unwrap();
        assert_eq!(
            (x.type_, x.flags),
            (XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_EXTRA_FLAG_MORE)
        );
        let rq = NetifRxRequest::read_from_bytes(&[5, 0, 0, 0, 9, 0, 0, 0]).unwrap();
        assert_eq!((rq.id, rq.gref), (5, 9));
    }
}
