//! Exhaustive interleaving check of the mailbox protocol: one sender posting twice, and the
//! target CPU looking, taking and entering its guest, in every order the two can take
//! (each atomic operation or SGI is one step). The checker also runs a broken sender that
//! never sends the SGI, to show it can find a lost request.

use super::{Mailbox, RESCHED};
use std::vec::Vec;

/// Where the target CPU is.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Target {
    /// In the microvisor after an exit, about to look at the mailbox (fast path).
    Look,
    /// In the slow path, about to empty the mailbox.
    Take,
    /// Running the guest.
    InGuest,
}

/// Where the sender is in its current post.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Sender {
    /// About to post (the atomic OR).
    Post,
    /// Posted; sends the SGI next if the box was empty.
    Signal { was_empty: bool },
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct State {
    sender: Sender,
    posts_left: u8,
    box_bits: u32,
    sgi_pending: bool,
    target: Target,
}

/// Explores every interleaving; returns the reachable states where a request is stranded:
/// the sender is done, the target runs its guest with no SGI on the way, and the mailbox
/// is not empty.
fn stranded(posts: u8, sender_signals: bool) -> Vec<State> {
    let start = State {
        sender: Sender::Post,
        posts_left: posts,
        box_bits: 0,
        sgi_pending: false,
        target: Target::InGuest,
    };
    crate::test_explore::reachable_bad(
        start,
        |s| {
            let sender_done = s.posts_left == 0 && s.sender == Sender::Post;
            sender_done && s.target == Target::InGuest && !s.sgi_pending && s.box_bits != 0
        },
        |s, stack| {
            // Sender steps, run against the real Mailbox for the atomic part.
            if s.posts_left > 0 {
                match s.sender {
                    Sender::Post => {
                        let mb = Mailbox::new();
                        mb.bits
                            .store(s.box_bits, core::sync::atomic::Ordering::Relaxed);
                        let was_empty = mb.post(RESCHED);
                        stack.push(State {
                            sender: Sender::Signal { was_empty },
                            box_bits: mb.take(),
                            ..s
                        });
                    }
                    Sender::Signal { was_empty } => stack.push(State {
                        sender: Sender::Post,
                        posts_left: s.posts_left - 1,
                        sgi_pending: s.sgi_pending || (was_empty && sender_signals),
                        ..s
                    }),
                }
            }
            // Target steps.
            match s.target {
                Target::Look => {
                    let mb = Mailbox::new();
                    mb.bits
                        .store(s.box_bits, core::sync::atomic::Ordering::Relaxed);
                    let next = if mb.pending() {
                        Target::Take
                    } else {
                        Target::InGuest
                    };
                    stack.push(State { target: next, ..s });
                }
                Target::Take => {
                    let mb = Mailbox::new();
                    mb.bits
                        .store(s.box_bits, core::sync::atomic::Ordering::Relaxed);
                    let _ = mb.take();
                    // After the slow path the guest is entered without another look.
                    stack.push(State {
                        box_bits: mb.bits.load(core::sync::atomic::Ordering::Relaxed),
                        target: Target::InGuest,
                        ..s
                    });
                }
                Target::InGuest => {
                    if s.sgi_pending {
                        // The SGI makes the guest exit at once (acknowledged on the way out).
                        stack.push(State {
                            sgi_pending: false,
                            target: Target::Look,
                            ..s
                        });
                    } else {
                        // Any other exit (a hypercall on the fast path) may also happen.
                        stack.push(State {
                            target: Target::Look,
                            ..s
                        });
                    }
                }
            }
        },
    )
}

#[test]
fn no_request_is_stranded_in_any_interleaving() {
    for posts in 1..=3 {
        assert_eq!(stranded(posts, true), [], "{posts} posts");
    }
}

#[test]
fn a_sender_without_the_sgi_strands_requests() {
    assert!(!stranded(1, false).is_empty());
}

#[test]
fn post_reports_only_the_empty_to_full_edge() {
    let mb = Mailbox::new();
    assert!(!mb.pending());
    assert!(mb.post(RESCHED));
    assert!(!mb.post(RESCHED), "already non-empty: no second SGI");
    assert!(mb.pending());
    assert_eq!(mb.take(), RESCHED);
    assert!(!mb.pending());
    assert!(mb.post(RESCHED));
}
