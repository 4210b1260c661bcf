//! The byte stream: partial and batched input, garbage, oversized headers, back-pressure.

use super::*;

fn read_req(id: u32, path: &str) -> Vec<u8> {
    encode(XsType::Read, id, 0, &args(&[path]))
}

#[test]
fn partial_messages_split_across_feeds() {
    let mut h = Harness::new(&[3]);
    assert_eq!(h.write(3, "k", "value"), okr());
    let bytes = read_req(7, "k");
    for split in [1, 5, 15, 16, 17, bytes.len() - 1] {
        h.xs.feed(3, &bytes[..split]).unwrap();
        assert!(
            h.xs.output(3).is_empty(),
            "no reply before the message is complete"
        );
        h.xs.feed(3, &bytes[split..]).unwrap();
        let out = parse(&h.xs.take_output(3, usize::MAX));
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].req_id, &out[0].payload[..]), (7, &b"value"[..]));
    }
    // Byte by byte.
    for b in &bytes {
        h.xs.feed(3, core::slice::from_ref(b)).unwrap();
    }
    assert_eq!(parse(&h.xs.take_output(3, usize::MAX)).len(), 1);
}

#[test]
fn several_messages_in_one_feed_are_answered_in_order() {
    let mut h = Harness::new(&[3]);
    let mut bytes = encode(XsType::Write, 1, 0, b"k\0v1");
    bytes.extend(read_req(2, "k"));
    bytes.extend(encode(XsType::Write, 3, 0, b"k\0v2"));
    bytes.extend(read_req(4, "k"));
    bytes.extend(&read_req(5, "k")[..10]); // and the start of another
    h.xs.feed(3, &bytes).unwrap();
    let out = parse(&h.xs.take_output(3, usize::MAX));
    let got: Vec<(u32, &[u8])> = out.iter().map(|m| (m.req_id, &m.payload[..])).collect();
    assert_eq!(
        got,
        vec![
            (1, &b"OK\0"[..]),
            (2, &b"v1"[..]),
            (3, &b"OK\0"[..]),
            (4, &b"v2"[..])
        ]
    );
    h.xs.feed(3, &read_req(5, "k")[10..]).unwrap();
    assert_eq!(parse(&h.xs.take_output(3, usize::MAX))[0].req_id, 5);
}

#[test]
fn unknown_and_reply_only_types_are_enosys() {
    let mut h = Harness::new(&[3]);
    for ty in [15u32, 16, 20, 27, 0xFFFF, u32::MAX] {
        h.xs.feed(3, &{
            let mut m = encode(XsType::Read, 9, 0, b"x\0");
            m[..4].copy_from_slice(&ty.to_le_bytes());
            m
        })
        .unwrap();
        let out = parse(&h.xs.take_output(3, usize::MAX));
        assert_eq!(out[0].ty, XsType::Error as u32);
        assert_eq!(out[0].payload, b"ENOSYS\0");
    }
    for ty in [XsType::SetTarget, XsType::GetQuota, XsType::GetFeature] {
        assert_eq!(h.call(0, ty, 0, b"1\0"), err("ENOSYS"));
    }
}

#[test]
fn garbage_gets_errors_and_harms_no_one_else() {
    let mut h = Harness::new(&[3, 4]);
    assert_eq!(h.write(4, "mine", "safe"), okr());
    assert_eq!(h.watch(4, "mine", "t"), okr());
    h.events(4);
    let before = h.xs.node_count();
    // Deterministic pseudo-random payloads with valid lengths, every request type.
    let mut seed = 0x1234_5678u32;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed
    };
    for i in 0..2000u32 {
        let len = (rand() % 64) as usize;
        let alphabet = b"a/0\0@T-F\xffrnb3";
        let payload: Vec<u8> = (0..len)
            .map(|_| alphabet[rand() as usize % alphabet.len()])
            .collect();
        let ty = rand() % 30;
        let tx = if i % 3 == 0 { rand() } else { 0 };
        h.xs.feed(3, &{
            let mut m = encode(XsType::Read, i, tx, &payload);
            m[..4].copy_from_slice(&ty.to_le_bytes());
            m
        })
        .unwrap();
        for m in parse(&h.xs.take_output(3, usize::MAX)) {
            if m.ty != XsType::WatchEvent as u32 {
                assert_eq!(m.req_id, i);
            }
        }
    }
    // Unframed bytes: whatever they parse as, no panic, and a shutdown at worst.
    for _ in 0..200 {
        let len = (rand() % 300) as usize;
        let junk: Vec<u8> = (0..len).map(|_| rand() as u8).collect();
        if h.xs.feed(3, &junk).is_err() {
            h.xs.reset_connection(3);
        }
        h.xs.take_output(3, usize::MAX);
    }
    assert_eq!(h.read(4, "mine"), Ok(b"safe".to_vec()));
    assert_eq!(h.events(4), vec![]);
    assert!(h.xs.node_count() <= before + 1000);
}

