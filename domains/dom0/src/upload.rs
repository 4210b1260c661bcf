//! `ctl create` of a file the system was not booted with: the host sends it in chunks
//! ([`UploadOp`]) and dom0 writes them into a module the microvisor creates from dom0's
//! memory quota. At the end the length and the SHA-256 the host announced are checked, so a
//! module that is complete is exactly the host's file; a failed check drops it.
//!
//! dom0 keeps the last [`KEEP`] complete uploads, so creating the same guest again (same
//! label: the host derives it from the hash) sends nothing. Older ones are given back; the
//! microvisor keeps a module's memory for as long as a domain built from it exists.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use protocol::control::CapError;
use protocol::mgmt::{MgmtError, Response, UploadOp, UPLOAD_CHUNK};
use sha2::{Digest, Sha256};

/// Complete uploads kept for reuse.
pub const KEEP: usize = 2;

/// Where modules live (the microvisor's `ModuleCreate`/`Write`/`Free` in dom0).
pub trait ModuleStore {
    /// A module's capability.
    type Handle: Copy;
    /// An empty module of `size` bytes named `label`.
    fn create(&mut self, label: &str, size: u64) -> Result<Self::Handle, CapError>;
    /// Writes `bytes` at `offset`.
    fn write(&mut self, module: Self::Handle, offset: u64, bytes: &[u8]) -> Result<(), CapError>;
    /// Gives the module up.
    fn free(&mut self, module: Self::Handle);
}

/// The upload being received.
struct Open<H> {
    label: String,
    module: H,
    size: u64,
    received: u64,
    sha256: [u8; 32],
    hasher: Sha256,
}

/// dom0's uploads: at most one open, and the complete ones kept.
pub struct Uploads<H> {
    open: Option<Open<H>>,
    /// Complete uploads, oldest first.
    done: Vec<(String, H)>,
}

impl<H> Default for Uploads<H> {
    fn default() -> Self {
        Self {
            open: None,
            done: Vec::new(),
        }
    }
}

impl<H: Copy> Uploads<H> {
    /// Whether a complete module labelled `label` is held.
    pub fn has(&self, label: &str) -> bool {
        self.done.iter().any(|(l, _)| l == label)
    }

    /// Serves one upload step.
    pub fn step(
        &mut self,
        op: &UploadOp,
        store: &mut impl ModuleStore<Handle = H>,
    ) -> Result<Response, MgmtError> {
        match op {
            UploadOp::Begin {
                label,
                size,
                sha256,
            } => self.begin(label, *size, *sha256, store),
            UploadOp::Chunk { offset, bytes } => {
                self.chunk(*offset, bytes, store)?;
                Ok(Response::Done)
            }
            UploadOp::End => {
                self.end(store)?;
                Ok(Response::Done)
            }
        }
    }

    fn begin(
        &mut self,
        label: &str,
        size: u64,
        sha256: [u8; 32],
        store: &mut impl ModuleStore<Handle = H>,
    ) -> Result<Response, MgmtError> {
        // A new Begin abandons an unfinished upload (its client went away).
        if let Some(old) = self.open.take() {
            store.free(old.module);
        }
        if self.has(label) {
            return Ok(Response::Upload { have: true });
        }
        if size == 0 {
            return Err(refused(label, "the file is empty"));
        }
        while self.done.len() >= KEEP {
            let (_, module) = self.done.remove(0);
            store.free(module);
        }
        let module = match store.create(label, size) {
            // Memory is short: give back every kept upload and try once more.
            Err(CapError::NoMemory | CapError::NoSlots) if !self.done.is_empty() => {
                for (_, m) in self.done.drain(..) {
                    store.free(m);
                }
                store.create(label, size)
            }
            r => r,
        };
        let module = module.map_err(|e| {
            refused(
                label,
                &format!("cannot make room for {} KiB: {e}", size.div_ceil(1024)),
            )
        })?;
        self.open = Some(Open {
            label: String::from(label),
            module,
            size,
            received: 0,
            sha256,
            hasher: Sha256::new(),
        });
        Ok(Response::Upload { have: false })
    }

    fn chunk(
        &mut self,
        offset: u64,
        bytes: &[u8],
        store: &mut impl ModuleStore<Handle = H>,
    ) -> Result<(), MgmtError> {
        let Some(open) = self.open.as_mut() else {
            return Err(MgmtError::Refused {
                why: String::from("upload: no upload is open (send Begin first)"),
            });
        };
        let fits = bytes.len() <= UPLOAD_CHUNK
            && offset == open.received
            && offset.saturating_add(bytes.len() as u64) <= open.size;
        if !fits {
            let why = format!(
                "chunk of {} bytes at {offset} does not follow the {} received of {}",
                bytes.len(),
                open.received,
                open.size
            );
            return Err(self.abandon(&why, store));
        }
        if let Err(e) = store.write(open.module, offset, bytes) {
            return Err(self.abandon(&format!("cannot write: {e}"), store));
        }
        open.hasher.update(bytes);
        open.received += bytes.len() as u64;
        Ok(())
    }

    fn end(&mut self, store: &mut impl ModuleStore<Handle = H>) -> Result<(), MgmtError> {
        let Some(open) = self.open.take() else {
            return Err(MgmtError::Refused {
                why: String::from("upload: no upload is open"),
            });
        };
        let why = if open.received != open.size {
            Some(format!("got {} of {} bytes", open.received, open.size))
        } else if open.hasher.finalize().as_slice() != open.sha256 {
            Some(String::from(
                "SHA-256 does not match the host's: the file was corrupted on the way",
            ))
        } else {
            None
        };
        if let Some(why) = why {
            store.free(open.module);
            return Err(refused(&open.label, &why));
        }
        self.done.push((open.label, open.module));
        Ok(())
    }

    /// Drops the open upload; the error that says why.
    fn abandon(&mut self, why: &str, store: &mut impl ModuleStore<Handle = H>) -> MgmtError {
        let label = match self.open.take() {
            Some(open) => {
                store.free(open.module);
                open.label
            }
            None => String::new(),
        };
        refused(&label, why)
    }
}

fn refused(label: &str, why: &str) -> MgmtError {
    MgmtError::Refused {
        why: format!("upload {label}: {why}"),
    }
}

#[cfg(test)]
mod tests;
