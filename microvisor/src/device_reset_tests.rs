//! Host tests for [`super`]: each device's reset on a register-level fake of that device
//! (write-1-to-clear, set/clear pairs and self-clearing FIFO resets modelled), starting
//! from the state a guest's driver leaves behind.

use super::*;

/// A PL061 as far as the reset concerns it.
#[derive(Default, Debug)]
struct FakePl061 {
    dir: u32,
    is: u32,
    ibe: u32,
    iev: u32,
    ie: u32,
    ris: u32,
}

impl FakePl061 {
    /// Masked status: what would be interrupting the GIC.
    fn mis(&self) -> u32 {
        self.ris & self.ie
    }
}

impl Regs for FakePl061 {
    fn write(&mut self, offset: u32, value: u32) {
        let v = value & 0xff;
        match offset {
            0x400 => self.dir = v,
            0x404 => self.is = v,
            0x408 => self.ibe = v,
            0x40c => self.iev = v,
            0x410 => self.ie = v,
            0x41c => self.ris &= !v,
            _ => panic!("PL061 write to {offset:#x}"),
        }
    }
}

#[test]
fn a_pl061_ends_masked_cleared_and_all_inputs() {
    // A guest drove lines 0-1, armed rising-edge interrupts on 2-3, and one is pending.
    let mut gpio = FakePl061 {
        dir: 0x03,
        is: 0x0c,
        ibe: 0x04,
        iev: 0x0c,
        ie: 0x0c,
        ris: 0x04,
    };
    assert_ne!(gpio.mis(), 0);
    quiesce(Kind::Pl061, &mut gpio);
    assert_eq!(gpio.mis(), 0);
    assert_eq!((gpio.ie, gpio.ris), (0, 0));
    assert_eq!(gpio.dir, 0, "every line an input");
    assert_eq!((gpio.is, gpio.ibe, gpio.iev), (0, 0, 0));
}

/// A PL031: the counter must survive.
#[derive(Default, Debug)]
struct FakePl031 {
    dr: u32,
    mr: u32,
    imsc: u32,
    ris: u32,
}

impl Regs for FakePl031 {
    fn write(&mut self, offset: u32, value: u32) {
        match offset {
            0x04 => self.mr = value,
            0x10 => self.imsc = value & 1,
            0x1c => self.ris &= !(value & 1),
            _ => panic!("PL031 write to {offset:#x} (0x08 would set the time)"),
        }
    }
}

#[test]
fn a_pl031_loses_its_alarm_not_its_time() {
    let mut rtc = FakePl031 {
        dr: 1_764_979_200,
        mr: 1_764_979_260,
        imsc: 1,
        ris: 1,
    };
    quiesce(Kind::Pl031, &mut rtc);
    assert_eq!((rtc.imsc, rtc.ris, rtc.mr), (0, 0, 0));
    assert_eq!(rtc.dr, 1_764_979_200);
}

/// A Cadence UART: enables through IER/IDR into IMR, write-1-to-clear status, RX/TX enable
/// and disable bits, self-clearing FIFO resets.
#[derive(Default, Debug)]
struct FakeCadence {
    imr: u32,
    isr: u32,
    rx_enabled: bool,
    tx_enabled: bool,
    rx_fifo: usize,
    tx_fifo: usize,
    cr_reads: u32,
    baud: u32,
}

impl Regs for FakeCadence {
    fn write(&mut self, offset: u32, value: u32) {
        match offset {
            0x00 => {
                if value & 1 != 0 {
                    self.rx_fifo = 0;
                }
                if value & 2 != 0 {
                    self.tx_fifo = 0;
                }
                if value & (1 << 2) != 0 {
                    self.rx_enabled = true;
                }
                if value & (1 << 3) != 0 {
                    self.rx_enabled = false;
                }
                if value & (1 << 4) != 0 {
                    self.tx_enabled = true;
                }
                if value & (1 << 5) != 0 {
                    self.tx_enabled = false;
                }
                // RXRST and TXRST read back as 0 once done.
                self.cr_reads = value & !3;
            }
            0x08 => self.imr |= value & 0x3fff,
            0x0c => self.imr &= !(value & 0x3fff),
            0x14 => self.isr &= !value,
            _ => panic!("Cadence write to {offset:#x} (0x18 would change the baud rate)"),
        }
    }
}

#[test]
fn a_cadence_uart_ends_silent_with_empty_fifos() {
    let mut uart = FakeCadence {
        imr: 0x0001 | 0x0100, // RX trigger and RX timeout, as xuartps enables
        isr: 0x0101,
        rx_enabled: true,
        tx_enabled: true,
        rx_fifo: 5,
        tx_fifo: 12,
        cr_reads: 0x14,
        baud: 0x7c,
    };
    quiesce(Kind::Cadence, &mut uart);
    assert_eq!((uart.imr, uart.isr), (0, 0));
    assert!(!uart.rx_enabled && !uart.tx_enabled);
    assert_eq!((uart.rx_fifo, uart.tx_fifo), (0, 0));
    assert_eq!(
        uart.cr_reads, 0x128,
        "CR's reset value: RX/TX disabled, STOPBRK"
    );
    assert_eq!(uart.baud, 0x7c);
}

#[test]
fn devices_are_known_by_any_compatible_string() {
    assert_eq!(kind_of(["arm,pl061", "arm,primecell"]), Some(Kind::Pl061));
    assert_eq!(kind_of(["arm,primecell", "arm,pl031"]), Some(Kind::Pl031));
    assert_eq!(
        kind_of(["xlnx,zynqmp-uart", "cdns,uart-r1p12"]),
        Some(Kind::Cadence)
    );
    assert_eq!(kind_of(["xlnx,xuartps"]), Some(Kind::Cadence));
    assert_eq!(kind_of(["arm,pl011", "arm,primecell"]), None);
    assert_eq!(kind_of(core::iter::empty::<&str>()), None);
}
