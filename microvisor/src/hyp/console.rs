//! Console input: bytes typed on the UART go to one domain at a time (the focus). Three
//! Ctrl-A in a row move the focus to the next domain, as on Xen's console.

use super::Hyp;
use crate::arch::uart;
use protocol::ids::DomainId;

/// The byte that, three times in a row, switches the focus.
const SWITCH_BYTE: u8 = 0x01;

impl Hyp {
    /// Drains the UART's receive FIFO into the focused domain's input.
    pub fn console_input(&mut self) {
        while let Some(b) = uart::read_byte() {
            if b == SWITCH_BYTE {
                self.switch_presses += 1;
                if self.switch_presses == 3 {
                    self.switch_presses = 0;
                    self.cycle_focus();
                }
                continue;
            }
            // Fewer than three Ctrl-A were typed: they belong to the domain.
            for _ in 0..core::mem::take(&mut self.switch_presses) {
                self.push_input(SWITCH_BYTE);
            }
            self.push_input(b);
        }
    }

    /// Queues one byte of console input for domain `id` (dropping its oldest byte if full).
    pub fn push_input_to(&mut self, id: DomainId, b: u8) {
        if self.domain(id).is_some() {
            if let Some(c) = super::fast_slots::slot(id) {
                c.lock().push_input(b);
            }
        }
    }

    fn push_input(&mut self, b: u8) {
        if self.domain(self.focus).is_none() {
            // The focused domain is gone: input returns to dom0.
            self.focus = DomainId::DOM0;
        }
        self.push_input_to(self.focus, b);
    }

    /// Moves the focus to the next live domain in id order (wrapping).
    fn cycle_focus(&mut self) {
        let n = self.domains.len();
        let start = usize::from(self.focus.0);
        let next = (1..=n)
            .map(|i| (start + i) % n)
            .find(|&i| self.domains[i].as_ref().is_some_and(|d| !d.dying));
        if let Some(i) = next {
            self.focus = DomainId(i as u16);
            let name = self.domains[i].as_ref().map_or("?", |d| d.name.as_str());
            crate::info!("console input now goes to {} ({})", self.focus, name);
        }
    }
}
