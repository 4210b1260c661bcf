//! Parsing of the start info's command line: whitespace-separated `key=value` words.

/// The value of the first `key=value` word, or `Some("")` for a bare `key`.
pub fn get<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .find_map(|word| match word.split_once('=') {
            Some((k, v)) if k == key => Some(v),
            None if word == key => Some(""),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::get;

    #[test]
    fn finds_keys() {
        let c = "mode=smp  hz=1000 verbose hz=5";
        assert_eq!(get(c, "mode"), Some("smp"));
        assert_eq!(get(c, "hz"), Some("1000"));
        assert_eq!(get(c, "verbose"), Some(""));
        assert_eq!(get(c, "mod"), None);
        assert_eq!(get("", "mode"), None);
        assert_eq!(get("mode=", "mode"), Some(""));
    }
}
