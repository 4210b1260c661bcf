use super::*;

fn layout() -> Layout {
    let mut l = Layout::new();
    l.add_ram(0x4000_0000, 0x4000_0000).unwrap();
    // The image and the heap.
    l.add_private(0x4000_0000, 0x20_0000).unwrap();
    l.add_private(0x5000_0000, 0x80_0000).unwrap();
    l.finish();
    l
}

#[test]
fn memory_windows_stay_in_ram_and_out_of_private_ranges() {
    let l = layout();
    assert!(l.memory_ok(0x4020_0000, 4096));
    assert!(l.memory_ok(0x7fff_f000, 4096));
    // The image, the heap, their edges.
    assert!(!l.memory_ok(0x4000_0000, 8));
    assert!(!l.memory_ok(0x401f_fff8, 16));
    assert!(!l.memory_ok(0x4fff_f000, 4096 * 2));
    assert!(!l.memory_ok(0x5000_0000 + 0x7f_fff8, 8));
    assert!(l.memory_ok(0x5080_0000, 8));
    // Outside RAM, straddling its end, empty, wrapping.
    assert!(!l.memory_ok(0x3fff_f000, 4096));
    assert!(!l.memory_ok(0x7fff_f000, 8192));
    assert!(!l.memory_ok(0x4100_0000, 0));
    assert!(!l.memory_ok(u64::MAX - 3, 8));
}

#[test]
fn device_windows_never_touch_ram() {
    let l = layout();
    assert!(l.device_ok(0x0900_0000, 0x1000));
    assert!(!l.device_ok(0x3fff_f000, 0x2000));
    assert!(!l.device_ok(0x4800_0000, 4));
    assert!(!l.device_ok(u64::MAX, 2));
}

#[test]
fn modules_are_readable_and_private_the_heap_is_only_private() {
    let mut l = layout();
    l.add_module(0x4400_0000, 0x10_0000).unwrap();
    l.finish();
    assert!(l.is_module(0x4400_1000, 0x1000));
    assert!(!l.is_module(0x440f_f000, 0x2000));
    assert!(!l.memory_ok(0x440f_f000, 8));
    // The heap is private but not a module: never readable as a slice.
    assert!(!l.is_module(0x5000_0000, 8));
    assert!(!l.is_module(0x4800_0000, 8));
}

#[test]
fn private_ranges_merge_when_they_touch_in_any_order() {
    let mut l = Layout::new();
    l.add_ram(0x4000_0000, 0x4000_0000).unwrap();
    // Back-to-back modules added out of order, one range inside another, one apart.
    for (base, len) in [
        (0x4410_0000, 0x1000),
        (0x4400_0000, 0x10_0000),
        (0x4410_1000, 0x2000),
        (0x4400_1000, 0x10),
        (0x4800_0000, 0x1000),
    ] {
        l.add_private(base, len).unwrap();
    }
    l.finish();
    assert_eq!(l.nr_private, 2);
    assert_eq!(l.nr_reach, 3);
    for pa in [
        0x4400_0000,
        0x440f_fff8,
        0x4410_0ff8,
        0x4410_2ff8,
        0x4800_0ff8,
    ] {
        assert!(!l.memory_ok(pa, 8), "{pa:#x}");
    }
    for pa in [0x43ff_fff8, 0x4410_3000, 0x47ff_fff8, 0x4800_1000] {
        assert!(l.memory_ok(pa, 8), "{pa:#x}");
    }
    // A window spanning a gap between two private ranges overlaps both.
    assert!(!l.memory_ok(0x4410_0000, 0x400_0000));
}

#[test]
fn full_lists_are_refused_not_truncated() {
    let mut l = Layout::new();
    for i in 0..MAX_RAM as u64 {
        l.add_ram(i << 32, 4096).unwrap();
    }
    assert_eq!(l.add_ram(0x100 << 32, 4096), Err(Rejected));
    for i in 0..MAX_PRIVATE as u64 {
        l.add_private(i << 20, 4096).unwrap();
    }
    assert_eq!(l.add_private(0x7000_0000, 4096), Err(Rejected));
    assert_eq!(l.add_private(0x7000_0000, 0), Ok(()));
}

#[test]
fn sealed_ranges_block_windows_until_released() {
    let s = SealedSet::new();
    assert!(!s.overlaps(0x4800_0000, 4096));
    let a = s.seal(0x4800_0000, 0x3000).unwrap();
    let b = s.seal(0x4900_0000, 0x1000).unwrap();
    assert_ne!(a, b);
    assert!(s.overlaps(0x4800_2ff8, 8));
    assert!(!s.overlaps(0x4800_3000, 8));
    assert!(s.overlaps(0x48ff_f000, 0x2000));
    assert!(s.contains(0x4800_1000, 0x2000));
    assert!(!s.contains(0x4800_1000, 0x3000));
    s.release(a);
    assert!(!s.overlaps(0x4800_0000, 4096));
    assert!(!s.contains(0x4800_0000, 0x3000));
    // Releasing twice is harmless; the other seal stays.
    s.release(a);
    assert!(s.overlaps(0x4900_0000, 1));
    s.release(b);
    assert!(!s.overlaps(0x4900_0000, 1));
}

#[test]
fn sealed_slots_run_out_cleanly() {
    let s = SealedSet::new();
    for i in 0..MAX_SEALED as u64 {
        s.seal(0x4000_0000 + i * 0x1000, 0x1000).unwrap();
    }
    assert_eq!(s.seal(0x6000_0000, 0x1000), Err(Rejected));
    assert_eq!(s.seal(0x6000_0000, 0), Err(Rejected));
}

#[test]
fn nothing_is_reachable_before_finish_and_banks_may_come_in_any_order() {
    let mut l = Layout::new();
    l.add_ram(0x8_8000_0000, 0x1000_0000).unwrap();
    l.add_ram(0x4000_0000, 0x1000_0000).unwrap();
    l.add_private(0x4000_0000, 0x1000).unwrap();
    l.add_private(0x8_8fff_f000, 0x1000).unwrap();
    assert!(!l.memory_ok(0x4000_1000, 8));
    l.finish();
    assert!(l.memory_ok(0x4000_1000, 8));
    assert!(l.memory_ok(0x8_8000_0000, 0x0fff_f000));
    assert!(!l.memory_ok(0x8_8000_0000, 0x0fff_f001));
    assert!(!l.memory_ok(0x4000_0ff8, 16));
    // Between the banks.
    assert!(!l.memory_ok(0x5000_0000, 8));
    assert!(!l.memory_ok(0x4fff_fff8, 16));
}
