//! Shared-page layouts of the xenstore (`xs_wire`) and PV console rings.
//!
//! Each page holds two byte rings with free-running `u32` indices; a ring's position is
//! `index % size`, and `prod - cons` (wrapping) is the fill level. A producer writes bytes,
//! then publishes `prod` with Release; a consumer reads `prod` with Acquire, copies the bytes
//! out once, then publishes `cons` with Release. The side that did not write an index must
//! treat it as untrusted (`prod - cons` larger than the ring is a protocol error).

abi_enum! {
    /// `xsd_sockmsg_type`: xenstore message types.
    pub enum XsType: u32 {
        /// Debug/control command.
        Control = 0,
        /// List a node's children.
        Directory = 1,
        /// Read a node.
        Read = 2,
        /// Read a node's permissions.
        GetPerms = 3,
        /// Watch a path.
        Watch = 4,
        /// Remove a watch.
        Unwatch = 5,
        /// Begin a transaction; reply carries its id.
        TransactionStart = 6,
        /// Commit (`"T"`) or abort (`"F"`) a transaction.
        TransactionEnd = 7,
        /// Introduce a domain's ring to xenstored.
        Introduce = 8,
        /// Forget a domain.
        Release = 9,
        /// A domain's home path.
        GetDomainPath = 10,
        /// Write a node.
        Write = 11,
        /// Create a node.
        Mkdir = 12,
        /// Remove a node and its children.
        Rm = 13,
        /// Set a node's permissions.
        SetPerms = 14,
        /// Asynchronous watch notification (path and token).
        WatchEvent = 15,
        /// Error reply; payload is the errno name, e.g. `"ENOENT\0"`.
        Error = 16,
        /// Whether a domain has been introduced.
        IsDomainIntroduced = 17,
        /// Resume a domain.
        Resume = 18,
        /// Make one domain the target of another.
        SetTarget = 19,
        /// Drop all of the caller's watches and transactions.
        ResetWatches = 21,
        /// Paged directory listing.
        DirectoryPart = 22,
        /// Read a feature.
        GetFeature = 23,
        /// Set a feature.
        SetFeature = 24,
        /// Read a quota.
        GetQuota = 25,
        /// Set a quota.
        SetQuota = 26,
    }
}

/// A type value guaranteed never to be valid.
pub const XS_INVALID: u32 = 0xFFFF;

wire! {
    /// `xsd_sockmsg`: the header before every xenstore message; `len` payload bytes follow.
    pub struct XsdSockmsg {
        /// An [`XsType`] (`type` in C).
        pub ty: u32,
        /// Request id, echoed in the reply.
        pub req_id: u32,
        /// Transaction id, 0 outside a transaction.
        pub tx_id: u32,
        /// Payload length in bytes (at most [`XENSTORE_PAYLOAD_MAX`]).
        pub len: u32,
    }
}
layout!(XsdSockmsg, 16, ty = 0, req_id = 4, tx_id = 8, len = 12);

/// Bytes in an [`XsdSockmsg`] header.
pub const XS_HEADER_LEN: usize = 16;

impl XsdSockmsg {
    /// Decodes the header at the start of `b`; `None` if `b` is shorter than a header.
    pub fn decode(b: &[u8]) -> Option<Self> {
        let word = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
        };
        Some(Self {
            ty: word(0)?,
            req_id: word(4)?,
            tx_id: word(8)?,
            len: word(12)?,
        })
    }
}

