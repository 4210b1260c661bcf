//! The xl.cfg grammar, as libxlu reads it: `KEY = VALUE` or `KEY += VALUE` settings ended
//! by a newline or `;`; a value is a string (either quote, C escapes), a number (lexed as
//! text, read by the key that wants it) or a `[ ... ]` list that may span lines, nest and end
//! with a comma; `#` starts a comment. A later setting of a key replaces an earlier one;
//! `+=` appends to it (string to string, list to list).

use crate::system::ConfigError;
use std::path::Path;

/// A value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string or a number: xl keeps both as text and lets each key read it.
    Atom {
        /// The text (quotes removed, escapes decoded).
        text: String,
        /// Whether it was quoted.
        quoted: bool,
    },
    /// A list.
    List(Vec<Value>),
}

impl Value {
    /// What it is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Atom { quoted: true, .. } => "a string",
            Self::Atom { quoted: false, .. } => "a number",
            Self::List(_) => "a list",
        }
    }
}

/// One key's final value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The key.
    pub key: String,
    /// Its value after every `=` and `+=`.
    pub value: Value,
    /// Line of the setting that gave it its value (the last `=`).
    pub line: usize,
    /// Line where the key first appeared.
    pub first_line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Atom(String, bool),
    Open,
    Close,
    Comma,
    Assign,
    Append,
    End,
}

struct Lexer<'a> {
    file: &'a Path,
    src: &'a [u8],
    pos: usize,
    line: usize,
}

impl Lexer<'_> {
    fn err(&self, line: usize, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.display().to_string(),
            line,
            key: "(syntax)".into(),
            problem: problem.into(),
        }
    }

    /// The next token and its line; `None` at the end of the file.
    fn next(&mut self) -> Result<Option<(Tok, usize)>, ConfigError> {
        loop {
            let Some(&c) = self.src.get(self.pos) else {
                return Ok(None);
            };
            let line = self.line;
            self.pos += 1;
            let tok = match c {
                b' ' | b'\t' | b'\r' => continue,
                b'#' => {
                    while self.src.get(self.pos).is_some_and(|&c| c != b'\n') {
                        self.pos += 1;
                    }
                    continue;
                }
                b'\n' => {
                    self.line += 1;
                    Tok::End
                }
                b';' => Tok::End,
                b'[' => Tok::Open,
                b']' => Tok::Close,
                b',' => Tok::Comma,
                b'=' => Tok::Assign,
                b'+' if self.src.get(self.pos) == Some(&b'=') => {
                    self.pos += 1;
                    Tok::Append
                }
                b'a'..=b'z' => Tok::Ident(self.run(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'_'
                })),
                b'0'..=b'9' => Tok::Atom(
                    self.run(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c) || c == b'x'),
                    false,
                ),
                b'"' | b'\'' => Tok::Atom(self.string(c, line)?, true),
                other => {
                    let shown = std::str::from_utf8(&self.src[self.pos - 1..])
                        .ok()
                        .and_then(|s| s.chars().next())
                        .unwrap_or(char::from(other));
                    let hint = if b"+-.():{}".contains(&other) {
                        " (xl.cfg is not Python)"
                    } else if other.is_ascii_uppercase() {
                        " (keys are lower case)"
                    } else {
                        ""
                    };
                    return Err(self.err(
                        line,
                        format!("unexpected character `{shown}`{hint}, expected KEY = \"string\", number or [list]"),
                    ));
                }
            };
            return Ok(Some((tok, line)));
        }
    }

    /// The rest of a token that started one byte back.
    fn run(&mut self, more: impl Fn(u8) -> bool) -> String {
        let start = self.pos - 1;
        while self.src.get(self.pos).is_some_and(|&c| more(c)) {
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.src[start..self.pos]).into_owned()
    }

    /// A quoted string whose opening `quote` was just read; decodes escapes as libxlu does.
    fn string(&mut self, quote: u8, line: usize) -> Result<String, ConfigError> {
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = match self.src.get(self.pos) {
                None | Some(b'\n') => {
                    return Err(self.err(
                        line,
                        format!(
                            "unterminated string, expected a closing {} on the same line",
                            char::from(quote)
                        ),
                    ))
                }
                Some(&c) => c,
            };
            self.pos += 1;
            if c == quote {
                break;
            }
            if c != b'\\' {
                out.push(c);
                continue;
            }
            let e = self.src.get(self.pos).copied().unwrap_or(b'\n');
            self.pos += 1;
            let simple = match e {
                b'"' | b'\'' | b'\\' => Some(e),
                b'a' => Some(7),
                b'b' => Some(8),
                b'f' => Some(12),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                b'v' => Some(11),
                _ => None,
            };
            if let Some(b) = simple {
                out.push(b);
                continue;
            }
            let (radix, max) = match e {
                b'x' => (16, 2),
                b'0'..=b'7' => {
                    self.pos -= 1;
                    (8, 3)
                }
                _ => {
                    return Err(self.err(
                        line,
                        "invalid escape in a quoted string, expected \\\\, \\\", \\', \\n, \\t, \\xHH or \\OOO",
                    ))
                }
            };
            let digits: Vec<u8> = self.src[self.pos..]
                .iter()
                .copied()
                .take(max)
                .take_while(|c| char::from(*c).is_digit(radix))
                .collect();
            let value = std::str::from_utf8(&digits)
                .ok()
                .and_then(|d| u8::from_str_radix(d, radix).ok())
                .ok_or_else(|| {
                    self.err(
                        line,
                        "invalid numeric escape in a quoted string, expected \\xHH or \\OOO",
                    )
                })?;
            self.pos += digits.len();
            out.push(value);
        }
        String::from_utf8(out)
            .map_err(|_| self.err(line, "string is not UTF-8, expected UTF-8 text"))
    }
}

