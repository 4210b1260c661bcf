use super::{fold, Seeds};

#[test]
fn boot_loader_seeds_fold_into_a_key_and_absence_is_none() {
    assert_eq!(fold([].into_iter()), None, "no property, no entropy");
    let a = [1u8; 32];
    let b = [0x10u8; 8];
    let folded = fold([&a[..], &b[..]]).unwrap();
    assert_eq!(
        folded[..8],
        [0x11; 8],
        "the kaslr-seed bytes land on the first eight"
    );
    assert_eq!(folded[8..], [1; 24]);
    let long: Vec<u8> = (0..64).collect();
    let f = fold([&long[..]]).unwrap();
    assert_eq!(f[0], 32, "byte 32 wraps onto byte 0");
}

#[test]
fn every_build_gets_its_own_seeds_and_no_source_gives_none() {
    assert!(
        Seeds::new(None, None).is_none(),
        "nothing predictable is handed out"
    );
    let mut s = Seeds::new(Some([7; 32]), None).unwrap();
    let mut again = s.clone();
    let (one, two) = (s.draw(), s.draw());
    assert_ne!(one, two, "each build its own");
    assert_eq!(
        one,
        again.draw(),
        "a function of the key and the build number"
    );
    assert_ne!(one.rng, [0; 32]);
    assert_ne!(one.rng, [7; 32], "the source itself is never handed on");
    let mut with_cpu = Seeds::new(Some([7; 32]), Some([9; 32])).unwrap();
    let first = with_cpu.draw();
    assert_ne!(first, one, "the CPU's randomness changes the key");
    let mut cpu_only = Seeds::new(None, Some([9; 32])).unwrap();
    assert_ne!(cpu_only.draw(), first);
}

#[test]
fn the_boot_log_names_the_sources() {
    assert_eq!(
        Seeds::describe(true, true),
        "keyed from the boot loader's rng-seed and RNDR"
    );
    assert_eq!(Seeds::describe(false, true), "keyed from RNDR");
    assert_eq!(
        Seeds::describe(false, false),
        "none (no rng-seed from the boot loader, no RNDR)"
    );
}

#[test]
fn wiping_zeroes_only_the_spans_inside_the_tree() {
    let mut blob = [0xffu8; 16];
    super::wipe(
        &mut blob,
        &[Some((2, 3)), None, Some((14, 4)), Some((usize::MAX, 2))],
    );
    assert_eq!(blob[..2], [0xff; 2]);
    assert_eq!(blob[2..5], [0; 3]);
    assert_eq!(blob[5..], [0xff; 11], "a span past the end is left alone");
}
