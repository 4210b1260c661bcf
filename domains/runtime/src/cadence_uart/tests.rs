//! A model of the UART as the TRM describes it (as QEMU implements it): enable and disable
//! bits, a 16-byte FIFO each way, SR from the FIFO levels, a sticky ISR set from SR.

use super::*;
use std::collections::VecDeque;

const FIFO_LEN: usize = 16;

#[derive(Default)]
struct Model {
    r: [u32; 0x48 / 4],
    rx: VecDeque<u8>,
    tx: VecDeque<u8>,
    /// Registers written, in order (offsets).
    writes: Vec<usize>,
}

impl Model {
    fn reset() -> Self {
        let mut m = Model::default();
        m.r[CR / 4] = CR_RX_DIS | CR_TX_DIS | CR_STOPBRK;
        m.r[RXWM / 4] = 0x20;
        m.r[0x18 / 4] = 0xF; // baud-rate generator
        m
    }
    fn enabled(&self, en: u32, dis: u32) -> bool {
        self.r[CR / 4] & (en | dis) == en
    }
    fn update(&mut self) {
        let mut sr = 0;
        if self.rx.is_empty() {
            sr |= SR_RXEMPTY;
        }
        if self.rx.len() as u32 >= self.r[RXWM / 4] {
            sr |= INT_RXTRIG;
        }
        if self.tx.is_empty() {
            sr |= SR_TXEMPTY;
        }
        if self.tx.len() == FIFO_LEN {
            sr |= SR_TXFULL;
        }
        self.r[SR / 4] = sr;
        self.r[ISR / 4] |= sr & 0x1F;
    }
    fn receive(&mut self, bytes: &[u8]) {
        if self.enabled(CR_RX_EN, CR_RX_DIS) {
            for &b in bytes.iter().take(FIFO_LEN - self.rx.len()) {
                self.rx.push_back(b);
            }
        }
        self.update();
    }
    fn irq(&self) -> bool {
        self.r[IMR / 4] & self.r[ISR / 4] != 0
    }
}

impl Regs for &mut Model {
    fn read(&mut self, offset: usize) -> u32 {
        let v = match offset {
            FIFO => self.rx.pop_front().map_or(0, u32::from),
            o => self.r[o / 4],
        };
        self.update();
        v
    }
    fn write(&mut self, offset: usize, value: u32) {
        self.writes.push(offset);
        match offset {
            IER => self.r[IMR / 4] |= value,
            IDR => self.r[IMR / 4] &= !value,
            ISR => self.r[ISR / 4] &= !value,
            FIFO => {
                if self.enabled(CR_TX_EN, CR_TX_DIS) && self.tx.len() < FIFO_LEN {
                    self.tx.push_back(value as u8);
                }
            }
            CR => {
                if value & CR_RXRST != 0 {
                    self.rx.clear();
                }
                if value & CR_TXRST != 0 {
                    self.tx.clear();
                }
                self.r[0] = value & !(CR_RXRST | CR_TXRST);
            }
            o => self.r[o / 4] = value,
        }
        self.update();
    }
}

/// Runs `f` on the driver over `m`, already opened (the borrow ends with `f`, so the test
/// can look at the model between steps).
fn with(m: &mut Model, f: impl FnOnce(&mut CadenceUart<&mut Model>)) {
    f(&mut CadenceUart {
        regs: m,
        tx_blocked: false,
    });
}

/// Opens the driver over `m` and runs `f` on it.
fn open(m: &mut Model, f: impl FnOnce(&mut CadenceUart<&mut Model>)) {
    f(&mut CadenceUart::open(m));
}

#[test]
fn open_enables_both_directions_and_leaves_the_line_settings_alone() {
    let mut m = Model::reset();
    m.rx.push_back(b'?'); // left from before: dropped by the FIFO reset
    open(&mut m, |u| assert_eq!(u.read_byte(), None));
    assert!(m.enabled(CR_RX_EN, CR_RX_DIS) && m.enabled(CR_TX_EN, CR_TX_DIS));
    assert!(!m.writes.contains(&MR), "the mode register is firmware's");
    assert!(
        !m.writes.contains(&0x18) && !m.writes.contains(&0x34),
        "nor the baud rate"
    );
    assert_eq!(m.r[IMR / 4], INT_RXTRIG);
    assert!(!m.irq());
}

#[test]
fn bytes_in_order_and_the_interrupt_stands_while_any_wait() {
    let mut m = Model::reset();
    open(&mut m, |_| {});
    m.receive(b"hi!");
    assert!(m.irq(), "one byte is enough to interrupt");
    m.update();
    assert!(m.irq(), "it stands until the bytes are read");
    with(&mut m, |u| {
        assert_eq!(u.read_byte(), Some(b'h'));
        assert_eq!(u.read_byte(), Some(b'i'));
        assert_eq!(u.read_byte(), Some(b'!'));
        assert_eq!(u.read_byte(), None);
        u.rearm();
    });
    assert!(!m.irq(), "drained and acknowledged");
    assert_eq!(m.r[IMR / 4], INT_RXTRIG);
}

#[test]
fn a_reader_that_stops_reading_does_not_keep_the_interrupt_up() {
    let mut m = Model::reset();
    open(&mut m, |_| {});
    m.receive(b"xyz");
    with(&mut m, |u| u.rearm()); // serviced, but nothing read
    assert!(
        !m.irq(),
        "masked while the backlog waits for the periodic poll"
    );
    with(&mut m, |u| {
        assert_eq!(u.read_byte(), Some(b'x'));
        while u.read_byte().is_some() {}
        u.rearm();
    });
    assert_eq!(m.r[IMR / 4], INT_RXTRIG, "armed again once drained");
}

#[test]
fn writes_stop_at_a_full_fifo_and_ask_to_be_woken_when_it_empties() {
    let mut m = Model::reset();
    open(&mut m, |u| {
        assert_eq!(u.try_write(&[b'a'; 40]), FIFO_LEN);
        assert_eq!(u.try_write(b"b"), 0);
        u.rearm();
    });
    assert_eq!(m.tx.len(), FIFO_LEN);
    assert_eq!(m.r[IMR / 4], INT_RXTRIG | INT_TXEMPTY);
    assert!(!m.irq(), "not while it is full");
    m.tx.clear(); // the line sent it all
    m.update();
    assert!(m.irq(), "woken: room again");
    with(&mut m, |u| {
        assert_eq!(u.try_write(b"rest"), 4);
        u.rearm();
    });
    assert_eq!(m.r[IMR / 4], INT_RXTRIG, "no TX interrupt unless blocked");
    assert_eq!(m.tx.iter().copied().collect::<Vec<u8>>(), b"rest");
}
