//! Copying hypercall arguments between the microvisor and guest virtual memory.
//!
//! Xen-ABI pointer arguments are guest virtual addresses. They are copied page by page: each
//! page is translated on its own (through the guest's stage 1, then checked against the
//! domain's memory), because consecutive virtual pages need not be consecutive in guest or
//! host memory. Anything that does not translate is [`Fault`] (the hypercall returns
//! -EFAULT); nothing here dereferences a guest-chosen address without translation.

use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Granule used for chunking: the smallest page a guest can map.
const PAGE: u64 = 4096;

/// A guest pointer did not translate to memory the guest owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault;

/// One domain's memory as seen from a hypercall.
pub trait GuestMemory {
    /// Host-physical address of the byte at guest virtual `va`, if the guest maps it
    /// (writably, for `write`) to memory it owns. The page containing `va` is then valid
    /// from that address to its end.
    fn translate(&mut self, va: u64, write: bool) -> Option<u64>;
    /// Copies host-physical memory (validated by `translate`) into `buf`.
    fn read_phys(&mut self, pa: u64, buf: &mut [u8]);
    /// Copies `buf` into host-physical memory (validated by `translate`).
    fn write_phys(&mut self, pa: u64, buf: &[u8]);
}

/// Splits `[va, va + len)` at page boundaries: `(va, offset into the buffer, length)`.
pub fn page_chunks(va: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize)> {
    let mut done = 0usize;
    core::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        let at = va.wrapping_add(done as u64);
        let room = (PAGE - (at % PAGE)) as usize;
        let n = room.min(len - done);
        let chunk = (at, done, n);
        done += n;
        Some(chunk)
    })
}

/// Copies `buf.len()` bytes from guest virtual `va`.
pub fn read(mem: &mut impl GuestMemory, va: u64, buf: &mut [u8]) -> Result<(), Fault> {
    if va.checked_add(buf.len() as u64).is_none() {
        return Err(Fault);
    }
    for (at, off, n) in page_chunks(va, buf.len()) {
        let pa = mem.translate(at, false).ok_or(Fault)?;
        mem.read_phys(pa, &mut buf[off..off + n]);
    }
    Ok(())
}

/// Copies `buf.len()` bytes from guest virtual `va`, but only if every page of the range is
/// also writable: an array of operations whose results go back in place is read this way,
/// so that the write-back cannot fault once the operations are done (short of the guest
/// changing its page tables meanwhile, which still ends in [`Fault`] from [`write`]).
pub fn read_for_update(mem: &mut impl GuestMemory, va: u64, buf: &mut [u8]) -> Result<(), Fault> {
    if va.checked_add(buf.len() as u64).is_none() {
        return Err(Fault);
    }
    for (at, off, n) in page_chunks(va, buf.len()) {
        let pa = mem.translate(at, true).ok_or(Fault)?;
        mem.read_phys(pa, &mut buf[off..off + n]);
    }
    Ok(())
}

/// Copies `buf` to guest virtual `va`. Every page is translated before anything is
/// written, so a fault leaves guest memory untouched.
pub fn write(mem: &mut impl GuestMemory, va: u64, buf: &[u8]) -> Result<(), Fault> {
    if va.checked_add(buf.len() as u64).is_none() {
        return Err(Fault);
    }
    // Within one page the translation made for writing is the only check needed (nothing
    // is written unless it succeeds), so the checking pass is only for ranges that span
    // pages: each translation costs a stage-1 walk and a domain-memory lookup.
    if va % PAGE + buf.len() as u64 > PAGE {
        for (at, _, _) in page_chunks(va, buf.len()) {
            mem.translate(at, true).ok_or(Fault)?;
        }
    }
    for (at, off, n) in page_chunks(va, buf.len()) {
        let pa = mem.translate(at, true).ok_or(Fault)?;
        mem.write_phys(pa, &buf[off..off + n]);
    }
    Ok(())
}

/// Reads one fixed-layout structure from guest virtual `va` (a single copy: later guest
/// writes cannot change what the caller validates).
pub fn read_struct<T: FromBytes + IntoBytes>(
    mem: &mut impl GuestMemory,
    va: u64,
) -> Result<T, Fault> {
    let mut value = T::new_zeroed();
    read(mem, va, value.as_mut_bytes())?;
    Ok(value)
}

