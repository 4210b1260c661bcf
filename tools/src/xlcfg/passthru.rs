//! xl.cfg's device-passthrough keys (xl.cfg(5), Xen's `docs/misc/arm/passthrough.txt`):
//! `iomem = ["IOMEM_START,NUM_PAGES[@GFN]", ...]` (hexadecimal page numbers), `irqs = [N,
//! ...]` (GIC INTIDs), `dtdev = ["/host/dt/path", ...]` and `device_tree = "FILE"`.
//!
//! This module reads what one file says and refuses what is wrong within it (a malformed or
//! empty range, two ranges that overlap, a guest address inside the guest's own memory
//! map). Whether each range, interrupt and path names a device of the host, and whether
//! another domain has it, needs the host's device tree: [`crate::passthru`] checks that.

use super::keys::{number, Cx};
use super::syntax::{Setting, Value};
use crate::system::{At, ConfigError};
use protocol::layout::{
    GUEST_GICD_BASE, GUEST_GICR_BASE, GUEST_GICR_SIZE, GUEST_GNTTAB_BASE, GUEST_RAM_BASE,
};
use std::ops::Range;
use std::path::PathBuf;

/// Bytes per xl page number.
pub const PAGE: u64 = 4096;

/// One `iomem` entry: host pages `start .. start + pages`, seen by the guest at `gfn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Iomem {
    /// First host page number (`IOMEM_START`).
    pub start: u64,
    /// Number of pages (`NUM_PAGES`).
    pub pages: u64,
    /// First guest page number (`@GFN`); the host page number when absent, as in xl.
    pub gfn: u64,
}

impl Iomem {
    /// Host byte addresses.
    pub fn host(&self) -> Range<u64> {
        self.start * PAGE..(self.start + self.pages) * PAGE
    }
    /// Guest byte addresses.
    pub fn guest(&self) -> Range<u64> {
        self.gfn * PAGE..(self.gfn + self.pages) * PAGE
    }
}

/// What one xl.cfg gives its domain of the host's devices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XlPassthrough {
    /// `iomem`, each entry with its line.
    pub iomem: Vec<At<Iomem>>,
    /// `irqs`.
    pub irqs: Vec<At<u32>>,
    /// `dtdev`: host DT paths.
    pub dtdevs: Vec<At<String>>,
    /// `device_tree`, resolved relative to the .cfg's folder.
    pub device_tree: Option<At<PathBuf>>,
}

impl XlPassthrough {
    /// Whether the domain is given no device.
    pub fn is_empty(&self) -> bool {
        self.iomem.is_empty() && self.irqs.is_empty() && self.dtdevs.is_empty()
    }
}

/// Largest page number accepted (48-bit physical addresses, as Arm's stage 2 here).
const MAX_PAGE: u64 = 1 << 36;

