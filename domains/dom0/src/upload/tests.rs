use super::*;
use alloc::vec;

/// Modules in host memory, with the microvisor's rules that matter here.
#[derive(Default)]
struct Store {
    modules: Vec<Option<(String, Vec<u8>)>>,
    /// Pages left in the quota.
    quota: u64,
}

impl Store {
    fn with_quota(pages: u64) -> Self {
        Self {
            modules: Vec::new(),
            quota: pages,
        }
    }
    fn live(&self) -> usize {
        self.modules.iter().flatten().count()
    }
    fn bytes(&self, h: usize) -> &[u8] {
        &self.modules[h].as_ref().unwrap().1
    }
}

impl ModuleStore for Store {
    type Handle = usize;
    fn create(&mut self, label: &str, size: u64) -> Result<usize, CapError> {
        let pages = size.div_ceil(4096);
        if pages > self.quota {
            return Err(CapError::NoMemory);
        }
        self.quota -= pages;
        self.modules
            .push(Some((String::from(label), vec![0; size as usize])));
        Ok(self.modules.len() - 1)
    }
    fn write(&mut self, h: usize, offset: u64, bytes: &[u8]) -> Result<(), CapError> {
        let m = &mut self.modules[h].as_mut().ok_or(CapError::Stale)?.1;
        let at = offset as usize;
        m.get_mut(at..at + bytes.len())
            .ok_or(CapError::InvalidArgument)?
            .copy_from_slice(bytes);
        Ok(())
    }
    fn free(&mut self, h: usize) {
        let (_, m) = self.modules[h].take().expect("freed twice");
        self.quota += (m.len() as u64).div_ceil(4096);
    }
}

fn file(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

fn begin(label: &str, data: &[u8]) -> UploadOp {
    UploadOp::Begin {
        label: String::from(label),
        size: data.len() as u64,
        sha256: Sha256::digest(data).into(),
    }
}

/// Sends `data` whole; the last answer.
fn send(u: &mut Uploads<usize>, s: &mut Store, label: &str, data: &[u8]) -> Result<(), MgmtError> {
    match u.step(&begin(label, data), s)? {
        Response::Upload { have: true } => return Ok(()),
        Response::Upload { have: false } => {}
        other => panic!("{other:?}"),
    }
    for (i, c) in data.chunks(UPLOAD_CHUNK).enumerate() {
        let op = UploadOp::Chunk {
            offset: (i * UPLOAD_CHUNK) as u64,
            bytes: c.to_vec(),
        };
        u.step(&op, s)?;
    }
    u.step(&UploadOp::End, s).map(drop)
}

#[test]
fn a_file_arrives_whole_and_is_reused() {
    let (mut u, mut s) = (Uploads::default(), Store::with_quota(1000));
    let data = file(3 * UPLOAD_CHUNK + 17, 1);
    send(&mut u, &mut s, "up-a", &data).unwrap();
    assert!(u.has("up-a"));
    assert_eq!(s.bytes(0), &data[..]);
    // The same label again: nothing is created or sent.
    assert_eq!(
        u.step(&begin("up-a", &data), &mut s),
        Ok(Response::Upload { have: true })
    );
    assert_eq!(s.live(), 1);
}

#[test]
fn a_wrong_hash_or_length_drops_the_module() {
    let (mut u, mut s) = (Uploads::default(), Store::with_quota(1000));
    let data = file(5000, 2);
    let mut other = data.clone();
    other[4999] ^= 1;
    // Announced hash is of `data`, bytes sent are `other`.
    assert_eq!(
        u.step(&begin("up-b", &data), &mut s),
        Ok(Response::Upload { have: false })
    );
    let chunk = UploadOp::Chunk {
        offset: 0,
        bytes: other.clone(),
    };
    u.step(&chunk, &mut s).unwrap();
    let e = u.step(&UploadOp::End, &mut s).unwrap_err().to_string();
    assert!(e.contains("SHA-256 does not match"), "{e}");
    assert!(!u.has("up-b"));
    assert_eq!((s.live(), s.quota), (0, 1000));
    // Short: End before every byte came.
    u.step(&begin("up-b", &data), &mut s).unwrap();
    u.step(
        &UploadOp::Chunk {
            offset: 0,
            bytes: data[..100].to_vec(),
        },
        &mut s,
    )
    .unwrap();
    let e = u.step(&UploadOp::End, &mut s).unwrap_err().to_string();
    assert!(e.contains("got 100 of 5000 bytes"), "{e}");
    assert_eq!(s.live(), 0);
}

#[test]
fn chunks_out_of_order_or_too_big_end_the_upload() {
    let (mut u, mut s) = (Uploads::default(), Store::with_quota(1000));
    let data = file(3 * UPLOAD_CHUNK, 3);
    for bad in [
        UploadOp::Chunk {
            offset: 1,
            bytes: data[..10].to_vec(),
        },
        UploadOp::Chunk {
            offset: 0,
            bytes: vec![0; UPLOAD_CHUNK + 1],
        },
    ] {
        u.step(&begin("up-c", &data), &mut s).unwrap();
        let e = u.step(&bad, &mut s).unwrap_err().to_string();
        assert!(e.contains("does not follow"), "{e}");
        assert_eq!(s.live(), 0, "the module is dropped");
        // Nothing is open any more.
        assert!(u.step(&UploadOp::End, &mut s).is_err());
    }
    // Past the announced size.
    let small = file(10, 3);
    u.step(&begin("up-d", &small), &mut s).unwrap();
    let over = UploadOp::Chunk {
        offset: 0,
        bytes: file(11, 3),
    };
    assert!(u.step(&over, &mut s).is_err());
    // A chunk with nothing open, an empty file.
    assert!(u.step(&over, &mut s).is_err());
    assert!(u.step(&begin("up-e", &[]), &mut s).is_err());
    assert_eq!(s.live(), 0);
}

#[test]
fn a_new_begin_abandons_the_unfinished_one() {
    let (mut u, mut s) = (Uploads::default(), Store::with_quota(1000));
    let (a, b) = (file(9000, 4), file(100, 5));
    u.step(&begin("up-a", &a), &mut s).unwrap();
    send(&mut u, &mut s, "up-b", &b).unwrap();
    assert_eq!(s.live(), 1);
    assert!(u.has("up-b") && !u.has("up-a"));
}

#[test]
fn only_the_last_uploads_are_kept_and_memory_is_made() {
    let (mut u, mut s) = (Uploads::default(), Store::with_quota(4));
    for (i, label) in ["up-1", "up-2", "up-3"].iter().enumerate() {
        send(&mut u, &mut s, label, &file(4096, i as u8)).unwrap();
    }
    assert_eq!(s.live(), KEEP);
    assert!(!u.has("up-1") && u.has("up-2") && u.has("up-3"));
    // Needs the whole quota: the kept ones are given back to make room.
    send(&mut u, &mut s, "up-big", &file(4 * 4096, 9)).unwrap();
    assert_eq!(s.live(), 1);
    assert!(u.has("up-big"));
    // Too big even then: a clear refusal that says how much.
    let e = send(&mut u, &mut s, "up-huge", &file(5 * 4096, 9))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot make room for 20 KiB"), "{e}");
}
