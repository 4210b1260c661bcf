//! Latency and jitter statistics: raw samples kept in a preallocated buffer (so recording
//! from an interrupt handler never allocates), summarised as min/avg/max/p99.

use alloc::vec::Vec;
use core::fmt;

/// Up to `capacity` samples; later ones are counted but not kept.
#[derive(Clone, Debug)]
pub struct Samples {
    v: Vec<u64>,
    dropped: u64,
}

/// A summary of samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Samples summarised.
    pub n: u64,
    /// Smallest.
    pub min: u64,
    /// Mean, rounded down.
    pub avg: u64,
    /// Largest.
    pub max: u64,
    /// 99th percentile (nearest rank).
    pub p99: u64,
}

impl Samples {
    /// Room for `capacity` samples, allocated now.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            v: Vec::with_capacity(capacity),
            dropped: 0,
        }
    }

    /// Records one sample (never allocates).
    pub fn push(&mut self, x: u64) {
        if self.v.len() < self.v.capacity() {
            self.v.push(x);
        } else {
            self.dropped += 1;
        }
    }

    /// Samples kept.
    pub fn len(&self) -> usize {
        self.v.len()
    }

    /// Whether none were kept.
    pub fn is_empty(&self) -> bool {
        self.v.is_empty()
    }

    /// Samples that did not fit.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Summarises the kept samples (sorts a copy).
    pub fn summary(&self) -> Summary {
        if self.v.is_empty() {
            return Summary::default();
        }
        let mut s = self.v.clone();
        s.sort_unstable();
        let n = s.len();
        let sum: u128 = s.iter().map(|&x| u128::from(x)).sum();
        // Nearest rank: the smallest value with at least 99 % of samples at or below it.
        let rank = (n * 99).div_ceil(100).max(1);
        Summary {
            n: n as u64,
            min: s[0],
            avg: (sum / n as u128) as u64,
            max: s[n - 1],
            p99: s[rank - 1],
        }
    }
}

impl Summary {
    /// The same summary with every value scaled by `num / den` (e.g. ticks to ns).
    pub fn scaled(self, num: u64, den: u64) -> Summary {
        let f = |x: u64| (u128::from(x) * u128::from(num) / u128::from(den.max(1))) as u64;
        Summary {
            n: self.n,
            min: f(self.min),
            avg: f(self.avg),
            max: f(self.max),
            p99: f(self.p99),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "n={} min={} avg={} max={} p99={}",
            self.n, self.min, self.avg, self.max, self.p99
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_1_to_100() {
        let mut s = Samples::with_capacity(100);
        for x in (1..=100).rev() {
            s.push(x);
        }
        s.push(1000);
        assert_eq!(s.dropped(), 1);
        let m = s.summary();
        assert_eq!((m.n, m.min, m.avg, m.max, m.p99), (100, 1, 50, 100, 99));
        assert_eq!(m.to_string(), "n=100 min=1 avg=50 max=100 p99=99");
        assert_eq!(m.scaled(16, 1).max, 1600);
        assert_eq!(Samples::with_capacity(4).summary(), Summary::default());
    }

    #[test]
    fn p99_of_few_samples_is_the_max() {
        let mut s = Samples::with_capacity(10);
        for x in [5, 3, 9] {
            s.push(x);
        }
        assert_eq!(s.summary().p99, 9);
    }
}
