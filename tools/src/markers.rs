//! Console markers: what a run waits for and what makes it fail.
//!
//! An [`Expect`] is a list of steps matched in order; a step is a set of regexes matched in
//! any order. Each console line satisfies at most one regex, so the same regex listed twice
//! needs two lines, and the line that completes a step does not count towards the next.
//!
//! An [`Expect`] may also script console input: [`Expect::send_when`] sends bytes to the
//! guest the first time a line matches (e.g. a shell prompt), independently of the steps.

use anyhow::{Context, Result};
use regex::Regex;

/// What a run waits for.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    steps: Vec<Vec<Regex>>,
    forbid: Vec<Regex>,
    inputs: Vec<(Regex, Vec<u8>)>,
}

/// Progress of an [`Expect`] over a console.
#[derive(Debug, Clone)]
pub struct Matcher {
    expect: Expect,
    step: usize,
    pending: Vec<bool>,
    sent: Vec<bool>,
}

/// What one console line did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Nothing to report.
    None,
    /// Every step has matched.
    Done,
    /// The line matched a forbidden regex (given).
    Forbidden(String),
}

impl Expect {
    /// Nothing expected.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a step: all of `patterns`, in any order, after every earlier step.
    pub fn all<S: AsRef<str>>(mut self, patterns: &[S]) -> Result<Self> {
        let step = patterns
            .iter()
            .map(|p| Regex::new(p.as_ref()).with_context(|| format!("bad regex {:?}", p.as_ref())))
            .collect::<Result<Vec<_>>>()?;
        self.steps.push(step);
        Ok(self)
    }

    /// Adds a step of one regex.
    pub fn then(self, pattern: &str) -> Result<Self> {
        self.all(&[pattern])
    }

    /// Fails the run as soon as a line matches `pattern`.
    pub fn forbid(mut self, pattern: &str) -> Result<Self> {
        self.forbid
            .push(Regex::new(pattern).with_context(|| format!("bad regex {pattern:?}"))?);
        Ok(self)
    }

    /// Sends `bytes` to the guest's console the first time a line matches `pattern`
    /// (each trigger fires once; several may fire on one line, in the order added).
    pub fn send_when(mut self, pattern: &str, bytes: &[u8]) -> Result<Self> {
        let re = Regex::new(pattern).with_context(|| format!("bad regex {pattern:?}"))?;
        self.inputs.push((re, bytes.to_vec()));
        Ok(self)
    }

    /// Whether any console input is scripted.
    pub fn has_input(&self) -> bool {
        !self.inputs.is_empty()
    }

    /// Whether there is anything to wait for.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Starts matching.
    pub fn matcher(&self) -> Matcher {
        let pending = vec![true; self.steps.first().map_or(0, Vec::len)];
        Matcher {
            expect: self.clone(),
            step: 0,
            pending,
            sent: vec![false; self.inputs.len()],
        }
    }

    /// Human-readable list of the regexes, for failure messages.
    pub fn describe(&self) -> String {
        self.steps
            .iter()
            .map(|s| {
                s.iter()
                    .map(|r| format!("/{r}/"))
                    .collect::<Vec<_>>()
                    .join(" & ")
            })
            .collect::<Vec<_>>()
            .join(" then ")
    }
}

impl Matcher {
    /// Feeds one console line (without its newline).
    pub fn line(&mut self, line: &str) -> Event {
        if let Some(r) = self.expect.forbid.iter().find(|r| r.is_match(line)) {
            return Event::Forbidden(format!("line {line:?} matched forbidden /{r}/"));
        }
        if self.done() {
            return Event::Done;
        }
        let step = &self.expect.steps[self.step];
        if let Some(i) = (0..step.len()).find(|&i| self.pending[i] && step[i].is_match(line)) {
            self.pending[i] = false;
        }
        if self.pending.iter().all(|p| !p) {
            self.step += 1;
            self.pending = vec![true; self.expect.steps.get(self.step).map_or(0, Vec::len)];
        }
        if self.done() {
            Event::Done
        } else {
            Event::None
        }
    }

    /// The console input `line` triggers (empty if none): the bytes of every not yet
    /// fired [`Expect::send_when`] whose pattern matches it.
    pub fn input(&mut self, line: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (re, bytes)) in self.expect.inputs.iter().enumerate() {
            if !self.sent[i] && re.is_match(line) {
                self.sent[i] = true;
                out.extend_from_slice(bytes);
            }
        }
        out
    }

    /// Whether every step matched.
    pub fn done(&self) -> bool {
        self.step >= self.expect.steps.len()
    }

    /// The regexes still awaited, for failure messages.
    pub fn waiting_for(&self) -> String {
        match self.expect.steps.get(self.step) {
            None => "nothing".into(),
            Some(step) => step
                .iter()
                .zip(&self.pending)
                .filter(|(_, p)| **p)
                .map(|(r, _)| format!("/{r}/"))
                .collect::<Vec<_>>()
                .join(" & "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(m: &mut Matcher, lines: &[&str]) -> Vec<Event> {
        lines.iter().map(|l| m.line(l)).collect()
    }

    #[test]
    fn unordered_within_a_step_ordered_across_steps() {
        let e = Expect::new()
            .all(&["^a$", "^b$"])
            .unwrap()
            .then("^c$")
            .unwrap();
        let mut m = e.matcher();
        // `c` before the first step completes does not count.
        assert_eq!(feed(&mut m, &["c", "b", "x", "a"]), vec![Event::None; 4]);
        assert_eq!(m.waiting_for(), "/^c$/");
        assert_eq!(m.line("c"), Event::Done);
        assert!(m.done());
    }

    #[test]
    fn repeated_pattern_needs_distinct_lines() {
        let e = Expect::new()
            .then("up")
            .unwrap()
            .then("tick")
            .unwrap()
            .then("tick")
            .unwrap();
        let mut m = e.matcher();
        assert_eq!(
            m.line("up tick"),
            Event::None,
            "one line satisfies one marker"
        );
        assert_eq!(m.line("tick"), Event::None);
        assert_eq!(m.line("tick"), Event::Done);
    }

    #[test]
    fn forbidden_line_fails_even_after_done() {
        let e = Expect::new()
            .then("ok")
            .unwrap()
            .forbid(r"\[oob\] FAIL")
            .unwrap();
        let mut m = e.matcher();
        assert!(matches!(m.line("[oob] FAIL"), Event::Forbidden(_)));
        assert_eq!(m.line("ok"), Event::Done);
    }

    #[test]
    fn scripted_input_fires_once_per_trigger() {
        let e = Expect::new()
            .then("done")
            .unwrap()
            .send_when("prompt", b"ab")
            .unwrap()
            .send_when("prom", b"c")
            .unwrap();
        assert!(e.has_input());
        let mut m = e.matcher();
        assert_eq!(m.input("nothing"), b"");
        assert_eq!(m.input("prompt>"), b"abc");
        assert_eq!(m.input("prompt>"), b"");
        assert_eq!(m.line("done"), Event::Done);
    }

    #[test]
    fn empty_expect_is_done_at_once() {
        assert!(Expect::new().matcher().done());
    }
}
