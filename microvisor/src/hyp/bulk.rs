//! Bulk memory work done outside the global lock: scrubbing a domain's RAM, copying its
//! image in and cleaning it to memory at build, and scrubbing it before it is freed.
//!
//! Loading a 256 MiB Linux guest means zeroing 256 MiB and copying a 33 MiB kernel: tens of
//! milliseconds of work. Done under [`super::HYP`], every other CPU's exit would wait for it,
//! so a pinned RTOS would miss its deadlines whenever a domain is built. Instead the code
//! holding the lock queues [`Op`]s on its CPU's [`Bulk`]; the run loop takes the queue,
//! releases the lock, performs the ops, then retakes the lock to apply the [`Finish`]
//! steps (marking the domain loaded, returning frames to the allocator).
//!
//! Invariants: the memory an op touches belongs to nobody else while it runs. A loading
//! domain's vCPUs are not runnable until its `Ready` step, and memory to be freed is
//! unmapped from its domain's stage 2 and not yet back in the allocator. A CPU's queue is
//! executed in order, so a domain destroyed while it loads gets its scrub queued behind the
//! load on the loading CPU.
//!
//! A sealed upload given back ([`Op::GiveBackSealed`]) is not done in its turn: the loop
//! over the ops passes it by, and only a second loop, after every op of the batch has run,
//! releases its seal, scrubs the frames and hands them to the finish steps. So every copy
//! this CPU queued from it (in this batch or an earlier one) is done before its frames can
//! be written, by the shape of [`Bulk::execute`] rather than by where the op was put in
//! the queue; the copies themselves keep no slice of it past their own op, and a copy on
//! another CPU (a domain built from the same upload, destroyed while it loaded there) is
//! waited for by the release itself (`arch::phys::copy_module`, `Sealed::release`).

use super::Hyp;
use crate::arch::{self, phys};
use crate::mm::lazy_ram::State;
use alloc::vec::Vec;
use protocol::addr::{PhysAddr, PAGE_SIZE};
use protocol::ids::DomainId;

impl Op {
    /// The range a `Copy` or `Bytes` writes, `(start, length)`.
    pub fn written(&self) -> Option<(u64, u64)> {
        match self {
            Op::Copy { dst, len, .. } => Some((*dst, *len)),
            Op::Bytes { dst, bytes } => Some((*dst, bytes.len() as u64)),
            _ => None,
        }
    }
}

/// One memory operation (host-physical addresses).
#[derive(Debug)]
pub enum Op {
    /// Zero `[pa, pa + len)`.
    Zero {
        /// Start.
        pa: u64,
        /// Length.
        len: u64,
    },
    /// Zero `[pa, pa + len)` and clean it to the point of coherency, in one pass (a new
    /// domain's RAM: it starts with its MMU off).
    ZeroToPoc {
        /// Start.
        pa: u64,
        /// Length.
        len: u64,
    },
    /// Copy `len` bytes from `src` (a boot module or a sealed upload) to `dst`.
    Copy {
        /// Destination.
        dst: u64,
        /// Source.
        src: u64,
        /// Length.
        len: u64,
    },
    /// Write `bytes` at `dst`.
    Bytes {
        /// Destination.
        dst: u64,
        /// What to write.
        bytes: Vec<u8>,
    },
    /// Give back the `pages` frames at `pa` of a sealed upload the upload table freed
    /// (`crate::uploads::Freed`, the only way its seal leaves the table): after all the
    /// batch's other ops, its seal is released (taken then), the frames scrubbed and freed.
    GiveBackSealed(Option<phys::Sealed>, PhysAddr, u64),
    /// Clean `[pa, pa + len)` from the data cache to memory (a guest starting with its MMU
    /// off reads memory uncached).
    Clean {
        /// Start.
        pa: u64,
        /// Length.
        len: u64,
    },
    /// Scrub block `block` of a running domain's lazily scrubbed RAM `ram`, which its guest
    /// touched ([`super::lazy`]; nothing if it was scrubbed meanwhile or its frames are
    /// being freed).
    LazyScrub {
        /// The domain's RAM (a copy sharing its scrub state).
        ram: crate::mm::ram::RamMap,
        /// Block index.
        block: usize,
    },
    /// Release a dying domain's lazily scrubbed RAM: no first-touch scrub may start any
    /// more, those in progress (on any CPU) are waited for, then every block it could ever
    /// have seen is zeroed. A block still pending was never exposed to anyone and holds
    /// nothing of this domain's; it goes back as it came (every later owner scrubs before
    /// it exposes a frame, as for memory at boot).
    ReleaseLazy(crate::mm::ram::RamMap),
}

/// What to do under the lock once the ops are done.
#[derive(Debug)]
pub enum Finish {
    /// Incarnation `instance` of domain `id` is loaded: its vCPUs may run.
    Ready(DomainId, u32),
    /// Return `pages` frames at `pa` to the allocator.
    Free(PhysAddr, u64),
    /// Map block `block` of incarnation `instance` of domain `id`, scrubbed by a `LazyScrub`
    /// (its vCPU then retries the access that faulted).
    LazyMap(DomainId, u32, usize),
}