/// How deeply lists may nest. xl.cfg's own keys use two levels at most (`cpus` per vCPU);
/// the bound keeps the recursive parser's stack use small for any input.
const MAX_DEPTH: usize = 16;

struct Parser<'a> {
    lex: Lexer<'a>,
    peeked: Option<Option<(Tok, usize)>>,
    /// Line of the last token taken (for errors at the end of the file).
    last_line: usize,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<Option<&(Tok, usize)>, ConfigError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lex.next()?);
        }
        Ok(self.peeked.as_ref().and_then(Option::as_ref))
    }

    fn take(&mut self) -> Result<Option<(Tok, usize)>, ConfigError> {
        self.peek()?;
        let t = self.peeked.take().flatten();
        if let Some((_, line)) = &t {
            self.last_line = *line;
        }
        Ok(t)
    }

    fn skip_newlines(&mut self) -> Result<(), ConfigError> {
        while matches!(self.peek()?, Some((Tok::End, _))) {
            self.take()?;
        }
        Ok(())
    }

    /// One value; `depth` is how many lists enclose it. The recursion is bounded by
    /// [`MAX_DEPTH`] so a hostile file of `[[[[…` is an error, not a stack overflow.
    fn value(&mut self, key: &str, depth: usize) -> Result<Value, ConfigError> {
        match self.take()? {
            Some((Tok::Atom(text, quoted), _)) => Ok(Value::Atom { text, quoted }),
            Some((Tok::Open, line)) => {
                if depth >= MAX_DEPTH {
                    let mut e = self.lex.err(
                        line,
                        format!(
                            "lists are nested more than {MAX_DEPTH} deep, \
                             expected at most {MAX_DEPTH} levels of [ ]"
                        ),
                    );
                    e.key = key.into();
                    return Err(e);
                }
                let mut items = Vec::new();
                loop {
                    self.skip_newlines()?;
                    if matches!(self.peek()?, Some((Tok::Close, _))) {
                        self.take()?;
                        return Ok(Value::List(items));
                    }
                    items.push(self.value(key, depth + 1)?);
                    self.skip_newlines()?;
                    match self.take()? {
                        Some((Tok::Comma, _)) => {}
                        Some((Tok::Close, _)) => return Ok(Value::List(items)),
                        other => return Err(self.unexpected(other, key, "`,` or `]` in a list")),
                    }
                }
            }
            other => Err(self.unexpected(other, key, "a \"string\", a number or a [list]")),
        }
    }

    fn unexpected(&self, tok: Option<(Tok, usize)>, key: &str, expected: &str) -> ConfigError {
        let (found, line) = match tok {
            None => ("the end of the file".to_string(), self.last_line),
            Some((t, line)) => (
                match t {
                    Tok::Ident(s) => format!("`{s}`"),
                    Tok::Atom(s, true) => format!("string {s:?}"),
                    Tok::Atom(s, false) => format!("`{s}`"),
                    Tok::Open => "`[`".into(),
                    Tok::Close => "`]`".into(),
                    Tok::Comma => "`,`".into(),
                    Tok::Assign => "`=`".into(),
                    Tok::Append => "`+=`".into(),
                    Tok::End => "the end of the line".into(),
                },
                line,
            ),
        };
        let mut e = self
            .lex
            .err(line, format!("found {found}, expected {expected}"));
        if !key.is_empty() {
            e.key = key.into();
        }
        e
    }
}

