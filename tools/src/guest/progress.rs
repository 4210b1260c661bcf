//! Progress for the slow local steps (extracting, copying the kernel, writing the initramfs):
//! a spinner or byte bar on a terminal, one plain line on stderr otherwise, so CI logs stay
//! readable and carry no escape codes.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Read};
use std::time::Duration;

/// One step in progress; finish it with [`Step::done`].
pub struct Step {
    bar: ProgressBar,
}

impl Step {
    /// A step of unknown length.
    pub fn spinner(message: String) -> Self {
        Self::start(ProgressBar::new_spinner(), message)
    }

    /// A step that reads `total` bytes through [`Step::read`].
    pub fn bytes(message: String, total: u64) -> Self {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {bytes}/{total_bytes}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self::start(bar, message)
    }

    fn start(bar: ProgressBar, message: String) -> Self {
        if std::io::stderr().is_terminal() {
            bar.set_message(message);
            bar.enable_steady_tick(Duration::from_millis(120));
            Self { bar }
        } else {
            // indicatif would draw nothing here; one line still says what is taking time.
            eprintln!("bulkhead: {message}");
            Self {
                bar: ProgressBar::hidden(),
            }
        }
    }

    /// `reader`, advancing the bar by the bytes read.
    pub fn read<R: Read>(&self, reader: R) -> impl Read {
        self.bar.wrap_read(reader)
    }

    /// Moves the bar on by `n` bytes.
    pub fn advance(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Clears the spinner (the caller prints the outcome, if any).
    pub fn done(self) {
        self.bar.finish_and_clear();
    }
}
