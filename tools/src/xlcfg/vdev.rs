//! Virtual block device names (`xvda`, `xvdb2`, `sdb3`, `hdc`, `d536p37`) and the vbd
//! number each stands for in xenstore (`device/vbd/<number>`), as Xen's
//! `docs/misc/vbd-interface.txt` specifies the encoding:
//!
//! | name        | number                                   |
//! |-------------|------------------------------------------|
//! | xvd, small  | `202 << 8 \| disk << 4 \| partition`     |
//! | xvd, large  | `1 << 28 \| disk << 8 \| partition`      |
//! | sd          | `8 << 8 \| disk << 4 \| partition`       |
//! | hd, disk 0-1| `3 << 8 \| disk << 6 \| partition`       |
//! | hd, disk 2-3| `22 << 8 \| (disk - 2) << 6 \| partition`|
//!
//! "Small" means disk and partition both below 16; the large form is used only when
//! they do not fit. Disk letters count like spreadsheet columns: a = 0, z = 25, aa = 26.

/// Largest xvd disk number (the `1 << 28` form keeps 20 bits of it).
const MAX_XVD_DISK: u32 = (1 << 20) - 1;
/// Largest partition in the `1 << 28` form.
const MAX_XVD_PARTITION: u32 = 255;

/// The Xen vbd number of `vdev`, or why it is not a virtual device name.
pub fn devid(vdev: &str) -> Result<u32, String> {
    let expected = "expected a virtual device such as xvda, xvdb1, sda, hdc or d0p1";
    let bad = || format!("{vdev:?} is not a virtual device name, {expected}");
    if let Some(rest) = vdev.strip_prefix("xvd") {
        let (disk, part) = letters_then_number(rest).ok_or_else(bad)?;
        return xvd(disk, part).ok_or_else(|| {
            format!("{vdev:?} is out of range (xvd disks up to {MAX_XVD_DISK}, partitions up to {MAX_XVD_PARTITION}), {expected}")
        });
    }
    if let Some(rest) = vdev.strip_prefix("sd") {
        let (disk, part) = letters_then_number(rest).ok_or_else(bad)?;
        if disk < 16 && part < 16 {
            return Ok(8 << 8 | disk << 4 | part);
        }
        return Err(format!(
            "{vdev:?} is out of range (sd disks sda..sdp, partitions up to 15), {expected}"
        ));
    }
    if let Some(rest) = vdev.strip_prefix("hd") {
        let (disk, part) = letters_then_number(rest).ok_or_else(bad)?;
        return match (disk, part) {
            (0..=1, 0..=63) => Ok(3 << 8 | disk << 6 | part),
            (2..=3, 0..=63) => Ok(22 << 8 | (disk - 2) << 6 | part),
            _ => Err(format!(
                "{vdev:?} is out of range (hd disks hda..hdd, partitions up to 63), {expected}"
            )),
        };
    }
    // Xen's own notation: `d<disk>` or `d<disk>p<partition>`, an xvd device.
    if let Some(rest) = vdev.strip_prefix('d') {
        let (disk, part) = match rest.split_once('p') {
            Some((d, p)) => (decimal(d).ok_or_else(bad)?, decimal(p).ok_or_else(bad)?),
            None => (decimal(rest).ok_or_else(bad)?, 0),
        };
        return xvd(disk, part).ok_or_else(|| {
            format!("{vdev:?} is out of range (disks up to {MAX_XVD_DISK}, partitions up to {MAX_XVD_PARTITION}), {expected}")
        });
    }
    Err(bad())
}

fn xvd(disk: u32, part: u32) -> Option<u32> {
    if disk < 16 && part < 16 {
        Some(202 << 8 | disk << 4 | part)
    } else if disk <= MAX_XVD_DISK && part <= MAX_XVD_PARTITION {
        Some(1 << 28 | disk << 8 | part)
    } else {
        None
    }
}

/// `<letters><partition>`: the disk number of the lowercase letters (a = 0, aa = 26) and
/// the partition (0 when absent; written without leading zeros, never as `0`).
fn letters_then_number(s: &str) -> Option<(u32, u32)> {
    let split = s.find(|c: char| !c.is_ascii_lowercase()).unwrap_or(s.len());
    let (letters, digits) = s.split_at(split);
    if letters.is_empty() || letters.len() > 5 {
        return None;
    }
    // Bijective base 26: each letter is a digit 1..=26, and the whole less one is the disk.
    let mut n: u32 = 0;
    for b in letters.bytes() {
        n = n * 26 + u32::from(b - b'a') + 1;
    }
    let part = if digits.is_empty() {
        0
    } else if digits.starts_with('0') {
        return None;
    } else {
        decimal(digits)?
    };
    Some((n - 1, part))
}

/// Plain decimal digits (no sign, no leading zero but `0` itself).
fn decimal(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::devid;

    #[test]
    fn xvd_numbers_follow_vbd_interface() {
        assert_eq!(devid("xvda"), Ok(51712));
        assert_eq!(devid("xvdb"), Ok(51728));
        assert_eq!(devid("xvda1"), Ok(51713));
        assert_eq!(devid("xvdp15"), Ok(202 << 8 | 15 << 4 | 15));
        // Beyond 16 disks or 15 partitions: the extended form.
        assert_eq!(devid("xvdq"), Ok(1 << 28 | 16 << 8));
        assert_eq!(devid("xvda16"), Ok(1 << 28 | 16));
        assert_eq!(devid("xvdz"), Ok(1 << 28 | 25 << 8));
        assert_eq!(devid("xvdaa"), Ok(1 << 28 | 26 << 8));
        // The vbd-interface example: xvdtq37 is disk 536, partition 37, as is d536p37.
        assert_eq!(devid("xvdtq37"), Ok(1 << 28 | 536 << 8 | 37));
        assert_eq!(devid("d536p37"), devid("xvdtq37"));
        assert_eq!(devid("d0"), devid("xvda"));
        assert_eq!(devid("d1p2"), devid("xvdb2"));
        assert_eq!(devid("xvda255"), Ok(1 << 28 | 255));
    }

    #[test]
    fn sd_and_hd_numbers() {
        assert_eq!(devid("sda"), Ok(2048));
        assert_eq!(devid("sdb3"), Ok(8 << 8 | 1 << 4 | 3));
        assert_eq!(devid("hda"), Ok(768));
        assert_eq!(devid("hdb"), Ok(3 << 8 | 1 << 6));
        assert_eq!(devid("hdc2"), Ok(22 << 8 | 2));
        assert_eq!(devid("hdd63"), Ok(22 << 8 | 1 << 6 | 63));
    }

    #[test]
    fn bad_names_and_ranges() {
        for bad in [
            "",
            "xvd",
            "xvdA",
            "xvda0",
            "xvda01",
            "xvda1b",
            "vda",
            "d",
            "dp1",
            "d01",
            "sd1",
            "/dev/xvda",
        ] {
            let e = devid(bad).unwrap_err();
            assert!(e.contains("is not a virtual device name"), "{bad:?}: {e}");
        }
        for bad in [
            "sdq",
            "sda16",
            "hde",
            "hda64",
            "xvda256",
            "d1048576",
            "xvdbzzzz1",
        ] {
            let e = devid(bad).unwrap_err();
            assert!(e.contains("is out of range"), "{bad:?}: {e}");
        }
        assert_eq!(
            devid("xvdzzzzzz").unwrap_err(),
            "\"xvdzzzzzz\" is not a virtual device name, expected a virtual device such as xvda, xvdb1, sda, hdc or d0p1"
        );
    }
}
