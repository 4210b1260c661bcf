//! `ModuleCreate`, `ModuleWrite` and `ModuleFree`: modules uploaded at run time, so the
//! toolstack can build a domain from a file the system was not booted with (`xl create`).
//! The table and its rules are [`crate::uploads`]; this file owns their memory.
//!
//! Invariants that make [`Hyp::module`]'s slice of an upload sound: an upload is written
//! only while no domain refers to it (the first `DomainCreate` naming it seals it, in the
//! table and in the memory doorway, which then opens no window onto it), and its frames go
//! back (unsealed, then scrubbed) only once no domain refers to it, queued on the CPU that
//! frees the last such domain, behind any load still copying from it there. The seal is
//! kept in the upload table and comes out only with the upload the table frees
//! ([`crate::uploads::Freed`]); the queue releases it after its copies ([`super::bulk`]).

use super::bulk::Op;
use super::Hyp;
use crate::arch::phys::{Sealed, Window};
use crate::captable::{Capability, Object};
use crate::uploads::{pages_for, Freed, Upload};
use protocol::addr::PAGE_SIZE;
use protocol::cap::{CapHandle, CapKind, Rights};
use protocol::control::{CapError, MSG_PAGE_SIZE};
use protocol::ids::DomainId;

/// Results of a successful call, placed in x1..x3.
type Reply = [u64; 3];

impl Hyp {
    /// `ModuleCreate`: `a[0]` = Memory cap, `a[1]` = size, `a[2]` = label length.
    pub(super) fn module_create(
        &mut self,
        cpu: usize,
        id: DomainId,
        v: usize,
        a: &[u64; 6],
    ) -> Result<Reply, CapError> {
        let memory = CapHandle::from_raw(a[0]).ok_or(CapError::InvalidHandle)?;
        let pages = pages_for(a[1])?;
        let d = self.domain(id).ok_or(CapError::Stale)?;
        let Object::Memory { quota_pages } = d
            .caps
            .lookup(memory, CapKind::Memory, Rights::WRITE)?
            .object
        else {
            return Err(CapError::WrongKind);
        };
        let bytes = self.request_bytes(id, v, a[2])?;
        let label: alloc::string::String =
            postcard::from_bytes(&bytes).map_err(|_| CapError::BadMessage)?;
        if quota_pages < pages {
            return Err(CapError::NoMemory);
        }
        if !self.uploads.has_room() {
            return Err(CapError::NoSlots);
        }
        let base = self
            .frames
            .alloc(pages, PAGE_SIZE)
            .map_err(|_| CapError::NoMemory)?;
        let Some(upload) = Upload::new(&label, base, a[1], (id, memory)) else {
            let _ = self.frames.free(base, pages);
            return Err(CapError::InvalidArgument);
        };
        let index = self.uploads.insert(upload)?;
        let d = self.domain_mut(id).ok_or(CapError::Stale)?;
        let cap = Capability {
            object: Object::Module { index },
            rights: Rights::READ | Rights::WRITE,
        };
        let handle = match d.caps.insert(cap) {
            Ok(h) => h,
            Err(e) => {
                self.uploads.drop_holder(usize::from(index), |_| false);
                let _ = self.frames.free(base, pages);
                return Err(e);
            }
        };
        if let Ok(c) = d.caps.get_mut(memory) {
            if let Object::Memory { quota_pages } = &mut c.object {
                *quota_pages -= pages;
            }
        }
        // Frames come back scrubbed, but ones never used since boot hold whatever the
        // firmware left: zero them outside the lock before the creator can read them.
        self.bulk[cpu].ops.push(Op::Zero {
            pa: base.as_u64(),
            len: pages * PAGE_SIZE,
        });
        crate::info!("{id} uploads module {label} ({} KiB)", a[1].div_ceil(1024));
        Ok([handle.to_raw(), 0, 0])
    }

