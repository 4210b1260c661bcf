//! Supervision facts for `ctl list` / `ctl info NAME` ([`super::Request::Health`]): how many
//! times each domain was restarted in place, why the last time, how long it took to recover,
//! its heartbeat watchdog and, if dom0 holds it, why.
//!
//! Recovery time, precisely: from the moment dom0 decided the domain had to restart (it
//! observed the stop, its watchdog fired, or `ctl restart` arrived) to the counter stamp of
//! the new incarnation's first heartbeat. A Bulkhead-runtime domain sends its first beat
//! when its event loop first goes idle, i.e. once it is ready to serve; so the time covers
//! the restart backoff, the rebuild, the boot and the reconnection. Domains that do not
//! beat (guests) have no recovery time.

use alloc::format;
use alloc::string::String;
use serde::{Deserialize, Serialize};

/// Why a domain was last restarted in place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RestartReason {
    /// A user's `ctl restart`.
    User,
    /// It crashed (a fault, an unhandled trap, or its runtime reported an exception or a
    /// panic) and its `on_crash` policy is restart.
    Crash {
        /// What happened, in words (e.g. `undefined instruction (esr 0x2000000)`).
        what: String,
    },
    /// It stopped sending heartbeats.
    Watchdog {
        /// How long it had been silent when the watchdog fired, in milliseconds.
        silent_ms: u64,
    },
    /// It asked to reboot (or `ctl reboot` asked it) and its `on_reboot` is restart.
    Reboot,
    /// It powered off and its `on_poweroff` is restart.
    PowerOff,
}

impl RestartReason {
    /// One word for tables: `ctl restart`, `crash`, `watchdog`, `reboot`, `poweroff`.
    pub const fn word(&self) -> &'static str {
        match self {
            Self::User => "ctl restart",
            Self::Crash { .. } => "crash",
            Self::Watchdog { .. } => "watchdog",
            Self::Reboot => "reboot",
            Self::PowerOff => "poweroff",
        }
    }

    /// The word and, when known, the detail: `crash: undefined instruction (esr 0x2000000)`.
    pub fn text(&self) -> String {
        match self {
            Self::Crash { what } => format!("crash: {what}"),
            Self::Watchdog { silent_ms } => format!(
                "watchdog: no heartbeat for {}.{} s",
                silent_ms / 1000,
                silent_ms % 1000 / 100
            ),
            other => other.word().into(),
        }
    }
}

/// The latest restart in place of a domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartRecord {
    /// Why.
    pub reason: RestartReason,
    /// Milliseconds since dom0 decided to restart it.
    pub ago_ms: u64,
    /// Recovery time (see the module docs) in milliseconds; `None` until the new
    /// incarnation's first heartbeat, and for domains that do not beat.
    pub recovery_ms: Option<u64>,
}

/// One domain's supervision facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthRow {
    /// Domain id.
    pub id: u16,
    /// Name.
    pub name: String,
    /// Restarts in place since boot: 0 for the first incarnation.
    pub incarnation: u32,
    /// The latest restart, if any.
    pub last_restart: Option<RestartRecord>,
    /// Its heartbeat watchdog's timeout in milliseconds; `None`: no watchdog.
    pub watchdog_ms: Option<u32>,
    /// Milliseconds since its latest heartbeat in this incarnation; `None`: none yet.
    pub beat_ago_ms: Option<u64>,
    /// dom0 holds it stopped instead of restarting it, and why (a crash loop, a failed
    /// restart); `None` while it is supervised normally.
    pub held: Option<String>,
}

/// A reported crash code in words. Our runtime reports an unexpected exception with its
/// ESR as the code and a panic as `0xdead`.
pub fn crash_code_text(code: u64) -> String {
    if code == 0xdead {
        return "panic".into();
    }
    let what = match (code >> 26) & 0x3f {
        0x00 => "undefined instruction",
        0x15 => "unexpected system call",
        0x18 => "trapped system register access",
        0x20 | 0x21 => "instruction abort",
        0x22 => "pc alignment fault",
        0x24 | 0x25 => "data abort",
        0x26 => "sp alignment fault",
        0x2f => "SError",
        0x3c => "breakpoint",
        _ => "exception",
    };
    format!("{what} (esr {code:#x})")
}
