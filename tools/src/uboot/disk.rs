//! The boot disk `run --firmware u-boot` gives U-Boot: an MBR with one bootable Linux
//! partition at 1 MiB holding an ext2 file system with the packed files (`boot.scr`,
//! `microvisor.bin`, the modules, the DTB), made by e2fsprogs' `mke2fs -d` without root.
//! U-Boot's distro boot finds `boot.scr` on it and runs it.
//!
//! ext2 rather than ext4: U-Boot's ext4 reader refuses some features newer `mke2fs`
//! defaults turn on; ext2 has none of them.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bytes per sector.
const SECTOR: u64 = 512;
/// Where the partition starts (the usual 1 MiB alignment).
pub const PART_START: u64 = 1 << 20;
/// The MBR's disk signature ("BHKD"): U-Boot reports it as the partition UUID's prefix.
const SIGNATURE: u32 = 0x4448_4b42;
/// Partition type: Linux.
const LINUX: u8 = 0x83;

/// The MBR of a disk with one bootable Linux partition of `sectors` sectors at
/// [`PART_START`]. CHS fields say "use LBA" (the usual 0xfe/0xff/0xff).
pub fn mbr(sectors: u32) -> [u8; 512] {
    let mut m = [0u8; 512];
    m[440..444].copy_from_slice(&SIGNATURE.to_le_bytes());
    let entry = &mut m[446..462];
    entry[0] = 0x80; // bootable
    entry[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]);
    entry[4] = LINUX;
    entry[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
    entry[8..12].copy_from_slice(&((PART_START / SECTOR) as u32).to_le_bytes());
    entry[12..16].copy_from_slice(&sectors.to_le_bytes());
    m[510] = 0x55;
    m[511] = 0xaa;
    m
}

/// Size of a file system for `payload` bytes of files: a quarter more for ext2's own
/// blocks, plus 8 MiB, in whole MiB.
pub fn fs_size(payload: u64) -> u64 {
    (payload + payload / 4 + (8 << 20)).next_multiple_of(1 << 20)
}

/// Writes the disk `out` holding `files` (in its root directory, by file name).
pub fn build(files: &[PathBuf], out: &Path) -> Result<()> {
    let staging = out.with_extension("files");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot clear {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let mut payload = 0;
    for f in files {
        let name = f.file_name().context("a boot file without a name")?;
        let to = staging.join(name);
        // Same file system (both under target/): a link costs nothing; else copy.
        if std::fs::hard_link(f, &to).is_err() {
            std::fs::copy(f, &to)
                .with_context(|| format!("cannot copy {} to {}", f.display(), to.display()))?;
        }
        payload += std::fs::metadata(&to)?.len();
    }
    let fs = fs_size(payload);
    let sectors = u32::try_from(fs / SECTOR).context("boot disk over 2 TiB")?;
    eprintln!(
        "bulkhead: writing the U-Boot boot disk {} ({} MiB, {} files)",
        out.display(),
        (PART_START + fs) >> 20,
        files.len()
    );
    let _ = std::fs::remove_file(out);
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    file.set_len(PART_START + fs)?;
    drop(file);
    let status = Command::new(crate::deps::mke2fs())
        .args(["-q", "-F", "-t", "ext2", "-L", "bulkhead", "-d"])
        .arg(&staging)
        .args(["-E", &format!("offset={PART_START}")])
        .arg(out)
        .arg(format!("{}k", fs >> 10))
        .status()
        .with_context(|| format!("cannot run {}", crate::deps::mke2fs()))?;
    if !status.success() {
        bail!(
            "{} failed ({status}) writing {}",
            crate::deps::MKE2FS,
            out.display()
        );
    }
    use std::io::{Seek, SeekFrom, Write};
    let mut disk = std::fs::OpenOptions::new()
        .write(true)
        .open(out)
        .with_context(|| format!("cannot open {}", out.display()))?;
    disk.seek(SeekFrom::Start(0))?;
    disk.write_all(&mbr(sectors))?;
    std::fs::remove_dir_all(&staging).ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mbr_has_one_bootable_linux_partition_at_1_mib() {
        let m = mbr(0x3000);
        assert_eq!(&m[510..], &[0x55, 0xaa]);
        assert_eq!(m[446], 0x80);
        assert_eq!(m[450], 0x83);
        assert_eq!(u32::from_le_bytes(m[454..458].try_into().unwrap()), 2048);
        assert_eq!(u32::from_le_bytes(m[458..462].try_into().unwrap()), 0x3000);
        // The other three entries are empty.
        assert!(m[462..510].iter().all(|&b| b == 0));
    }

    #[test]
    fn the_file_system_has_room_for_its_files() {
        assert_eq!(fs_size(0), 8 << 20);
        assert_eq!(fs_size(80 << 20), 108 << 20);
        assert_eq!(fs_size(1), 9 << 20);
    }

    /// Builds a real disk when e2fsprogs is installed (it is wherever the U-Boot flow
    /// runs) and reads the file back with `debugfs`.
    #[test]
    fn the_disk_holds_the_files() {
        let mke2fs = std::path::Path::new(crate::deps::mke2fs());
        if !(crate::deps::on_path(crate::deps::MKE2FS) || mke2fs.is_file())
            || !crate::deps::on_path("debugfs")
        {
            eprintln!("skipped: no mke2fs/debugfs");
            return;
        }
        let dir = std::env::temp_dir().join(format!("bulkhead-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("boot.scr");
        std::fs::write(&file, b"hello").unwrap();
        let disk = dir.join("disk.img");
        build(&[file], &disk).unwrap();
        let bytes = std::fs::read(&disk).unwrap();
        // Five bytes of files: a 9 MiB file system.
        assert_eq!(bytes[..512], mbr(((9u64 << 20) / 512) as u32));
        assert_eq!(bytes.len() as u64, PART_START + (9 << 20));
        // The ext2 superblock's magic, 1 KiB into the partition.
        let sb = PART_START as usize + 1024;
        assert_eq!(&bytes[sb + 56..sb + 58], &[0x53, 0xef]);
        let fs = dir.join("fs.img");
        std::fs::write(&fs, &bytes[PART_START as usize..]).unwrap();
        let out = Command::new("debugfs")
            .args(["-R", "cat /boot.scr"])
            .arg(&fs)
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"hello");
        std::fs::remove_dir_all(&dir).ok();
    }
}
