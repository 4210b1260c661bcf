//! xl-style pCPU lists: `"2"`, `"1-3"`, `"0,2"`, `"0-1,3"`.

/// Parses a pCPU list in the order written; `None` if malformed, reversed or repeated.
pub fn parse(list: &str) -> Option<Vec<u16>> {
    let mut out: Vec<u16> = Vec::new();
    // pCPUs seen so far: a range can name all 65536, so no linear search per entry.
    let mut seen = vec![false; usize::from(u16::MAX) + 1];
    for part in list.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (number(lo)?, number(hi)?),
            None => {
                let n = number(part)?;
                (n, n)
            }
        };
        if lo > hi {
            return None;
        }
        for cpu in lo..=hi {
            if std::mem::replace(&mut seen[usize::from(cpu)], true) {
                return None;
            }
            out.push(cpu);
        }
    }
    Some(out)
}

fn number(s: &str) -> Option<u16> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn lists() {
        assert_eq!(parse("2"), Some(vec![2]));
        assert_eq!(parse("1-3"), Some(vec![1, 2, 3]));
        assert_eq!(parse("0,2"), Some(vec![0, 2]));
        assert_eq!(parse(" 3, 0-1 "), Some(vec![3, 0, 1]));
        for bad in [
            "", "a", "1-", "-1", "3-1", "1,,2", "1,1", "1-2,2", "+1", "99999",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_list_of_every_pcpu_parses_at_once() {
        // Found by the `system` fuzz target: a search per entry made "0-65535" take minutes.
        let t = std::time::Instant::now();
        let all = parse("0-65535").expect("a valid list");
        assert_eq!((all.len(), all[65535]), (65536, 65535));
        assert_eq!(parse("0-65535,7"), None);
        assert!(
            t.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            t.elapsed()
        );
    }
}
