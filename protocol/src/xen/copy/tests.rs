//! The segment split both backends rely on.

use super::*;
use alloc::vec::Vec;

#[test]
fn pieces_split_at_local_page_boundaries_only() {
    let segs = [
        Placed {
            seg: GrantSeg {
                gref: 7,
                offset: 512,
                len: 3584,
            },
            at: 0,
        },
        Placed {
            seg: GrantSeg {
                gref: 8,
                offset: 0,
                len: 4096,
            },
            at: 3584,
        },
    ];
    // A local buffer starting 1 KiB into a page.
    let mut out = Vec::new();
    copy_pieces(&segs, 0x1_0400, &mut out);
    let got: Vec<_> = out
        .iter()
        .map(|p| (p.gref, p.remote_offset, p.local, p.len))
        .collect();
    assert_eq!(
        got,
        [
            (7, 512, 0x1_0400, 3072),
            (7, 3584, 0x1_1000, 512),
            (8, 0, 0x1_1200, 3584),
            (8, 3584, 0x1_2000, 512),
        ]
    );
    assert_eq!(
        out.iter().map(|p| usize::from(p.len)).sum::<usize>(),
        3584 + 4096
    );
    // A page-aligned buffer and page-sized segments need no split.
    out.clear();
    let one = [Placed { at: 0, ..segs[1] }];
    copy_pieces(&one, 0x2_0000, &mut out);
    assert_eq!(out.len(), 1);
    // Pieces placed apart keep their places.
    out.clear();
    let apart = [
        Placed {
            at: 8192,
            ..segs[1]
        },
        Placed { at: 0, ..segs[1] },
    ];
    copy_pieces(&apart, 0x2_0000, &mut out);
    let got: Vec<_> = out.iter().map(|p| (p.local, p.len)).collect();
    assert_eq!(got, [(0x2_2000, 4096), (0x2_0000, 4096)]);
}

#[test]
fn pieces_end_to_end_split_at_local_page_boundaries_only() {
    let segs = [
        GrantSeg {
            gref: 7,
            offset: 100,
            len: 1400,
        },
        GrantSeg {
            gref: 8,
            offset: 0,
            len: 0,
        },
        GrantSeg {
            gref: 9,
            offset: 0,
            len: 4096,
        },
    ];
    // Laid end to end, as netfront's TX fragments once were.
    let mut at = 0;
    let placed: Vec<Placed> = segs
        .iter()
        .map(|&seg| {
            let p = Placed { seg, at };
            at += usize::from(seg.len);
            p
        })
        .collect();
    let mut out = Vec::new();
    copy_pieces(&placed, 0x1_0F00, &mut out);
    let got: Vec<_> = out
        .iter()
        .map(|p| (p.gref, p.remote_offset, p.local, p.len))
        .collect();
    assert_eq!(
        got,
        [
            (7, 100, 0x1_0F00, 256),
            (7, 356, 0x1_1000, 1144),
            (9, 0, 0x1_1478, 2952),
            (9, 2952, 0x1_2000, 1144),
        ]
    );
}