/// Parses `text` (from `file`) into its settings, in order of first appearance.
pub fn parse(file: &Path, text: &str) -> Result<Vec<Setting>, ConfigError> {
    let mut p = Parser {
        lex: Lexer {
            file,
            src: text.as_bytes(),
            pos: 0,
            line: 1,
        },
        peeked: None,
        last_line: 1,
    };
    let mut settings: Vec<Setting> = Vec::new();
    while let Some((tok, line)) = p.take()? {
        let key = match tok {
            Tok::End => continue,
            Tok::Ident(key) => key,
            other => return Err(p.unexpected(Some((other, line)), "", "a key")),
        };
        let append = match p.take()? {
            Some((Tok::Assign, _)) => false,
            Some((Tok::Append, _)) => true,
            other => return Err(p.unexpected(other, &key, "`=` or `+=` after the key")),
        };
        let value = p.value(&key, 0)?;
        match p.take()? {
            None | Some((Tok::End, _)) => {}
            other => {
                return Err(p.unexpected(
                    other,
                    &key,
                    "the end of the line (or `;`) after the value",
                ))
            }
        }
        match settings.iter_mut().find(|s| s.key == key) {
            None => settings.push(Setting {
                key,
                value,
                line,
                first_line: line,
            }),
            Some(prev) if !append => {
                prev.value = value;
                prev.line = line;
            }
            Some(prev) => {
                match (&mut prev.value, value) {
                    (Value::List(a), Value::List(b)) => a.extend(b),
                    (Value::Atom { text: a, .. }, Value::Atom { text: b, .. }) => a.push_str(&b),
                    (a, b) => {
                        let mut e = p.lex.err(
                            line,
                            format!(
                                "cannot append {} to {}, expected `+=` of the same kind",
                                b.kind(),
                                a.kind()
                            ),
                        );
                        e.key = key;
                        return Err(e);
                    }
                }
                prev.line = line;
            }
        }
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(s: &str, quoted: bool) -> Value {
        Value::Atom {
            text: s.into(),
            quoted,
        }
    }

    fn p(text: &str) -> Result<Vec<Setting>, String> {
        parse(Path::new("t.cfg"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn settings_strings_numbers_lists() {
        let s = p("# c\nname = \"a\" # trailing\nmemory=0x10; vcpus = 2\ndisk = [ 'x',\n  \"y\",\n]\nempty=[]\nnest=[[1],[]]\n").unwrap();
        let keys: Vec<(&str, usize)> = s.iter().map(|s| (s.key.as_str(), s.line)).collect();
        assert_eq!(
            keys,
            [
                ("name", 2),
                ("memory", 3),
                ("vcpus", 3),
                ("disk", 4),
                ("empty", 7),
                ("nest", 8)
            ]
        );
        assert_eq!(s[0].value, atom("a", true));
        assert_eq!(s[1].value, atom("0x10", false));
        assert_eq!(
            s[3].value,
            Value::List(vec![atom("x", true), atom("y", true)])
        );
        assert_eq!(s[4].value, Value::List(vec![]));
        assert_eq!(
            s[5].value,
            Value::List(vec![
                Value::List(vec![atom("1", false)]),
                Value::List(vec![])
            ])
        );
    }

    #[test]
    fn escapes_and_last_setting_wins() {
        let s =
            p("extra = 'a\\'b\\x41\\101\\n'\nextra = \"z\"\nextra += \" y\"\nl = [1]\nl += [2]\n")
                .unwrap();
        assert_eq!(s[0].value, atom("z y", true));
        assert_eq!((s[0].line, s[0].first_line), (3, 1));
        assert_eq!(
            s[1].value,
            Value::List(vec![atom("1", false), atom("2", false)])
        );
        let s = p("x = 'a\\'b\\x41\\101\\n'").unwrap();
        assert_eq!(s[0].value, atom("a'bAA\n", true));
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(
            p("name = \"a\nx=1").unwrap_err(),
            "t.cfg:1: key `(syntax)`: unterminated string, expected a closing \" on the same line"
        );
        assert_eq!(
            p("\nmemory = 512 mb").unwrap_err(),
            "t.cfg:2: key `memory`: found `mb`, expected the end of the line (or `;`) after the value"
        );
        assert_eq!(
            p("Name = 'x'").unwrap_err(),
            "t.cfg:1: key `(syntax)`: unexpected character `N` (keys are lower case), expected KEY = \"string\", number or [list]"
        );
        assert_eq!(
            p("memory = -1").unwrap_err(),
            "t.cfg:1: key `(syntax)`: unexpected character `-` (xl.cfg is not Python), expected KEY = \"string\", number or [list]"
        );
        assert_eq!(
            p("disk = ['a'\n'b']").unwrap_err(),
            "t.cfg:2: key `disk`: found string \"b\", expected `,` or `]` in a list"
        );
        assert_eq!(
            p("disk = ['a',").unwrap_err(),
            "t.cfg:1: key `disk`: found the end of the file, expected a \"string\", a number or a [list]"
        );
        assert_eq!(
            p("name 'x'").unwrap_err(),
            "t.cfg:1: key `name`: found string \"x\", expected `=` or `+=` after the key"
        );
        assert_eq!(
            p("x = [1]\nx += 'a'").unwrap_err(),
            "t.cfg:2: key `x`: cannot append a string to a list, expected `+=` of the same kind"
        );
        assert_eq!(
            p("= 1").unwrap_err(),
            "t.cfg:1: key `(syntax)`: found `=`, expected a key"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!("x = {}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(p(&ok).is_ok());
        let deep = format!("x = {}1{}", "[".repeat(17), "]".repeat(17));
        let msg = "t.cfg:1: key `x`: lists are nested more than 16 deep, \
                   expected at most 16 levels of [ ]";
        assert_eq!(p(&deep).unwrap_err(), msg);
        // A hostile file (the `xlcfg` fuzz target's find): without the bound this
        // overflows the stack.
        let hostile = format!("\nx = {}", "[".repeat(100_000));
        assert_eq!(p(&hostile).unwrap_err(), msg.replace(":1:", ":2:"));
    }
}