    /// `ModuleWrite`: `a[0]` = Module cap, `a[1]` = offset, `a[2]` = length.
    pub(super) fn module_write(
        &mut self,
        id: DomainId,
        v: usize,
        a: &[u64; 6],
    ) -> Result<Reply, CapError> {
        let index = self.writable_module(id, a[0])?;
        let len = a[2];
        if len as usize > MSG_PAGE_SIZE {
            return Err(CapError::InvalidArgument);
        }
        let dst = self.uploads.write_target(index, a[1], len)?;
        let d = self.domain(id).ok_or(CapError::Stale)?;
        let page = d.vcpus[v].msg_page.ok_or(CapError::NoMsgPage)?;
        let mut buf = alloc::vec![0u8; len as usize];
        let page = Window::new(page, MSG_PAGE_SIZE as u64).ok_or(CapError::NoMsgPage)?;
        page.read(0, &mut buf).map_err(|_| CapError::BadMessage)?;
        // An unsealed upload: pool RAM no domain reads (module docs), so a window opens.
        Window::new(protocol::addr::PhysAddr::new(dst), len)
            .ok_or(CapError::InvalidArgument)?
            .write(0, &buf)
            .map_err(|_| CapError::InvalidArgument)?;
        Ok([len, 0, 0])
    }

    /// `ModuleFree`: `a[0]` = Module cap.
    pub(super) fn module_free(
        &mut self,
        cpu: usize,
        id: DomainId,
        a: &[u64; 6],
    ) -> Result<Reply, CapError> {
        let index = self.writable_module(id, a[0])?;
        let h = CapHandle::from_raw(a[0]).ok_or(CapError::InvalidHandle)?;
        let d = self.domain_mut(id).ok_or(CapError::Stale)?;
        d.caps.remove(h)?;
        let freed = self
            .uploads
            .drop_holder(index, |i| module_in_use(&self.domains, &self.guest_dts, i));
        if let Some(u) = freed {
            self.give_back_upload(u, cpu);
        }
        Ok([0; 3])
    }

    /// Frees every upload that neither its creator nor a domain keeps any more; `cpu` is
    /// where the scrub runs (behind a load from it still in flight there).
    pub(super) fn reclaim_uploads(&mut self, cpu: usize) {
        let freed = self
            .uploads
            .reclaim(|i| module_in_use(&self.domains, &self.guest_dts, i));
        for u in freed {
            self.give_back_upload(u, cpu);
        }
    }

    /// Seals module `index` if it is an upload: no more writes, and the doorway reads it
    /// as bytes from now on (no effect on boot modules or a sealed upload).
    pub(super) fn seal_module(&mut self, index: usize) {
        self.uploads.seal(index, |u| {
            Window::new(u.base, u.pages() * PAGE_SIZE).and_then(Sealed::new)
        });
    }

    /// Unseals, scrubs and frees an upload's frames and refunds the quota it was charged to.
    fn give_back_upload(&mut self, freed: Freed<Sealed>, cpu: usize) {
        let Freed { upload: u, seal } = freed;
        let pages = u.pages();
        match seal {
            Some(seal) => self.bulk[cpu]
                .ops
                .push(Op::GiveBackSealed(Some(seal), u.base, pages)),
            None => self.queue_scrub_and_free(u.base, pages, cpu),
        }
        let (holder, memory) = u.charged_to;
        if let Some(c) = self
            .domain_mut(holder)
            .and_then(|d| d.caps.get_mut(memory).ok())
        {
            if let Object::Memory { quota_pages } = &mut c.object {
                *quota_pages = quota_pages.saturating_add(pages);
            }
        }
    }

    /// The upload a Module cap with WRITE names (boot modules are never writable).
    fn writable_module(&self, holder: DomainId, raw: u64) -> Result<usize, CapError> {
        let h = CapHandle::from_raw(raw).ok_or(CapError::InvalidHandle)?;
        let d = self.domain(holder).ok_or(CapError::Stale)?;
        match d.caps.lookup(h, CapKind::Module, Rights::WRITE)?.object {
            Object::Module { index } if self.uploads.get(usize::from(index)).is_some() => {
                Ok(usize::from(index))
            }
            _ => Err(CapError::WrongKind),
        }
    }
}

/// Whether some domain (live, dying or waiting to be rebuilt) refers to module `index`.
fn module_in_use(
    domains: &[Option<alloc::boxed::Box<super::domain::Domain>>],
    guest_dts: &[Option<u16>],
    index: usize,
) -> bool {
    let index = Some(index as u16);
    domains.iter().enumerate().any(|(i, d)| {
        d.as_ref().is_some_and(|d| {
            d.spec.module == index
                || d.spec.ramdisk_module == index
                || guest_dts.get(i).copied().flatten() == index
        })
    })
}