/// One xenstore message: the header for `payload` followed by it. The payload's length
/// must fit the header's `u32` (every real payload is at most [`XENSTORE_PAYLOAD_MAX`]).
pub fn xs_message(ty: XsType, req_id: u32, tx_id: u32, payload: &[u8]) -> alloc::vec::Vec<u8> {
    let mut out = alloc::vec::Vec::with_capacity(XS_HEADER_LEN + payload.len());
    for w in [ty as u32, req_id, tx_id, payload.len() as u32] {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// What a client makes of the bytes received so far for its request `req_id` of type `ty`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XsReply<'a> {
    /// Not a whole message yet.
    Partial,
    /// The reply's payload.
    Ok(&'a [u8]),
    /// The store refused: its error name (`ENOENT`, `EACCES`, ...).
    Error(&'a [u8]),
    /// Not a reply to this request (another id or type).
    Unexpected,
}

/// Classifies `got`, the bytes read from the response ring after sending request `req_id`.
pub fn xs_reply(got: &[u8], req_id: u32, ty: XsType) -> XsReply<'_> {
    let Some(h) = XsdSockmsg::decode(got) else {
        return XsReply::Partial;
    };
    let Some(body) = got.get(XS_HEADER_LEN..XS_HEADER_LEN.saturating_add(h.len as usize)) else {
        return XsReply::Partial;
    };
    if h.req_id != req_id {
        XsReply::Unexpected
    } else if h.ty == XsType::Error as u32 {
        XsReply::Error(body.split(|&b| b == 0).next().unwrap_or(&[]))
    } else if h.ty == ty as u32 {
        XsReply::Ok(body)
    } else {
        XsReply::Unexpected
    }
}

/// `s` followed by a NUL, as xenstore payloads spell strings.
pub fn xs_string(s: &[u8]) -> alloc::vec::Vec<u8> {
    let mut v = alloc::vec::Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s);
    v.push(0);
    v
}

/// Bytes in each xenstore ring.
pub const XENSTORE_RING_SIZE: usize = 1024;
/// Largest payload a message may carry.
pub const XENSTORE_PAYLOAD_MAX: u32 = 4096;
/// Longest absolute path.
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// Longest relative path.
pub const XENSTORE_REL_PATH_MAX: usize = 2048;
/// Server feature: the ring can be reconnected.
pub const XENSTORE_SERVER_FEATURE_RECONNECTION: u32 = 1;
/// Server feature: the `error` field is meaningful.
pub const XENSTORE_SERVER_FEATURE_ERROR: u32 = 2;
/// `connection`: steady state.
pub const XENSTORE_CONNECTED: u32 = 0;
/// `connection`: reconnect in progress.
pub const XENSTORE_RECONNECT: u32 = 1;
/// `error`: none.
pub const XENSTORE_ERROR_NONE: u32 = 0;
/// `error`: communication problem.
pub const XENSTORE_ERROR_COMM: u32 = 1;
/// `error`: invalid ring index.
pub const XENSTORE_ERROR_RINGIDX: u32 = 2;
/// `error`: protocol violation (payload too long).
pub const XENSTORE_ERROR_PROTO: u32 = 3;

wire! {
    /// `xenstore_domain_interface`: the page at `HVM_PARAM_STORE_PFN`.
    pub struct XenstoreDomainInterface {
        /// Guest → xenstored requests.
        pub req: [u8; XENSTORE_RING_SIZE],
        /// xenstored → guest replies and watch events.
        pub rsp: [u8; XENSTORE_RING_SIZE],
        /// Request consumer index (xenstored).
        pub req_cons: u32,
        /// Request producer index (guest).
        pub req_prod: u32,
        /// Reply consumer index (guest).
        pub rsp_cons: u32,
        /// Reply producer index (xenstored).
        pub rsp_prod: u32,
        /// `XENSTORE_SERVER_FEATURE_*` bits offered by the server.
        pub server_features: u32,
        /// `XENSTORE_CONNECTED` or `XENSTORE_RECONNECT`.
        pub connection: u32,
        /// A `XENSTORE_ERROR_*` value.
        pub error: u32,
        /// Event channel port (when the server offers it).
        pub evtchn_port: u32,
    }
}
layout!(
    XenstoreDomainInterface,
    2080,
    req = 0,
    rsp = 1024,
    req_cons = 2048,
    req_prod = 2052,
    rsp_cons = 2056,
    rsp_prod = 2060,
    server_features = 2064,
    connection = 2068,
    error = 2072,
    evtchn_port = 2076
);

/// Bytes in the console input ring.
pub const XENCONS_IN_SIZE: usize = 1024;
/// Bytes in the console output ring.
pub const XENCONS_OUT_SIZE: usize = 2048;
/// `connection`: backend connected.
pub const XENCONSOLE_CONNECTED: u8 = 0;
/// `connection`: backend disconnected.
pub const XENCONSOLE_DISCONNECTED: u8 = 1;

wire! {
    /// `xencons_interface`: the page at `HVM_PARAM_CONSOLE_PFN`.
    pub struct XenconsInterface {
        /// Backend → guest input bytes (`in` in C).
        pub input: [u8; XENCONS_IN_SIZE],
        /// Guest → backend output bytes (`out` in C).
        pub output: [u8; XENCONS_OUT_SIZE],
        /// Input consumer index (guest).
        pub in_cons: u32,
        /// Input producer index (backend).
        pub in_prod: u32,
        /// Output consumer index (backend).
        pub out_cons: u32,
        /// Output producer index (guest).
        pub out_prod: u32,
        /// `XENCONSOLE_CONNECTED` or `XENCONSOLE_DISCONNECTED`.
        pub connection: u8,
        /// Padding to the struct's 4-byte alignment.
        pub _pad0: [u8; 3],
    }
}
layout!(
    XenconsInterface,
    3092,
    input = 0,
    output = 1024,
    in_cons = 3072,
    in_prod = 3076,
    out_cons = 3080,
    out_prod = 3084,
    connection = 3088
);
