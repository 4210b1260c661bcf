//! A writer for the "newc" cpio format (magic `070701`) the Linux initramfs unpacker reads.
//!
//! Each entry is a 110-byte ASCII header (thirteen 8-digit hex fields), the NUL-terminated
//! name padded to a multiple of 4 bytes (counted from the header's start), then the data
//! padded likewise; the archive ends with an entry named `TRAILER!!!`. The kernel does not
//! create missing parent directories, so the writer emits each parent once, before its first
//! child. Output is reproducible: owner root, mtime 0, inode numbers in write order.

use std::collections::BTreeSet;
use std::io::{self, Write};

/// The newc magic.
pub const MAGIC: &[u8; 6] = b"070701";

/// Length of a newc header.
pub const HEADER_LEN: usize = 110;

/// The name of the closing entry.
pub const TRAILER: &str = "TRAILER!!!";

/// File type bits of `st_mode`.
pub mod mode {
    /// Directory.
    pub const DIR: u32 = 0o040_000;
    /// Regular file.
    pub const FILE: u32 = 0o100_000;
    /// Symbolic link.
    pub const SYMLINK: u32 = 0o120_000;
    /// Character device.
    pub const CHAR: u32 = 0o020_000;
}

/// Streams a newc archive to `out`; call [`CpioWriter::finish`] to write the trailer.
pub struct CpioWriter<W: Write> {
    out: W,
    /// Bytes written so far (padding is relative to the archive's start).
    offset: u64,
    next_ino: u32,
    /// Directories already in the archive.
    dirs: BTreeSet<String>,
}

/// One entry's header fields that vary.
struct Header<'a> {
    name: &'a str,
    mode: u32,
    nlink: u32,
    rdev: (u32, u32),
    data: &'a [u8],
}

impl<W: Write> CpioWriter<W> {
    /// An empty archive writing to `out`.
    pub fn new(out: W) -> Self {
        Self {
            out,
            offset: 0,
            next_ino: 1,
            dirs: BTreeSet::new(),
        }
    }

    /// A directory with permission bits `perm` (no-op if already written).
    pub fn dir(&mut self, path: &str, perm: u32) -> io::Result<()> {
        let path = normalize(path)?;
        if self.dirs.contains(path) {
            return Ok(());
        }
        self.parents(path)?;
        self.entry(Header {
            name: path,
            mode: mode::DIR | perm,
            nlink: 2,
            rdev: (0, 0),
            data: &[],
        })?;
        self.dirs.insert(path.to_owned());
        Ok(())
    }

    /// A regular file holding `data`.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> io::Result<()> {
        self.leaf(path, mode::FILE | perm, (0, 0), data)
    }

    /// A symbolic link to `target` (stored as the entry's data, as newc does).
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.leaf(path, mode::SYMLINK | 0o777, (0, 0), target.as_bytes())
    }

    /// A character device node `major:minor`.
    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> io::Result<()> {
        self.leaf(path, mode::CHAR | perm, (major, minor), &[])
    }

    /// Writes the trailer and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry(Header {
            name: TRAILER,
            mode: 0,
            nlink: 1,
            rdev: (0, 0),
            data: &[],
        })?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn leaf(&mut self, path: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> io::Result<()> {
        let path = normalize(path)?;
        self.parents(path)?;
        self.entry(Header {
            name: path,
            mode,
            nlink: 1,
            rdev,
            data,
        })
    }

    /// Emits the missing ancestors of `path`, outermost first.
    fn parents(&mut self, path: &str) -> io::Result<()> {
        let mut ends: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
        ends.retain(|&i| !self.dirs.contains(&path[..i]));
        for i in ends {
            self.dir(&path[..i], 0o755)?;
        }
        Ok(())
    }

    fn entry(&mut self, h: Header<'_>) -> io::Result<()> {
        let too_big = |what| io::Error::new(io::ErrorKind::InvalidInput, what);
        let size = u32::try_from(h.data.len()).map_err(|_| too_big("cpio entry over 4 GiB"))?;
        let namesize =
            u32::try_from(h.name.len() + 1).map_err(|_| too_big("cpio name too long"))?;
        let ino = if h.name == TRAILER { 0 } else { self.next_ino };
        self.next_ino += 1;
        // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
        let fields = [
            ino, h.mode, 0, 0, h.nlink, 0, size, 0, 0, h.rdev.0, h.rdev.1, namesize, 0,
        ];
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(MAGIC);
        for f in fields {
            header.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.put(&header)?;
        self.put(h.name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(h.data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Zero bytes up to the next multiple of 4.
    fn pad(&mut self) -> io::Result<()> {
        let n = padding(self.offset);
        self.put(&[0; 3][..n])
    }
}

/// Bytes needed after `offset` to reach a multiple of 4.
pub fn padding(offset: u64) -> usize {
    // The result is below 4, so the cast cannot truncate.
    ((4 - offset % 4) % 4) as usize
}

/// Archive names are relative (`bin/busybox`); a leading `/` is accepted and dropped.
fn normalize(path: &str) -> io::Result<&str> {
    let p = path.trim_start_matches('/').trim_end_matches('/');
    if p.is_empty() || p.contains('\0') || p == TRAILER || p.split('/').any(|c| c == "..") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad cpio path `{path}`"),
        ));
    }
    Ok(p)
}
