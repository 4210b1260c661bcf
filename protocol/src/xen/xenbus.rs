//! XenBus device states (`public/io/xenbus.h`), written as decimal strings to the `state` key
//! of a split driver's frontend and backend directories.

abi_enum! {
    /// `enum xenbus_state`.
    pub enum XenbusState: u32 {
        /// Not yet set up (also: the node is missing or unparsable).
        Unknown = 0,
        /// The toolstack created the device; the driver is starting.
        Initialising = 1,
        /// Backend: features published, waiting for the frontend's transport parameters.
        InitWait = 2,
        /// Frontend: transport parameters (rings, event channel) published.
        Initialised = 3,
        /// Both ends are in service.
        Connected = 4,
        /// Tearing down; the other end should disconnect.
        Closing = 5,
        /// Disconnected; may be reinitialised.
        Closed = 6,
        /// Reconfiguration requested.
        Reconfiguring = 7,
        /// Reconfiguration done.
        Reconfigured = 8,
    }
}

impl XenbusState {
    /// Parses a `state` node's value (decimal, optionally NUL-terminated); anything else is
    /// [`XenbusState::Unknown`], as Linux's xenbus treats an unreadable state.
    pub fn parse(value: &[u8]) -> Self {
        let v = value.strip_suffix(&[0]).unwrap_or(value);
        core::str::from_utf8(v)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .and_then(|n| Self::try_from(n).ok())
            .unwrap_or(Self::Unknown)
    }

    /// The decimal digit written to a `state` node.
    pub fn as_str(self) -> &'static str {
        ["0", "1", "2", "3", "4", "5", "6", "7", "8"][self as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::XenbusState;

    #[test]
    fn states_parse_and_print() {
        for n in 0u32..=8 {
            let s = XenbusState::try_from(n).unwrap();
            assert_eq!(s.as_str(), alloc::format!("{n}"));
            assert_eq!(XenbusState::parse(s.as_str().as_bytes()), s);
        }
        assert_eq!(XenbusState::parse(b"4\0"), XenbusState::Connected);
        assert_eq!(XenbusState::parse(b"9"), XenbusState::Unknown);
        assert_eq!(XenbusState::parse(b"x"), XenbusState::Unknown);
        assert_eq!(XenbusState::parse(b""), XenbusState::Unknown);
    }
}
