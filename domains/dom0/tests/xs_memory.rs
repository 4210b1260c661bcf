//! dom0's heap held by one unprivileged xenstore connection stays under its memory quota
//! (security review F1). A counting global allocator measures what the store keeps after
//! hostile request sequences: transactions full of deep READs of missing nodes, a node
//! fill, a watch fill, and a connection that never drains its replies.
//!
//! One test function only: the allocator counts every thread of this test binary.

use dom0::xenstore::{Quotas, Xenstore};
use protocol::xen::ring::{xs_message, XsType, XsdSockmsg, XS_HEADER_LEN};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Net bytes allocated (allocations minus frees) by the whole test binary.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed through.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const GUEST: u16 = 3;

/// Sends one request as `GUEST`, returns the reply's type and payload (events skipped).
fn call(xs: &mut Xenstore, ty: XsType, tx: u32, payload: &[u8]) -> (u32, Vec<u8>) {
    xs.feed(GUEST, &xs_message(ty, 7, tx, payload)).unwrap();
    let out = xs.take_output(GUEST, usize::MAX);
    let mut at = &out[..];
    let mut reply = None;
    while at.len() >= XS_HEADER_LEN {
        let h = XsdSockmsg::decode(at).unwrap();
        let end = XS_HEADER_LEN + h.len as usize;
        if h.ty != XsType::WatchEvent as u32 {
            reply = Some((h.ty, at[XS_HEADER_LEN..end].to_vec()));
        }
        at = &at[end..];
    }
    reply.expect("a reply")
}

fn z(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn err(reply: &(u32, Vec<u8>)) -> Option<String> {
    (reply.0 == XsType::Error as u32).then(|| {
        String::from_utf8_lossy(&reply.1)
            .trim_end_matches('\0')
            .to_string()
    })
}

/// The longest relative path the quota allows, every component missing.
fn deep_missing() -> String {
    let mut p = String::from("a");
    while p.len() + 2 <= protocol::xen::ring::XENSTORE_REL_PATH_MAX {
        p.push_str("/a");
    }
    p
}

#[test]
fn one_connection_holds_at_most_its_memory_quota() {
    let quotas = Quotas::default();
    let bound = quotas.memory as isize;
    // Allocator and bookkeeping slack not charged byte for byte (map nodes, vectors' spare
    // capacity): a fixed allowance, small next to the quota.
    let slack = 64 * 1024;
    let mut xs = Xenstore::new(quotas);
    xs.introduce(GUEST).unwrap();
    let before = live();

    // 1. Every transaction the quota allows, each with deep READs of missing nodes: each
    // READ notes the path and all its ancestors in the read set.
    let deep = z(&deep_missing());
    let mut refused = Vec::new();
    for _ in 0..quotas.transactions {
        let (ty, id) = call(&mut xs, XsType::TransactionStart, 0, b"\0");
        if ty == XsType::Error as u32 {
            refused.push(String::from_utf8_lossy(&id).to_string());
            continue;
        }
        let tx: u32 = std::str::from_utf8(&id)
            .unwrap()
            .trim_end_matches('\0')
            .parse()
            .unwrap();
        for _ in 0..4 {
            if let Some(e) = err(&call(&mut xs, XsType::Read, tx, &deep)) {
                refused.push(e);
            }
        }
    }
    let held = live() - before;
    assert!(
        held < bound + slack,
        "transactions hold {held} bytes, quota {bound}"
    );
    // The transaction-memory quota (ENOSPC) or the domain's (ENOMEM) stops the growth.
    assert!(
        refused.iter().any(|e| e == "ENOSPC" || e == "ENOMEM"),
        "no quota refused anything: {refused:?}"
    );
    assert!(refused
        .iter()
        .all(|e| e == "ENOSPC" || e == "ENOMEM" || e == "EACCES"));

    // 2. Fill nodes with maximal values until refused.
    let value = vec![b'v'; quotas.node_size];
    let mut fill_refused = None;
    for i in 0..quotas.nodes {
        let mut req = z(&format!("n{i}"));
        req.extend_from_slice(&value);
        if let Some(e) = err(&call(&mut xs, XsType::Write, 0, &req)) {
            fill_refused = Some(e);
            break;
        }
    }
    let held = live() - before;
    assert!(
        held < bound + slack,
        "nodes hold {held} bytes, quota {bound}"
    );
    assert_eq!(fill_refused.as_deref(), Some("ENOMEM"));

    // 3. Watches with long tokens.
    let token = "t".repeat(1000);
    for i in 0..quotas.watches {
        let mut req = z(&format!("w{i}"));
        req.extend_from_slice(&z(&token));
        call(&mut xs, XsType::Watch, 0, &req);
    }
    let held = live() - before;
    assert!(
        held < bound + slack,
        "watches hold {held} bytes, quota {bound}"
    );

    // 4. Releasing the domain frees everything its connection held.
    xs.release(GUEST).unwrap();
    let _ = xs.remove_node(&format!("/local/domain/{GUEST}"));
    let held = live() - before;
    assert!(held < slack, "{held} bytes left after release");
}
