//! A guest's first touch of a RAM block its build did not scrub ([`crate::mm::lazy_ram`]):
//! the stage-2 translation fault queues the block's scrub on this CPU's bulk queue (done
//! without the global lock, [`super::bulk`]) and maps the block after it; the vCPU retries
//! the access, which then succeeds. Which domains get lazily scrubbed RAM is decided by
//! [`lazily_scrubbed`].

use super::bulk::{Finish, Op};
use super::Hyp;
use crate::arch::phys::Window;
use crate::mm::frames::BLOCK_SIZE;
use crate::mm::lazy_ram::State;
use crate::mm::pagetable::{Attrs, MapError, MemType, PageTable, TableMemory};
use crate::trap::FaultKind;
use protocol::addr::{PhysAddr, PAGE_SIZE};
use protocol::ids::DomainId;
use protocol::layout::GUEST_RAM_BASE;

/// Guest RAM in stage 2: normal memory, read, write, execute (the build maps it so too).
pub const RAM: Attrs = Attrs {
    mem: MemType::Normal,
    read: true,
    write: true,
    exec: true,
};

/// Whether a domain whose RAM is physically `contiguous` (see
/// [`super::loader::needs_contiguous_ram`]) gets it scrubbed on first touch.
///
/// A Linux `Image` does: it reaches memory only through its CPUs (stage 2, which faults)
/// and through the microvisor (grants, hypercall arguments, which scrub first). Our flat
/// images get contiguous RAM because they program DMA with host addresses, and a device
/// writing a block the CPU never touched would later be wiped by its scrub; they stay
/// scrubbed at build.
pub fn lazily_scrubbed(contiguous: bool) -> bool {
    !contiguous
}

/// Zeroes `[pa, pa + len)` and cleans it to the point of coherency: a guest's block on
/// first touch (the domain is running; its caches may be off).
pub fn scrub_block(pa: PhysAddr, len: u64) {
    scrub_with(pa, len, Window::zero_to_poc);
}

/// Zeroes `[pa, pa + len)`: a block of a guest whose RAM stage 2 forces write-back
/// ([`crate::mm::pagetable::Stage::Stage2ForcedWb`]), so its accesses always meet the
/// cache the zeroes are in.
pub fn scrub_block_forced_wb(pa: PhysAddr, len: u64) {
    scrub_with(pa, len, Window::zero);
}

fn scrub_with(pa: PhysAddr, len: u64, scrub: fn(&Window)) {
    match Window::new(pa, len) {
        Some(w) => scrub(&w),
        // A microvisor bug: the block belongs to a live domain.
        None => crate::info!("lazy scrub refused by the memory doorway: {pa} + {len:#x}"),
    }
}

impl Hyp {
    /// A stage-2 abort of domain `id` at `ipa` with status `fault`: true if it is the first
    /// touch of a block not scrubbed yet, or a touch racing with its mapping, in which case
    /// the access is simply retried (the caller leaves the PC alone).
    pub(super) fn lazy_fault(
        &mut self,
        id: DomainId,
        ipa: u64,
        fault: FaultKind,
        cpu: usize,
    ) -> bool {
        if !matches!(fault, FaultKind::Translation { .. }) {
            return false;
        }
        let Some(d) = self.domain(id) else {
            return false;
        };
        let Some(lazy) = d.ram.lazy() else {
            return false;
        };
        let Some(offset) = ipa
            .checked_sub(GUEST_RAM_BASE.as_u64())
            .filter(|&o| o < d.ram.size())
        else {
            return false;
        };
        let block = (offset / BLOCK_SIZE) as usize;
        match lazy.state(block) {
            State::Pending | State::Scrubbing => {
                // Scrubbed after this pass releases the lock, mapped at its finish; a second
                // vCPU faulting on it meanwhile queues the same and finds it done.
                let (ram, instance) = (d.ram.clone(), d.instance);
                let q = &mut self.bulk[cpu];
                q.ops.push(Op::LazyScrub { ram, block });
                q.finish.push(Finish::LazyMap(id, instance, block));
                true
            }
            State::Clean => self.lazy_map(id, block),
            // Mapped by another CPU since this vCPU faulted: retry if it is there now.
            State::Mapped => self.stage2_translates(id, ipa),
        }
    }

    /// Maps clean block `block` of domain `id` into its stage 2 (pages something else
    /// already mapped inside it are left alone). True if the block is mapped now.
    pub(super) fn lazy_map(&mut self, id: DomainId, block: usize) -> bool {
        let Some(d) = self.domain(id) else {
            return false;
        };
        let Some(lazy) = d.ram.lazy().cloned() else {
            return true;
        };
        match lazy.state(block) {
            State::Clean => {}
            State::Mapped => return true,
            State::Pending | State::Scrubbing => return false,
        }
        let (start, _) = d.ram.block_range(block);
        let pieces = d.ram.block_pieces(block);
        let Some((stage2, mut tables)) = self.stage2_mut(id) else {
            return false;
        };
        let mut ipa = GUEST_RAM_BASE.as_u64() + start;
        // The block's zeroes (this CPU's or, read through its state, another's) reach every
        // observer before the entries that expose them.
        crate::arch::dsb_ishst();
        for (pa, len) in pieces {
            // Invalid to valid: no TLB holds a translation fault, so nothing to invalidate.
            if let Err(e) = map_around(stage2, &mut tables, ipa, pa, len) {
                crate::info!("{id}: could not map RAM block {block} on first touch: {e:?}");
                return false;
            }
            ipa += len;
        }
        // And the entries reach the table walkers before the vCPU retries its access.
        crate::arch::dsb_ishst();
        lazy.set_mapped(block);
        true
    }

    /// Domain `id`'s RAM block holding `ipa`, scrubbed and mapped now if it was not (before
    /// the stage 2 is edited inside it, as `XENMEM_add_to_physmap` does). False if it
    /// could not be.
    pub(super) fn lazy_materialize(&mut self, id: DomainId, ipa: u64) -> bool {
        let Some(d) = self.domain(id) else {
            return false;
        };
        let Some(offset) = ipa.checked_sub(GUEST_RAM_BASE.as_u64()) else {
            return true;
        };
        if d.ram.lazy().is_none() || !d.ram.contains(offset, 1) {
            return true;
        }
        d.ram.ensure_clean(offset, 1) && self.lazy_map(id, (offset / BLOCK_SIZE) as usize)
    }

    /// Whether domain `id`'s stage 2 maps `ipa`.
    fn stage2_translates(&mut self, id: DomainId, ipa: u64) -> bool {
        self.stage2_mut(id)
            .is_some_and(|(pt, tables)| pt.translate(&tables, ipa).is_some())
    }
}

/// Maps `[ipa, ipa + len)` to `pa` as guest RAM; where part of it is mapped already (a page
/// `add_to_physmap` placed), page by page around it.
fn map_around(
    pt: &mut PageTable,
    mem: &mut impl TableMemory,
    ipa: u64,
    pa: PhysAddr,
    len: u64,
) -> Result<(), MapError> {
    match pt.map(mem, ipa, pa, len, RAM) {
        Err(MapError::AlreadyMapped) => {}
        other => return other,
    }
    for off in (0..len).step_by(PAGE_SIZE as usize) {
        if pt.translate(mem, ipa + off).is_none() {
            let page = pa.checked_add(off).ok_or(MapError::Misaligned)?;
            pt.map(mem, ipa + off, page, PAGE_SIZE, RAM)?;
        }
    }
    Ok(())
}