/// Writes one fixed-layout structure to guest virtual `va`.
pub fn write_struct<T: IntoBytes + Immutable>(
    mem: &mut impl GuestMemory,
    va: u64,
    value: &T,
) -> Result<(), Fault> {
    write(mem, va, value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    /// Guest pages mapped in reverse order to host frames, page 2 unmapped, page 3
    /// read-only.
    struct Fake {
        host: Vec<u8>,
        writes: usize,
        translations: usize,
    }

    impl GuestMemory for Fake {
        fn translate(&mut self, va: u64, write: bool) -> Option<u64> {
            self.translations += 1;
            let page = va / PAGE;
            if page >= 4 || page == 2 || (write && page == 3) {
                return None;
            }
            Some((3 - page) * PAGE + va % PAGE)
        }
        fn read_phys(&mut self, pa: u64, buf: &mut [u8]) {
            let pa = pa as usize;
            buf.copy_from_slice(&self.host[pa..pa + buf.len()]);
        }
        fn write_phys(&mut self, pa: u64, buf: &[u8]) {
            let pa = pa as usize;
            self.host[pa..pa + buf.len()].copy_from_slice(buf);
            self.writes += 1;
        }
    }

    fn fake() -> Fake {
        let host = (0..4 * PAGE as usize).map(|i| (i / 7) as u8).collect();
        Fake {
            host,
            writes: 0,
            translations: 0,
        }
    }

    #[test]
    fn chunks_split_at_page_boundaries() {
        let c: Vec<_> = page_chunks(4090, 20).collect();
        assert_eq!(c, vec![(4090, 0, 6), (4096, 6, 14)]);
        assert_eq!(page_chunks(0, 0).count(), 0);
        assert_eq!(page_chunks(0, 8192).count(), 2);
    }

    #[test]
    fn reads_follow_each_page_translation() {
        let mut m = fake();
        let mut buf = [0u8; 16];
        read(&mut m, PAGE - 8, &mut buf).unwrap();
        // Guest page 0 is host page 3, guest page 1 is host page 2.
        let want: Vec<u8> = (3 * PAGE as usize + PAGE as usize - 8..4 * PAGE as usize)
            .chain(2 * PAGE as usize..2 * PAGE as usize + 8)
            .map(|i| (i / 7) as u8)
            .collect();
        assert_eq!(&buf[..], &want[..]);
    }

    #[test]
    fn unmapped_or_overflowing_pointers_fault() {
        let mut m = fake();
        let mut buf = [0u8; 8];
        assert_eq!(read(&mut m, 2 * PAGE, &mut buf), Err(Fault));
        assert_eq!(read(&mut m, 2 * PAGE - 4, &mut buf), Err(Fault));
        assert_eq!(read(&mut m, u64::MAX - 2, &mut buf), Err(Fault));
        assert_eq!(read(&mut m, 9 * PAGE, &mut buf), Err(Fault));
    }

    #[test]
    fn a_faulting_write_changes_nothing() {
        let mut m = fake();
        let before = m.host.clone();
        // Page 1 is writable, page 2 is not mapped: nothing may be written.
        assert_eq!(write(&mut m, 2 * PAGE - 4, &[1; 8]), Err(Fault));
        // Page 3 is read-only.
        assert_eq!(write(&mut m, 3 * PAGE, &[1; 8]), Err(Fault));
        assert_eq!(m.writes, 0);
        assert_eq!(m.host, before);
        write(&mut m, PAGE - 2, &[9; 4]).unwrap();
        assert_eq!(m.writes, 2);
    }

    #[test]
    fn a_write_within_one_page_translates_once() {
        let mut m = fake();
        write(&mut m, PAGE + 8, &[7; 16]).unwrap();
        assert_eq!((m.translations, m.writes), (1, 1));
        let pa = 2 * PAGE as usize + 8;
        assert_eq!(&m.host[pa..pa + 16], &[7; 16]);
        // A range over two pages is checked whole first: two passes of two.
        m.translations = 0;
        write(&mut m, PAGE - 8, &[7; 16]).unwrap();
        assert_eq!(m.translations, 4);
    }

    #[test]
    fn read_for_update_needs_every_page_writable() {
        let mut m = fake();
        let mut buf = [0u8; 16];
        // Page 3 reads but is read-only; page 2 is unmapped.
        read(&mut m, 3 * PAGE, &mut buf).unwrap();
        assert_eq!(read_for_update(&mut m, 3 * PAGE, &mut buf), Err(Fault));
        assert_eq!(read_for_update(&mut m, 2 * PAGE - 8, &mut buf), Err(Fault));
        assert_eq!(read_for_update(&mut m, u64::MAX - 2, &mut buf), Err(Fault));
        // Pages 0 and 1 are writable: the same bytes as a plain read.
        let mut plain = [0u8; 16];
        read(&mut m, PAGE - 8, &mut plain).unwrap();
        read_for_update(&mut m, PAGE - 8, &mut buf).unwrap();
        assert_eq!(buf, plain);
    }

    #[test]
    fn structs_round_trip() {
        let mut m = fake();
        write_struct(&mut m, 100, &0x1122_3344_5566_7788u64).unwrap();
        let v: u64 = read_struct(&mut m, 100).unwrap();
        assert_eq!(v, 0x1122_3344_5566_7788);
    }
}
