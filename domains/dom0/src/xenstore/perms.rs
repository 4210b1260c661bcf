//! Node permissions: the `[nrwb]<domid>` entries and who may do what with a node.
//!
//! The first entry names the owner, who has full access, and its letter is the access of every
//! domain without an entry of its own. dom0 is privileged and always has full access.

use super::error::XsError;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;
use protocol::xen::structs::DomId;

/// What one entry grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `n`: nothing.
    None,
    /// `r`: read.
    Read,
    /// `w`: write.
    Write,
    /// `b`: read and write.
    Both,
}

impl Access {
    const fn letter(self) -> u8 {
        match self {
            Self::None => b'n',
            Self::Read => b'r',
            Self::Write => b'w',
            Self::Both => b'b',
        }
    }

    const fn rights(self) -> Rights {
        Rights {
            read: matches!(self, Self::Read | Self::Both),
            write: matches!(self, Self::Write | Self::Both),
            owner: false,
        }
    }
}

/// One permission entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Perm {
    /// The domain the entry is about.
    pub domid: DomId,
    /// What it grants.
    pub access: Access,
}

impl Perm {
    /// An entry.
    pub const fn new(domid: DomId, access: Access) -> Self {
        Self { domid, access }
    }

    /// Parses `[nrwb]<decimal domid>`.
    pub fn parse(s: &[u8]) -> Result<Self, XsError> {
        let (&letter, digits) = s.split_first().ok_or(XsError::Invalid)?;
        let access = match letter {
            b'n' => Access::None,
            b'r' => Access::Read,
            b'w' => Access::Write,
            b'b' => Access::Both,
            _ => return Err(XsError::Invalid),
        };
        if digits.is_empty() || digits.len() > 5 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(XsError::Invalid);
        }
        let domid = digits
            .iter()
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'));
        let domid = DomId::try_from(domid).map_err(|_| XsError::Invalid)?;
        Ok(Self { domid, access })
    }

    /// Appends the entry's text form and a NUL.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = write!(s, "{}{}", char::from(self.access.letter()), self.domid);
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
}

/// What a connection may do with one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Rights {
    /// May read the value, children and permissions.
    pub read: bool,
    /// May write, create below, and remove.
    pub write: bool,
    /// May change the permissions.
    pub owner: bool,
}

impl Rights {
    /// Everything.
    pub const ALL: Self = Self {
        read: true,
        write: true,
        owner: true,
    };

    /// Whether every right in `need` is held.
    pub fn covers(self, need: Rights) -> bool {
        (self.read || !need.read) && (self.write || !need.write) && (self.owner || !need.owner)
    }

    /// Whether any right in `need` is held.
    pub fn intersects(self, need: Rights) -> bool {
        (self.read && need.read) || (self.write && need.write) || (self.owner && need.owner)
    }
}

/// The caller of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Who {
    /// Its domain.
    pub domid: DomId,
    /// dom0: full access everywhere, no quotas.
    pub privileged: bool,
}

impl Who {
    /// A domain; only dom0 is privileged.
    pub const fn domain(domid: DomId) -> Self {
        Self {
            domid,
            privileged: domid == 0,
        }
    }

    /// What this caller may do with a node carrying `perms` (never empty).
    pub fn rights(self, perms: &[Perm]) -> Rights {
        let Some((owner, rest)) = perms.split_first() else {
            return if self.privileged {
                Rights::ALL
            } else {
                Rights::default()
            };
        };
        if self.privileged || owner.domid == self.domid {
            return Rights::ALL;
        }
        rest.iter()
            .find(|p| p.domid == self.domid)
            .unwrap_or(owner)
            .access
            .rights()
    }

    /// Whether this caller may read a node carrying `perms`.
    pub fn can_read(self, perms: &[Perm]) -> bool {
        self.rights(perms).read
    }
}

/// Rights needed to read.
pub const NEED_READ: Rights = Rights {
    read: true,
    write: false,
    owner: false,
};
/// Rights needed to write.
pub const NEED_WRITE: Rights = Rights {
    read: false,
    write: true,
    owner: false,
};
/// Rights needed to change permissions.
pub const NEED_OWNER: Rights = Rights {
    read: false,
    write: true,
    owner: true,
};