/// One CPU's queued work.
#[derive(Debug, Default)]
pub struct Bulk {
    /// Operations, in order.
    pub ops: Vec<Op>,
    /// Steps after them, in order.
    pub finish: Vec<Finish>,
}

impl Bulk {
    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.finish.is_empty()
    }

    /// Performs the ops. Call without holding the global lock.
    pub fn execute(&mut self) {
        // Per the module invariants every range belongs to a domain that cannot run yet
        // or to frames on their way back to the allocator, so nothing else reads or writes
        // it meanwhile; `Copy` sources are boot modules (reserved, never written) or sealed
        // uploads, whose seals go only after the ops (below). A range the doorway refuses
        // is a microvisor bug: reported, and the op skipped rather than done somewhere else.
        for op in &self.ops {
            let done = match op {
                Op::Zero { pa, len } => window(*pa, *len).map(|w| w.zero()),
                Op::ZeroToPoc { pa, len } => window(*pa, *len).map(|w| w.zero_to_poc()),
                Op::Copy { dst, src, len } => {
                    phys::copy_module(PhysAddr::new(*dst), PhysAddr::new(*src), *len)
                }
                Op::Bytes { dst, bytes } => {
                    window(*dst, bytes.len() as u64).and_then(|w| w.write(0, bytes).ok())
                }
                Op::Clean { pa, len } => {
                    arch::clean_dcache_range(*pa, *len);
                    Some(())
                }
                Op::LazyScrub { ram, block } => {
                    // False only if the domain is being freed: its frames get scrubbed then.
                    let _ = ram
                        .lazy()
                        .map(|lazy| lazy.ensure_clean(*block, || ram.block_pieces(*block)));
                    Some(())
                }
                Op::ReleaseLazy(ram) => {
                    if let Some(lazy) = ram.lazy() {
                        lazy.retire();
                        let exposed = (0..lazy.len()).filter(|&b| lazy.state(b) != State::Pending);
                        for (pa, len) in exposed.flat_map(|b| ram.block_pieces(b)) {
                            if window(pa.as_u64(), len).map(|w| w.zero()).is_none() {
                                crate::info!("release scrub refused by the memory doorway: {pa}");
                            }
                        }
                    }
                    Some(())
                }
                // Not yet: below.
                Op::GiveBackSealed(..) => Some(()),
            };
            if done.is_none() {
                crate::info!("bulk op refused by the memory doorway: {op:?}");
                // A load's range was not zeroed first (`Hyp::build_domain_at`): never
                // leave it holding what an earlier owner wrote.
                if let Some((pa, len)) = op.written() {
                    let _ = window(pa, len).map(|w| w.zero_to_poc());
                }
            }
        }
        // A domain's image was written where other code may have run: no instruction
        // cache may still hold that.
        if self.ops.iter().any(|op| op.written().is_some()) {
            arch::coherence::invalidate_icache_for_new_code();
        }
        // Every copy this CPU queued is done (module docs): the sealed uploads given back
        // can be written again, scrubbed, and freed at the finish.
        for op in &mut self.ops {
            let Op::GiveBackSealed(seal, pa, pages) = op else {
                continue;
            };
            let Some(seal) = seal.take() else { continue };
            seal.release();
            if window(pa.as_u64(), *pages * PAGE_SIZE)
                .map(|w| w.zero())
                .is_none()
            {
                crate::info!("upload scrub refused by the memory doorway: {pa}");
            }
            self.finish.push(Finish::Free(*pa, *pages));
        }
    }
}

/// The doorway's window onto `[pa, pa + len)` (`None` for an empty or unreachable range).
fn window(pa: u64, len: u64) -> Option<phys::Window> {
    phys::Window::new(PhysAddr::new(pa), len)
}

impl Hyp {
    /// Applies the finish steps of work this CPU performed.
    pub fn finish_bulk(&mut self, done: Bulk, cpu: usize) {
        for step in done.finish {
            match step {
                Finish::Ready(id, instance) => {
                    let Some(d) = self.domain_mut(id) else {
                        continue;
                    };
                    if d.instance == instance {
                        d.loading = None;
                        self.refresh_runnable(id, cpu);
                        if let Some(line) = self.holds.build_done(id.0) {
                            crate::info!("{}", line);
                        }
                    }
                }
                Finish::LazyMap(id, instance, block) => {
                    if self
                        .domain(id)
                        .is_some_and(|d| d.instance == instance && !d.dying)
                    {
                        self.lazy_map(id, block);
                    }
                }
                Finish::Free(pa, pages) => {
                    // The bitmap allocator refuses only a double free (F11: nothing is lost
                    // to fragmentation), which would be a microvisor bug.
                    let r = self.frames.free(pa, pages);
                    debug_assert!(r.is_ok(), "RAM at {pa} freed twice");
                }
            }
        }
    }

    /// Queues the scrub and release of `pages` frames at `pa` on `cpu` (the CPU loading
    /// them, if a load is still in flight, so the scrub runs after it).
    pub fn queue_scrub_and_free(&mut self, pa: PhysAddr, pages: u64, cpu: usize) {
        let q = &mut self.bulk[cpu];
        q.ops.push(Op::Zero {
            pa: pa.as_u64(),
            len: pages * PAGE_SIZE,
        });
        q.finish.push(Finish::Free(pa, pages));
    }
}
