//! Errors: the errno names xenstore puts on the wire, and the failures reported to the shell.

use core::fmt;
use protocol::xen::structs::DomId;

/// An error reply. Each variant is one entry of `xs_wire.h`'s `xsd_errors` table, the only
/// names a client (Linux's `xenbus_xs.c`) understands; the wire form is the errno name,
/// NUL-terminated. Quota violations are [`XsError::NoSpace`], as xenstored replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum XsError {
    /// invalid argument (EINVAL)
    Invalid,
    /// permission denied (EACCES)
    AccessDenied,
    /// already exists (EEXIST)
    Exists,
    /// is a directory (EISDIR)
    IsDirectory,
    /// no such node or transaction (ENOENT)
    NotFound,
    /// out of memory (ENOMEM)
    NoMemory,
    /// quota exceeded (ENOSPC)
    NoSpace,
    /// I/O error (EIO)
    Io,
    /// not empty (ENOTEMPTY)
    NotEmpty,
    /// operation not supported (ENOSYS)
    NotSupported,
    /// read-only (EROFS)
    ReadOnly,
    /// busy (EBUSY)
    Busy,
    /// transaction conflict, retry (EAGAIN)
    Again,
    /// already connected (EISCONN)
    IsConnected,
    /// reply too large (E2BIG)
    TooBig,
    /// operation not permitted (EPERM)
    NotPermitted,
}

impl XsError {
    /// Every error, in `xsd_errors` order.
    pub const ALL: [Self; 16] = [
        Self::Invalid,
        Self::AccessDenied,
        Self::Exists,
        Self::IsDirectory,
        Self::NotFound,
        Self::NoMemory,
        Self::NoSpace,
        Self::Io,
        Self::NotEmpty,
        Self::NotSupported,
        Self::ReadOnly,
        Self::Busy,
        Self::Again,
        Self::IsConnected,
        Self::TooBig,
        Self::NotPermitted,
    ];

    /// The errno name sent in an `XS_ERROR` reply (without the NUL).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Invalid => "EINVAL",
            Self::AccessDenied => "EACCES",
            Self::Exists => "EEXIST",
            Self::IsDirectory => "EISDIR",
            Self::NotFound => "ENOENT",
            Self::NoMemory => "ENOMEM",
            Self::NoSpace => "ENOSPC",
            Self::Io => "EIO",
            Self::NotEmpty => "ENOTEMPTY",
            Self::NotSupported => "ENOSYS",
            Self::ReadOnly => "EROFS",
            Self::Busy => "EBUSY",
            Self::Again => "EAGAIN",
            Self::IsConnected => "EISCONN",
            Self::TooBig => "E2BIG",
            Self::NotPermitted => "EPERM",
        }
    }
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why [`super::Xenstore::feed`] did not take a connection's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedError {
    /// no connection exists for this domain
    UnknownConnection(DomId),
    /// the client announced a payload longer than XENSTORE_PAYLOAD_MAX; the connection is shut
    /// down (reported once; the shell sets `XENSTORE_ERROR_PROTO` in the ring page)
    PayloadTooLong {
        /// The offending domain.
        domid: DomId,
        /// The announced length.
        len: u32,
    },
    /// the connection was shut down earlier; its input is ignored until it is reset
    Faulted(DomId),
}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownConnection(d) => write!(f, "xenstore: no connection for domain {d}"),
            Self::PayloadTooLong { domid, len } => write!(
                f,
                "xenstore: domain {domid} sent a {len}-byte payload; connection shut down"
            ),
            Self::Faulted(d) => write!(f, "xenstore: connection of domain {d} is shut down"),
        }
    }
}

/// Why an orchestrator call ([`super::Xenstore::introduce`], [`super::Xenstore::release`])
/// was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminError {
    /// dom0 or a reserved DOMID_* value cannot be introduced or released
    InvalidDomain(DomId),
    /// the domain has not been introduced
    NotIntroduced(DomId),
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidDomain(d) => write!(f, "domain {d} cannot be introduced or released"),
            Self::NotIntroduced(d) => write!(f, "domain {d} has not been introduced"),
        }
    }
}
