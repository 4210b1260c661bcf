//! Reading a fuzz input as a little script: bytes, small integers and length-prefixed
//! chunks, with zeros once the input runs out (so every input is a valid script).

/// A cursor over one fuzz input.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub const fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether everything has been read.
    pub const fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte, 0 at the end.
    pub fn u8(&mut self) -> u8 {
        let (first, rest) = self
            .data
            .split_first()
            .map_or((0, &[][..]), |(b, r)| (*b, r));
        self.data = rest;
        first
    }

    /// The next little-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next little-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Up to `n` next bytes (fewer at the end).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A chunk: a `u16` length, then that many bytes (fewer at the end).
    pub fn chunk(&mut self) -> &'a [u8] {
        let n = self.u16();
        self.bytes(usize::from(n))
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.data.len())
    }
}

/// Writes scripts [`Input`] reads back; the seed generators use it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script(pub Vec<u8>);

impl Script {
    /// An empty script.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Appends a byte.
    pub fn u8(&mut self, b: u8) -> &mut Self {
        self.0.push(b);
        self
    }

    /// Appends a little-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends a little-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Appends a chunk (see [`Input::chunk`]); `bytes` must be shorter than 64 KiB.
    pub fn chunk(&mut self, bytes: &[u8]) -> &mut Self {
        let n = u16::try_from(bytes.len()).expect("seed chunks are small");
        self.u16(n);
        self.0.extend_from_slice(bytes);
        self
    }

    /// The script's bytes.
    pub fn take(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_what_the_script_wrote() {
        let bytes = Script::new()
            .u8(7)
            .u16(0x1234)
            .u32(0xdead_beef)
            .chunk(b"abc")
            .take();
        let mut i = Input::new(&bytes);
        assert_eq!(
            (i.u8(), i.u16(), i.u32(), i.chunk()),
            (7, 0x1234, 0xdead_beef, &b"abc"[..])
        );
        assert!(i.is_empty());
        // Past the end: zeros and empty chunks, never a panic.
        assert_eq!((i.u32(), i.chunk()), (0, &b""[..]));
        let mut short = Input::new(&[5, 0, b'x']);
        assert_eq!(short.chunk(), b"x");
    }
}
