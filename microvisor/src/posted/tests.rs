//! Posted interrupts: placement decisions, and an exhaustive interleaving check of the
//! protocol between one sender (posting to the word, then the mailbox, then maybe the SGI)
//! and the target CPU (fast path: look, clear `POSTED`, take the word; slow path: take the
//! word at the hand-over, then the mailbox and the word again in `schedule`); and one of a
//! fast event-channel send racing a re-pin of its target.

use super::*;
use crate::mailbox::{Mailbox, POSTED, RESCHED};
use std::vec::Vec;

fn cfg(enabled: u32, eoi: u32, prio: u8) -> PrivateCfg {
    PrivateCfg {
        enabled,
        eoi,
        priority: [prio; 32],
    }
}

#[test]
fn a_vgicv2_gets_group0_lrs() {
    let mut lrs = [0u64; 2];
    let v2 = lr::group_bit(protocol::layout::GicVersion::V2);
    assert_eq!(
        place_posted(1 << 5, &mut lrs, &cfg(!0, 0, 0xa0), v2),
        (0b1, 0)
    );
    assert_eq!(
        lrs[0],
        lr::build(5, 0xa0, false, false, lr::LrState::Pending)
    );
    assert!(!lr::group1(lrs[0]));
}

#[test]
fn places_enabled_interrupts_in_free_lrs() {
    let mut lrs = [lr::make(27, 0, false) | lr::HW, 0, 0];
    let (placed, left) = place_posted(
        (1 << 1) | (1 << 31),
        &mut lrs,
        &cfg(!0, 1 << 31, 0xa0),
        lr::GROUP1,
    );
    assert_eq!((placed, left), (0b110, 0));
    assert_eq!(lrs[1], lr::make(1, 0xa0, false));
    assert_eq!(lrs[2], lr::make(31, 0xa0, true), "EOI notification kept");
}

#[test]
fn leaves_what_it_cannot_place_to_the_slow_path() {
    // Disabled: the model keeps it pending until the guest enables it.
    let mut lrs = [0u64; 2];
    assert_eq!(
        place_posted(1 << 2, &mut lrs, &cfg(0, 0, 0), lr::GROUP1),
        (0, 1 << 2)
    );
    assert_eq!(lrs, [0, 0]);
    // Already in an LR (pending or active): the model coalesces it.
    let mut lrs = [lr::make(2, 0, false) | lr::ACTIVE, 0];
    assert_eq!(
        place_posted(1 << 2, &mut lrs, &cfg(!0, 0, 0), lr::GROUP1),
        (0, 1 << 2)
    );
    // No free LR: the first fits, the second waits.
    let mut lrs = [0, lr::make(9, 0, false)];
    assert_eq!(
        place_posted((1 << 3) | (1 << 4), &mut lrs, &cfg(!0, 0, 0), lr::GROUP1),
        (0b01, 1 << 4)
    );
    // Nothing posted: nothing done.
    assert_eq!(
        place_posted(0, &mut [0u64; 4], &cfg(!0, 0, 0), lr::GROUP1),
        (0, 0)
    );
}

