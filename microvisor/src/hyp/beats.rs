//! `DomainBeatsMany`: the heartbeats and CPU time of every domain a controller watches, in
//! one capability call (one locked pass) rather than a `DomainBeats` and a `DomainQuery`
//! each.

use super::capcall::Reply;
use super::Hyp;
use alloc::vec::Vec;
use protocol::cap::Rights;
use protocol::control::{Beats, BeatsReading, CapError, BEATS_MANY_MAX};
use protocol::ids::DomainId;

impl Hyp {
    /// Serves `DomainBeatsMany` for vCPU `v` of domain `id`: the handles are `len` bytes of
    /// its message page, the readings go back there.
    pub(super) fn beats_many(&self, id: DomainId, v: usize, len: u64) -> Result<Reply, CapError> {
        let bytes = self.request_bytes(id, v, len)?;
        let handles: Vec<u64> = postcard::from_bytes(&bytes).map_err(|_| CapError::BadMessage)?;
        if handles.len() > BEATS_MANY_MAX {
            return Err(CapError::TooLarge);
        }
        let readings: Vec<Result<BeatsReading, CapError>> = handles
            .iter()
            .map(|&raw| self.beats_reading(id, raw))
            .collect();
        let len = self.reply_message(id, v, &readings)?;
        Ok([len, 0, 0])
    }

    /// One domain's reading, through `holder`'s Domain cap `raw` (READ).
    fn beats_reading(&self, holder: DomainId, raw: u64) -> Result<BeatsReading, CapError> {
        let target = self.domain_cap(holder, raw, Rights::READ)?;
        let beats = self.incarnation_beats(target)?;
        let cpu_ticks = self.cpu_ticks(target).ok_or(CapError::Stale)?;
        Ok(BeatsReading { beats, cpu_ticks })
    }

    /// The heartbeats of `target`'s current incarnation (`DomainBeats`): none while it
    /// restarts in place, the old incarnation's beats not being the new one's.
    pub(super) fn incarnation_beats(&self, target: DomainId) -> Result<Beats, CapError> {
        let t = self.domain(target).ok_or(CapError::Stale)?;
        Ok(if t.dying {
            Beats::default()
        } else {
            super::fast_slots::beats(target)
        })
    }

    /// `target`'s CPU time in counter ticks, summed over its vCPUs, as `DomainQuery`
    /// reports it (an exclusive vCPU's reported idle time left out).
    pub(super) fn cpu_ticks(&self, target: DomainId) -> Option<u64> {
        let d = self.domain(target)?;
        let idle = |v: usize| super::fast_slots::idle(target, v);
        Some(
            d.vcpus
                .iter()
                .enumerate()
                .map(|(v, c)| {
                    self.live_stats(target, v, c.stats)
                        .busy_ticks(c.placement.exclusive, idle(v))
                })
                .sum(),
        )
    }
}
