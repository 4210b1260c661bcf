//! Console input: bytes typed on the UART go to one domain at a time (the focus). Three
//! Ctrl-A in a row move the focus to the next domain, as on Xen's console. Whoever reads
//! the focus's input is told with its control-event PPI: dom0 for its own prompt, the
//! focus's controller (dom0) for a guest whose PV console it serves, so neither has to
//! poll for input that has no event of its own.

use super::Hyp;
use crate::arch::uart;
use protocol::ids::DomainId;

/// The byte that, three times in a row, switches the focus.
const SWITCH_BYTE: u8 = 0x01;

impl Hyp {
    /// Drains the UART's receive FIFO into the focused domain's input, then tells the
    /// domain that reads it (see the module docs).
    pub fn console_input(&mut self, cpu: usize) {
        let mut typed = false;
        while let Some(b) = uart::read_byte() {
            typed = true;
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
        if typed {
            self.tell_input_reader(cpu);
        }
    }

    /// Raises the control-event PPI of the domain that reads the focus's console input:
    /// the focus's controller if it has one (its PV console is served there), else the
    /// focus itself (dom0's prompt). A spurious event costs the reader one look.
    fn tell_input_reader(&mut self, cpu: usize) {
        let Some(d) = self.domain(self.focus) else {
            return;
        };
        let reader = d.parent.map_or(self.focus, |(p, _)| p);
        if self.domain(reader).is_some() {
            self.inject(reader, 0, protocol::layout::CONTROL_EVENT_PPI, cpu);
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
