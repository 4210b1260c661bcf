//! Xen error numbers, as hypercalls return them (negated in `x0`).

/// Xen error numbers. A failing hypercall returns the negated value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i64)]
pub enum XenErrno {
    /// Operation not permitted.
    EPERM = 1,
    /// No such entry.
    ENOENT = 2,
    /// No such domain.
    ESRCH = 3,
    /// Interrupted.
    EINTR = 4,
    /// I/O error.
    EIO = 5,
    /// Argument list too long.
    E2BIG = 7,
    /// Try again.
    EAGAIN = 11,
    /// Out of memory.
    ENOMEM = 12,
    /// Permission denied.
    EACCES = 13,
    /// Bad guest address.
    EFAULT = 14,
    /// Busy.
    EBUSY = 16,
    /// Already exists.
    EEXIST = 17,
    /// Is a directory.
    EISDIR = 21,
    /// Invalid argument.
    EINVAL = 22,
    /// No space left.
    ENOSPC = 28,
    /// Read-only.
    EROFS = 30,
    /// Result out of range.
    ERANGE = 34,
    /// Not implemented.
    ENOSYS = 38,
    /// Not empty.
    ENOTEMPTY = 39,
    /// Operation not supported.
    EOPNOTSUPP = 95,
    /// Already connected.
    EISCONN = 106,
}

impl XenErrno {
    pub(crate) const ALL: [Self; 21] = [
        Self::EPERM,
        Self::ENOENT,
        Self::ESRCH,
        Self::EINTR,
        Self::EIO,
        Self::E2BIG,
        Self::EAGAIN,
        Self::ENOMEM,
        Self::EACCES,
        Self::EFAULT,
        Self::EBUSY,
        Self::EEXIST,
        Self::EISDIR,
        Self::EINVAL,
        Self::ENOSPC,
        Self::EROFS,
        Self::ERANGE,
        Self::ENOSYS,
        Self::ENOTEMPTY,
        Self::EOPNOTSUPP,
        Self::EISCONN,
    ];

    /// The value a failing hypercall leaves in `x0` (the negated errno, sign-extended).
    pub const fn to_ret(self) -> u64 {
        (-(self as i64)) as u64
    }

    /// Decodes a hypercall return value; `None` for success values and unknown errnos.
    pub fn from_ret(ret: u64) -> Option<Self> {
        let v = ret as i64;
        if v >= 0 {
            return None;
        }
        Self::try_from(v.checked_neg()?).ok()
    }
}

impl TryFrom<i64> for XenErrno {
    type Error = i64;
    /// From the positive errno number.
    fn try_from(raw: i64) -> Result<Self, i64> {
        Self::ALL.into_iter().find(|e| *e as i64 == raw).ok_or(raw)
    }
}
