//! The RTOS's command line: `hz=<n>` (rate of the demo control task, default 100) and
//! `bench=rt [releases=<n>] [period_us=<n>]` (run the latency/jitter benchmark instead of
//! the demo); `load=<n>` (bare-metal builds only: n more CPUs run a CPU-and-interrupt
//! load beside the RTOS, as a neighbouring domain does under the microvisor).

use core::fmt;

/// Rate when the command line names none.
pub const DEFAULT_HZ: u32 = 100;
/// Highest rate we accept.
pub const MAX_HZ: u32 = 100_000;
/// Releases the benchmark measures by default.
pub const DEFAULT_RELEASES: u32 = 10_000;
/// Benchmark period by default (µs).
pub const DEFAULT_PERIOD_US: u32 = 200;

/// A malformed argument.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `<key>=` is not a decimal number
    NotANumber(&'static str),
    /// `<key>=<n>` is outside its range
    OutOfRange(&'static str, u64, u64, u64),
    /// `bench=` names an unknown benchmark
    UnknownBench,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotANumber(k) => write!(f, "{k}= is not a decimal number"),
            Self::OutOfRange(k, n, lo, hi) => write!(f, "{k}={n} is outside {lo}..={hi}"),
            Self::UnknownBench => f.write_str("bench= must be `rt`"),
        }
    }
}

/// What to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Demo control-task rate.
    pub hz: u32,
    /// The benchmark, if requested.
    pub bench: Option<Bench>,
    /// Secondary CPUs to load (bare metal only).
    pub load: u32,
}

/// Benchmark parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bench {
    /// Releases to measure.
    pub releases: u32,
    /// Period in µs.
    pub period_us: u32,
}

fn value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.split_once('=').and_then(|(k, v)| (k == key).then_some(v)))
}

fn number(
    cmdline: &str,
    key: &'static str,
    default: u32,
    lo: u32,
    hi: u32,
) -> Result<u32, ConfigError> {
    let Some(v) = value(cmdline, key) else {
        return Ok(default);
    };
    let n: u64 = v.parse().map_err(|_| ConfigError::NotANumber(key))?;
    match u32::try_from(n) {
        Ok(x) if (lo..=hi).contains(&x) => Ok(x),
        _ => Err(ConfigError::OutOfRange(key, n, lo.into(), hi.into())),
    }
}

/// Parses the command line.
pub fn parse(cmdline: &str) -> Result<Config, ConfigError> {
    let hz = number(cmdline, "hz", DEFAULT_HZ, 1, MAX_HZ)?;
    let bench = match value(cmdline, "bench") {
        None => None,
        Some("rt") => Some(Bench {
            releases: number(cmdline, "releases", DEFAULT_RELEASES, 1, 1_000_000)?,
            period_us: number(cmdline, "period_us", DEFAULT_PERIOD_US, 20, 1_000_000)?,
        }),
        Some(_) => return Err(ConfigError::UnknownBench),
    };
    let load = number(cmdline, "load", 0, 0, 7)?;
    Ok(Config { hz, bench, load })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            parse(""),
            Ok(Config {
                hz: DEFAULT_HZ,
                bench: None,
                load: 0
            })
        );
        assert_eq!(parse("quiet hz=1000").unwrap().hz, 1000);
        assert_eq!(parse("hz=abc"), Err(ConfigError::NotANumber("hz")));
        assert_eq!(
            parse("hz=0").unwrap_err().to_string(),
            "hz=0 is outside 1..=100000"
        );
        let b = parse("bench=rt releases=500").unwrap().bench.unwrap();
        assert_eq!((b.releases, b.period_us), (500, DEFAULT_PERIOD_US));
        assert_eq!(parse("bench=x"), Err(ConfigError::UnknownBench));
        assert_eq!(parse("bench=rt load=2").unwrap().load, 2);
        assert!(parse("load=9").is_err());
    }
}