/// Where the target CPU is.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Target {
    InGuest,
    /// Fast path after an exit: reads the mailbox.
    Look,
    /// Fast path: clears `POSTED` (the correct order) ...
    FastClear,
    /// ... then takes the word and places what it can (or puts some back and goes slow).
    FastTake,
    /// The broken order: clears `POSTED` only after taking the word.
    LateClear,
    /// Slow path: the hand-over takes the loaded vCPU's word.
    HandOver,
    /// `schedule`: empties the mailbox ...
    SchedMailbox,
    /// ... then takes the word again.
    SchedWord,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Sender {
    Word,
    Mailbox,
    Signal { was_empty: bool },
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct State {
    sender: Sender,
    posts_left: u8,
    word: u32,
    mailbox: u32,
    sgi: bool,
    target: Target,
    /// The sender also posts `RESCHED` (another CPU asking for a decision).
    resched_too: bool,
}

/// Runs one atomic mailbox operation on a copy of `bits`.
fn mb<R>(bits: u32, f: impl FnOnce(&Mailbox) -> R) -> (R, u32) {
    let m = Mailbox::new();
    m.post(bits);
    let r = f(&m);
    (r, m.take())
}

/// Runs one atomic word operation on a copy of `bits`.
fn word<R>(bits: u32, f: impl FnOnce(&PostedIrqs) -> R) -> (R, u32) {
    let w = PostedIrqs::new();
    w.post(bits);
    let r = f(&w);
    (r, w.take())
}

/// Every reachable state where a request is stranded: the sender is done, the target is in
/// its guest with no SGI coming, and the word still holds an interrupt or the mailbox a
/// `RESCHED`.
/// `fast_clears_first` false models a broken target that takes the word before clearing
/// the mailbox bit.
fn stranded(posts: u8, resched_too: bool, fast_clears_first: bool) -> Vec<State> {
    let start = State {
        sender: Sender::Word,
        posts_left: posts,
        word: 0,
        mailbox: 0,
        sgi: false,
        target: Target::InGuest,
        resched_too,
    };
    crate::test_explore::reachable_bad(
        start,
        |s| {
            let waiting = s.word != 0 || s.mailbox & RESCHED != 0;
            s.posts_left == 0 && s.target == Target::InGuest && !s.sgi && waiting
        },
        |s, stack| {
            if s.posts_left != 0 {
                let intid = u32::from(s.posts_left);
                match s.sender {
                    Sender::Word => {
                        let ((), w) = word(s.word, |w| w.post(1 << intid));
                        stack.push(State {
                            sender: Sender::Mailbox,
                            word: w,
                            ..s
                        });
                    }
                    Sender::Mailbox => {
                        let bits = POSTED | if s.resched_too { RESCHED } else { 0 };
                        let (was_empty, m) = mb(s.mailbox, |m| m.post(bits));
                        stack.push(State {
                            sender: Sender::Signal { was_empty },
                            mailbox: m,
                            ..s
                        });
                    }
                    Sender::Signal { was_empty } => stack.push(State {
                        sender: Sender::Word,
                        posts_left: s.posts_left - 1,
                        sgi: s.sgi || was_empty,
                        ..s
                    }),
                }
            }
            let to = |target, word, mailbox| State {
                target,
                word,
                mailbox,
                ..s
            };
            match s.target {
                Target::InGuest => {
                    // The SGI forces an exit; any other exit may also happen at any time.
                    stack.push(State {
                        sgi: false,
                        target: Target::Look,
                        ..s
                    });
                    stack.push(to(Target::Look, s.word, s.mailbox));
                }
                Target::Look => {
                    let next = match s.mailbox {
                        0 => Target::InGuest,
                        POSTED if fast_clears_first => Target::FastClear,
                        POSTED => Target::FastTake,
                        _ => Target::HandOver,
                    };
                    stack.push(to(next, s.word, s.mailbox));
                }
                Target::FastClear => {
                    let (_, m) = mb(s.mailbox, |m| m.clear(POSTED));
                    stack.push(to(Target::FastTake, s.word, m));
                }
                Target::FastTake => {
                    let (got, _) = word(s.word, |w| w.take());
                    if !fast_clears_first {
                        stack.push(to(Target::LateClear, 0, s.mailbox));
                        return;
                    }
                    // Everything placed: look again (a request may have come meanwhile).
                    stack.push(to(Target::Look, 0, s.mailbox));
                    // Some left: put back, slow path.
                    if got != 0 {
                        stack.push(to(Target::HandOver, got, s.mailbox));
                    }
                }
                Target::LateClear => {
                    let (_, m) = mb(s.mailbox, |m| m.clear(POSTED));
                    stack.push(to(Target::InGuest, s.word, m));
                }
                Target::HandOver => {
                    stack.push(to(Target::SchedMailbox, 0, s.mailbox));
                }
                Target::SchedMailbox => {
                    let (_, m) = mb(s.mailbox, |m| m.take());
                    stack.push(to(Target::SchedWord, s.word, m));
                }
                Target::SchedWord => {
                    stack.push(to(Target::InGuest, 0, s.mailbox));
                }
            }
        },
    )
}

#[test]
fn no_posted_interrupt_is_stranded_in_any_interleaving() {
    for posts in 1..=3 {
        for resched in [false, true] {
            assert_eq!(stranded(posts, resched, true), [], "{posts} posts");
        }
    }
}

#[test]
fn taking_the_word_before_clearing_the_mailbox_strands_one() {
    assert!(!stranded(2, false, false).is_empty());
}

/// A fast event-channel send racing a re-pin of its target (`xen::event_state::send_fast`
/// against `Hyp::pin_vcpu` / `enqueue_moved`), over every interleaving:
/// - the sender, under the event lock, reads the target's placement and, if it names a
///   CPU, posts to the target's word; after the lock, it posts to that CPU's mailbox (a
///   placement of 0, "moving", sends it to the locked path, which delivers by itself);
/// - the mover sets the placement to 0, waits for the event lock once (`quiesce`), and
///   later, on arrival, sets the new CPU and drains the word into the vGIC model;
/// - each CPU, finding its mailbox non-empty, takes it and drains the words of the vCPUs
///   in its run queue: the old CPU has the target only until the mover zeroes the
///   placement (same locked pass), the new one from its arrival.
///
/// Returns the final states where the post is stranded: everyone done, mailboxes empty,
/// and the word still set. `quiesce` false leaves the wait out.
fn move_strands(quiesce: bool) -> Vec<MoveState> {
    let start = MoveState {
        sender: SendStep::Lock,
        seen: None,
        mover: MoveStep::Zero,
        placement: Some(Cpu::Old),
        locked: false,
        word: false,
        mail: [false; 2],
    };
    crate::test_explore::reachable_bad(
        start,
        |s| {
            s.sender == SendStep::Done
                && s.mover == MoveStep::Done
                && s.mail == [false; 2]
                && s.word
        },
        |s, stack| {
            // The sender.
            match s.sender {
                SendStep::Lock if !s.locked => stack.push(MoveState {
                    sender: SendStep::Read,
                    locked: true,
                    ..s
                }),
                SendStep::Read => stack.push(match s.placement {
                    None => MoveState {
                        sender: SendStep::Done,
                        locked: false,
                        ..s
                    },
                    Some(cpu) => MoveState {
                        sender: SendStep::Post,
                        seen: Some(cpu),
                        ..s
                    },
                }),
                SendStep::Post => stack.push(MoveState {
                    sender: SendStep::Unlock,
                    word: true,
                    ..s
                }),
                SendStep::Unlock => stack.push(MoveState {
                    sender: SendStep::Mail,
                    locked: false,
                    ..s
                }),
                SendStep::Mail => {
                    let mut mail = s.mail;
                    if let Some(cpu) = s.seen {
                        mail[cpu as usize] = true;
                    }
                    stack.push(MoveState {
                        sender: SendStep::Done,
                        mail,
                        ..s
                    });
                }
                SendStep::Lock | SendStep::Done => {}
            }
            // The mover.
            match s.mover {
                MoveStep::Zero => stack.push(MoveState {
                    mover: if quiesce {
                        MoveStep::Quiesce
                    } else {
                        MoveStep::Arrive
                    },
                    placement: None,
                    ..s
                }),
                MoveStep::Quiesce if !s.locked => stack.push(MoveState {
                    mover: MoveStep::Arrive,
                    ..s
                }),
                MoveStep::Arrive => stack.push(MoveState {
                    mover: MoveStep::Done,
                    placement: Some(Cpu::New),
                    word: false,
                    ..s
                }),
                MoveStep::Quiesce | MoveStep::Done => {}
            }
            // The CPUs' locked passes.
            for cpu in [Cpu::Old, Cpu::New] {
                if !s.mail[cpu as usize] {
                    return;
                }
                let mut mail = s.mail;
                mail[cpu as usize] = false;
                let queued_here = match cpu {
                    Cpu::Old => s.mover == MoveStep::Zero,
                    Cpu::New => s.mover == MoveStep::Done,
                };
                stack.push(MoveState {
                    mail,
                    word: s.word && !queued_here,
                    ..s
                });
            }
        },
    )
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Cpu {
    Old = 0,
    New = 1,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum SendStep {
    Lock,
    Read,
    Post,
    Unlock,
    Mail,
    Done,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum MoveStep {
    Zero,
    Quiesce,
    Arrive,
    Done,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct MoveState {
    sender: SendStep,
    /// The placement the sender read.
    seen: Option<Cpu>,
    mover: MoveStep,
    /// The target's `VCPU_CPU` entry (`None`: moving).
    placement: Option<Cpu>,
    /// The sender holds the event lock (the mover's `quiesce` only waits for it to be free).
    locked: bool,
    /// The target's posted word holds PPI 31.
    word: bool,
    /// Each CPU's mailbox holds `POSTED`.
    mail: [bool; 2],
}

#[test]
fn a_fast_send_racing_a_move_is_never_stranded() {
    assert_eq!(move_strands(true), []);
}

#[test]
fn without_the_quiesce_a_send_racing_a_move_can_be_stranded() {
    assert!(!move_strands(false).is_empty());
}
