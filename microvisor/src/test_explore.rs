//! The exhaustive interleaving search the protocol tests share (mailbox, posted
//! interrupts, a fast send racing a re-pin): every state reachable from a start state,
//! each visited once.

use std::collections::HashSet;
use std::hash::Hash;
use std::vec::Vec;

/// Every state reachable from `start` for which `bad` holds. `next` pushes a state's
/// successors (each actor's possible step) onto the given stack.
pub fn reachable_bad<S: Copy + Eq + Hash>(
    start: S,
    bad: impl Fn(&S) -> bool,
    mut next: impl FnMut(S, &mut Vec<S>),
) -> Vec<S> {
    let mut seen = HashSet::new();
    let mut stack = std::vec![start];
    let mut found = Vec::new();
    while let Some(s) = stack.pop() {
        if !seen.insert(s) {
            continue;
        }
        if bad(&s) {
            found.push(s);
        }
        next(s, &mut stack);
    }
    found
}
