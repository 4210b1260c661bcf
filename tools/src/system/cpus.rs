//! xl-style pCPU lists: `"2"`, `"1-3"`, `"0,2"`, `"0-1,3"`.

/// Parses a pCPU list in the order written; `None` if malformed, reversed or repeated.
pub fn parse(list: &str) -> Option<Vec<u16>> {
    let mut out: Vec<u16> = Vec::new();
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
            if out.contains(&cpu) {
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
}
