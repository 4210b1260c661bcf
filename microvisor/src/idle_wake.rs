//! Whether the exit a locked pass is about to handle is a WFI that its CPU waited out at
//! EL2 with the vCPU loaded.
//!
//! A shared vCPU alone on its pCPU waits out its WFI at EL2 with its state still loaded
//! (the fast path's `WfiWait`): it is never marked blocked, because nothing else there
//! wants the CPU. When the wait ends for another vCPU of that CPU (a sibling's interrupt,
//! a post from another CPU), the locked pass that wakes the sibling would find the waiting
//! vCPU runnable, run the two in turn, and bring the first back only for it to execute WFI
//! again. With two idle driver domains on one pCPU, every request served by one of them
//! cost three locked passes that way. So the fast path notes every such wake here, and a
//! locked pass that follows at once blocks a shared vCPU as for a trapped WFI, unless
//! something is deliverable to it by then (the wake was its own: an interrupt the fast path
//! placed, or one the pass itself injects), which `Hyp::wfi` checks.
//!
//! The note names the exit it was made at (the CPU's exit count), so it never outlives
//! that exit: the guest re-entered since means another exit, and the note no longer
//! matches. Nothing is written on the fast path's other exits.
#![forbid(unsafe_code)]

/// The exit (by this CPU's exit count since its last locked pass) at which the loaded vCPU's
/// WFI wait ended, if that is the latest note.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdleWake {
    at: Option<u64>,
}

impl IdleWake {
    /// Notes that the WFI wait at exit `exits` ended.
    pub fn note(&mut self, exits: u64) {
        self.at = Some(exits);
    }

    /// Whether the exit the locked pass is handling (`exits`, the count before the pass
    /// folds it) is the noted one; forgets the note either way.
    pub fn take(&mut self, exits: u64) -> bool {
        self.at.take() == Some(exits)
    }
}

#[cfg(test)]
mod tests {
    use super::IdleWake;

    #[test]
    fn a_note_holds_for_its_own_exit_only_and_once() {
        let mut w = IdleWake::default();
        assert!(!w.take(0), "nothing noted");
        w.note(7);
        assert!(w.take(7));
        assert!(!w.take(7), "taken once");
        // The guest went back in after the note: a later exit is not the noted one, and
        // the note is gone for good (exit counts restart after the pass).
        w.note(7);
        assert!(!w.take(8));
        assert!(!w.take(7));
        w.note(u64::MAX);
        assert!(w.take(u64::MAX));
    }
}