#[test]
fn oversized_header_shuts_down_only_that_connection() {
    let mut h = Harness::new(&[3, 4]);
    assert_eq!(h.watch(3, "w", "t"), okr());
    assert_eq!(h.events(3), vec![ev("w", "t")]);
    let mut bad = encode(XsType::Read, 1, 0, b"");
    bad[12..16].copy_from_slice(&4097u32.to_le_bytes());
    assert_eq!(
        h.xs.feed(3, &bad),
        Err(FeedError::PayloadTooLong {
            domid: 3,
            len: 4097
        })
    );
    assert_eq!(h.xs.feed(3, &read_req(2, "x")), Err(FeedError::Faulted(3)));
    assert!(!h.xs.accepts_input(3));
    assert!(h.xs.output(3).is_empty());
    // Others are unaffected; the faulted connection gets no events.
    assert_eq!(h.write(4, "ok", "1"), okr());
    assert_eq!(h.write(0, "/local/domain/3/w", "1"), okr());
    assert!(h.xs.output(3).is_empty());
    // A reset (ring reconnection) brings it back, without its old watches.
    h.xs.reset_connection(3);
    assert_eq!(h.read(3, "w"), Ok(b"1".to_vec()));
    assert_eq!(h.write(0, "/local/domain/3/w", "2"), okr());
    assert_eq!(h.events(3), vec![]);
    // Exactly the limit is fine.
    let mut big = args(&["big"]);
    big.resize(4096, b'v');
    assert_eq!(h.call(0, XsType::Write, 0, &big), okr());
    assert_eq!(h.xs.feed(9, b"x"), Err(FeedError::UnknownConnection(9)));
}

#[test]
fn outstanding_replies_apply_back_pressure_and_output_survives_a_full_ring() {
    let q = Quotas {
        outstanding: 2,
        ..Quotas::default()
    };
    let mut h = Harness::with_quotas(&[3], q);
    assert!(h.xs.accepts_input(3));
    h.xs.feed(3, &read_req(1, "/x")).unwrap();
    assert!(h.xs.accepts_input(3));
    h.xs.feed(3, &read_req(2, "/x")).unwrap();
    assert!(!h.xs.accepts_input(3), "two replies waiting");
    assert_eq!(h.xs.pending_output(), vec![3]);
    // The ring takes 5 bytes, then the rest.
    let head = h.xs.output(3).to_vec();
    h.xs.advance_output(3, 5);
    assert_eq!(h.xs.output(3), &head[5..]);
    let rest = h.xs.take_output(3, usize::MAX);
    let out = parse(&[&head[..5], &rest[..]].concat());
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].payload, b"EACCES\0");
    assert!(h.xs.accepts_input(3));
    assert!(h.xs.accepts_input(0) && !h.xs.accepts_input(9));
    assert_eq!(h.xs.drain_output(), vec![]);
}

#[test]
fn node_and_watch_quotas_for_guests_dom0_exempt() {
    let q = Quotas {
        nodes: 4,
        watches: 2,
        node_size: 10,
        perms_per_node: 2,
        ..Quotas::default()
    };
    let mut h = Harness::with_quotas(&[3], q);
    assert_eq!(h.write(3, "a/b/c", "v"), okr()); // home + 3
    assert_eq!(h.write(3, "d", "v"), err("ENOSPC"));
    assert_eq!(h.write(3, "a/b/c", "0123456789"), okr());
    assert_eq!(
        h.write(3, "a/b/c", "0123456789x"),
        err("ENOSPC"),
        "node size"
    );
    assert_eq!(
        h.write(3, "a/b", "012345678"),
        err("ENOSPC"),
        "children count"
    );
    assert_eq!(
        h.write(0, "/local/domain/3/z/y", "0123456789x"),
        okr(),
        "dom0 exempt"
    );
    assert_eq!(h.set_perms(3, "a", &["n3", "r0", "r4"]), err("ENOSPC"));
    assert_eq!(h.set_perms(3, "a", &["n3", "r4"]), okr());
    assert_eq!(h.watch(3, "w1", "t"), okr());
    assert_eq!(h.watch(3, "w2", "t"), okr());
    assert_eq!(h.watch(3, "w3", "t"), err("ENOSPC"));
    for i in 0..10 {
        assert_eq!(h.watch(0, &alloc::format!("/w{i}"), "t"), okr());
    }
    h.call(3, XsType::Rm, 0, &args(&["a"])).unwrap();
    assert_eq!(h.write(3, "d", "v"), okr(), "removal frees quota");
}
