//! Host tests of the guest artifact builder: no network, no apt; fake package trees in
//! temporary directories. Helpers shared by the test files live here: a strict newc reader
//! and a minimal ELF64 with a `.modinfo` section.

mod archive;
mod deps;
mod files;

use super::cpio::{HEADER_LEN, MAGIC, TRAILER};

/// One parsed cpio entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub ino: u32,
    pub name: String,
    pub mode: u32,
    pub nlink: u32,
    pub rdev: (u32, u32),
    pub data: Vec<u8>,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Parses a whole newc archive, asserting the format strictly: magic, 4-byte alignment of
/// every header and data block, zero padding, NUL-terminated names, a final trailer and
/// nothing after it. The trailer is not returned.
pub fn parse_cpio(bytes: &[u8]) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut off = 0;
    loop {
        assert_eq!(off % 4, 0, "header at unaligned offset {off}");
        assert_eq!(&bytes[off..off + 6], MAGIC, "magic at {off}");
        let field = |i: usize| {
            let hex = std::str::from_utf8(&bytes[off + 6 + 8 * i..off + 14 + 8 * i]).unwrap();
            u32::from_str_radix(hex, 16).unwrap()
        };
        let namesize = field(11) as usize;
        let filesize = field(6) as usize;
        assert_eq!(field(12), 0, "check field");
        let name_start = off + HEADER_LEN;
        let name_end = name_start + namesize - 1;
        assert_eq!(bytes[name_end], 0, "name not NUL-terminated");
        let name = String::from_utf8(bytes[name_start..name_end].to_vec()).unwrap();
        let data_start = align4(name_end + 1);
        assert!(bytes[name_end + 1..data_start].iter().all(|&b| b == 0));
        let data_end = data_start + filesize;
        let next = align4(data_end);
        assert!(bytes[data_end..next].iter().all(|&b| b == 0));
        let entry = Entry {
            ino: field(0),
            name,
            mode: field(1),
            nlink: field(4),
            rdev: (field(9), field(10)),
            data: bytes[data_start..data_end].to_vec(),
        };
        off = next;
        if entry.name == TRAILER {
            break;
        }
        entries.push(entry);
    }
    assert_eq!(off, bytes.len(), "bytes after the trailer");
    entries
}

/// The entry named `name`.
pub fn entry<'a>(entries: &'a [Entry], name: &str) -> &'a Entry {
    entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no entry {name}"))
}

/// A relocatable AArch64 ELF64 whose only section is `.modinfo` holding `fields`.
pub fn fake_module(fields: &[&str]) -> Vec<u8> {
    let mut modinfo = Vec::new();
    for f in fields {
        modinfo.extend_from_slice(f.as_bytes());
        modinfo.push(0);
    }
    let shstrtab = b"\0.modinfo\0.shstrtab\0";
    let modinfo_off = 64u64;
    let shstrtab_off = modinfo_off + modinfo.len() as u64;
    let shoff = (shstrtab_off + shstrtab.len() as u64 + 7) & !7;
    let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    elf.extend_from_slice(&1u16.to_le_bytes()); // ET_REL
    elf.extend_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&0u64.to_le_bytes()); // entry
    elf.extend_from_slice(&0u64.to_le_bytes()); // phoff
    elf.extend_from_slice(&shoff.to_le_bytes());
    elf.extend_from_slice(&0u32.to_le_bytes()); // flags
    for v in [64u16, 0, 0, 64, 3, 2] {
        // ehsize phentsize phnum shentsize shnum shstrndx
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(&modinfo);
    elf.extend_from_slice(shstrtab);
    elf.resize(shoff as usize, 0);
    let section = |elf: &mut Vec<u8>, name: u32, kind: u32, flags: u64, off: u64, size: u64| {
        elf.extend_from_slice(&name.to_le_bytes());
        elf.extend_from_slice(&kind.to_le_bytes());
        elf.extend_from_slice(&flags.to_le_bytes());
        elf.extend_from_slice(&0u64.to_le_bytes()); // addr
        elf.extend_from_slice(&off.to_le_bytes());
        elf.extend_from_slice(&size.to_le_bytes());
        elf.extend_from_slice(&0u32.to_le_bytes()); // link
        elf.extend_from_slice(&0u32.to_le_bytes()); // info
        elf.extend_from_slice(&1u64.to_le_bytes()); // addralign
        elf.extend_from_slice(&0u64.to_le_bytes()); // entsize
    };
    section(&mut elf, 0, 0, 0, 0, 0);
    section(&mut elf, 1, 1, 2, modinfo_off, modinfo.len() as u64);
    section(&mut elf, 10, 3, 0, shstrtab_off, shstrtab.len() as u64);
    elf
}