/// Guest-physical ranges that are the guest's own whatever its size (GIC, grant table,
/// magic pages): a device placed there would shadow them. Its RAM, which depends on
/// `memory`, is checked with the host's devices ([`crate::passthru`]).
fn guest_reserved() -> [(Range<u64>, &'static str); 2] {
    let gicd = GUEST_GICD_BASE.as_u64();
    let gicr_end = GUEST_GICR_BASE.as_u64() + GUEST_GICR_SIZE;
    let gnttab = GUEST_GNTTAB_BASE.as_u64();
    let ram = GUEST_RAM_BASE.as_u64();
    [
        (gicd..gicr_end, "the guest's GIC"),
        (gnttab..ram, "the guest's grant table and magic pages"),
    ]
}

/// Parses one `iomem` entry, `IOMEM_START,NUM_PAGES[@GFN]`, every number hexadecimal with
/// or without `0x` (as libxl reads them).
pub fn parse_iomem(text: &str) -> Result<Iomem, String> {
    let expected = "expected \"IOMEM_START,NUM_PAGES[@GFN]\" in hexadecimal page numbers, such as \"0x9010,1@0x9010\"";
    let hex = |t: &str| -> Option<u64> {
        let t = t.trim();
        let t = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .unwrap_or(t);
        (!t.is_empty())
            .then(|| u64::from_str_radix(t, 16).ok())
            .flatten()
    };
    let (start, rest) = text
        .split_once(',')
        .ok_or_else(|| format!("{text:?} has no `,NUM_PAGES`, {expected}"))?;
    let (pages, gfn) = match rest.split_once('@') {
        Some((p, g)) => (p, Some(g)),
        None => (rest, None),
    };
    let bad = |what: &str, t: &str| {
        format!("{what} {t:?} in {text:?} is not a hexadecimal number, {expected}")
    };
    let start = hex(start).ok_or_else(|| bad("IOMEM_START", start))?;
    let pages = hex(pages).ok_or_else(|| bad("NUM_PAGES", pages))?;
    let gfn = match gfn {
        Some(g) => hex(g).ok_or_else(|| bad("GFN", g))?,
        None => start,
    };
    if pages == 0 {
        return Err(format!("{text:?} gives 0 pages, {expected}"));
    }
    if start.saturating_add(pages) > MAX_PAGE || gfn.saturating_add(pages) > MAX_PAGE {
        return Err(format!(
            "{text:?} reaches past the 48-bit physical address space (pages are 4 KiB: did you write a byte address?), {expected}"
        ));
    }
    let m = Iomem { start, pages, gfn };
    let guest = m.guest();
    if let Some((_, what)) = guest_reserved()
        .iter()
        .find(|(r, _)| r.start < guest.end && guest.start < r.end)
    {
        return Err(format!(
            "{text:?} would place the device at guest address {:#x}, inside {what}, expected a GFN outside it (give `@GFN`)",
            guest.start
        ));
    }
    Ok(m)
}

/// The first two entries of `iomem` that overlap, on the host or in the guest, as text.
pub fn overlap(iomem: &[Iomem]) -> Option<String> {
    let hits = |a: &Range<u64>, b: &Range<u64>| a.start < b.end && b.start < a.end;
    for (i, a) in iomem.iter().enumerate() {
        for b in &iomem[i + 1..] {
            let side = if hits(&a.host(), &b.host()) {
                "host"
            } else if hits(&a.guest(), &b.guest()) {
                "guest"
            } else {
                continue;
            };
            return Some(format!(
                "entries {:#x},{:#x}@{:#x} and {:#x},{:#x}@{:#x} overlap in {side} pages, expected disjoint ranges",
                a.start, a.pages, a.gfn, b.start, b.pages, b.gfn
            ));
        }
    }
    None
}

/// Reads `iomem`: a list of `"IOMEM_START,NUM_PAGES[@GFN]"` strings, disjoint.
pub(super) fn iomem(cx: &Cx<'_>, s: &Setting) -> Result<Vec<At<Iomem>>, ConfigError> {
    let texts = quoted_list(cx, s, "strings such as \"0x9010,1@0x9010\"")?;
    let ranges = texts
        .iter()
        .map(|t| parse_iomem(t).map_err(|problem| cx.err(s, problem)))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(problem) = overlap(&ranges) {
        return Err(cx.err(s, problem));
    }
    Ok(ranges
        .into_iter()
        .map(|r| At::in_file(r, s.line, cx.file))
        .collect())
}

/// Reads `irqs`: GIC INTIDs of shared peripheral interrupts, each once.
pub(super) fn irqs(cx: &Cx<'_>, s: &Setting) -> Result<Vec<At<u32>>, ConfigError> {
    let expected = "expected a list of SPI numbers (GIC INTIDs 32..1019) such as [ 34 ]";
    let Value::List(items) = &s.value else {
        return Err(cx.err(s, format!("found {}, {expected}", s.value.kind())));
    };
    let mut out: Vec<At<u32>> = Vec::new();
    for v in items {
        let Value::Atom { text, .. } = v else {
            return Err(cx.err(s, format!("found {} in the list, {expected}", v.kind())));
        };
        let n = number(text)
            .ok_or_else(|| cx.err(s, format!("{text:?} is not a number, {expected}")))?;
        if n < 32 {
            return Err(cx.err(s, format!("{n} is a private interrupt (SGI or PPI) of the CPUs, which the microvisor keeps, {expected}")));
        }
        if n > 1019 {
            return Err(cx.err(s, format!("{n} is out of range, {expected}")));
        }
        if out.iter().any(|o| u64::from(o.value) == n) {
            return Err(cx.err(s, format!("{n} is listed twice, {expected}")));
        }
        out.push(At::in_file(n as u32, s.line, cx.file));
    }
    Ok(out)
}

/// Reads `dtdev`: absolute host device-tree paths, each once.
pub(super) fn dtdevs(cx: &Cx<'_>, s: &Setting) -> Result<Vec<At<String>>, ConfigError> {
    let texts = quoted_list(cx, s, "host device-tree paths such as \"/pl031@9010000\"")?;
    let mut out: Vec<At<String>> = Vec::new();
    for t in texts {
        if !t.starts_with('/') || t == "/" {
            return Err(cx.err(s, format!("{t:?} is not an absolute device-tree path, expected one such as \"/pl031@9010000\"")));
        }
        if out.iter().any(|o| o.value == t) {
            return Err(cx.err(
                s,
                format!("{t:?} is listed twice, expected each device once"),
            ));
        }
        out.push(At::in_file(t, s.line, cx.file));
    }
    Ok(out)
}

/// The texts of a list of quoted strings.
fn quoted_list(cx: &Cx<'_>, s: &Setting, what: &str) -> Result<Vec<String>, ConfigError> {
    let Value::List(items) = &s.value else {
        return Err(cx.err(
            s,
            format!("found {}, expected a list of {what}", s.value.kind()),
        ));
    };
    items
        .iter()
        .map(|v| match v {
            Value::Atom { text, quoted: true } => Ok(text.clone()),
            v => Err(cx.err(
                s,
                format!("found {} in the list, expected a list of {what}", v.kind()),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iomem_entries_read_like_libxl() {
        assert_eq!(
            parse_iomem("0x9010,1@0x9010"),
            Ok(Iomem {
                start: 0x9010,
                pages: 1,
                gfn: 0x9010
            })
        );
        assert_eq!(
            parse_iomem("9030,2"),
            Ok(Iomem {
                start: 0x9030,
                pages: 2,
                gfn: 0x9030
            })
        );
        assert_eq!(parse_iomem(" 0x9010 , 1 @ 0x2000").unwrap().gfn, 0x2000);
        for bad in [
            "0x9010",
            "0x9010,",
            ",1",
            "0x9010,0",
            "0xzz,1",
            "0x9010,1@",
            "0x9010,1@q",
        ] {
            assert!(parse_iomem(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_byte_address_is_called_out() {
        let e = parse_iomem("0x9010000000,1").unwrap_err();
        assert!(e.contains("byte address"), "{e}");
    }

    #[test]
    fn the_guest_address_may_not_shadow_the_gic_or_magic_pages() {
        let e = parse_iomem("0x9010,1@0x3001").unwrap_err();
        assert!(e.contains("GIC"), "{e}");
        let e = parse_iomem("0x39000,1").unwrap_err();
        assert!(
            e.contains("magic pages") && e.contains("give `@GFN`"),
            "{e}"
        );
        assert!(parse_iomem("0x39000,1@0x9010").is_ok());
    }

    #[test]
    fn overlapping_entries_are_found() {
        let a = parse_iomem("0x9010,2").unwrap();
        let b = parse_iomem("0x9011,1@0x9020").unwrap();
        let c = parse_iomem("0x9030,1@0x9010").unwrap();
        let d = parse_iomem("0x9040,1").unwrap();
        assert!(overlap(&[a, b]).unwrap().contains("host"));
        assert!(overlap(&[a, c]).unwrap().contains("guest"));
        assert_eq!(overlap(&[a, d]), None);
    }
}
