//! Host tests of the management protocol: messages, errors and framing.

use super::*;
use crate::control::PROTOCOL_VERSION;
use alloc::string::ToString;
use alloc::vec;
use proptest::prelude::*;

fn version() -> impl Strategy<Value = Version> {
    (any::<u16>(), any::<u16>()).prop_map(|(major, minor)| Version { major, minor })
}

fn domain_ref() -> impl Strategy<Value = DomainRef> {
    prop_oneof![
        "[a-z0-9_-]{1,31}".prop_map(DomainRef::Name),
        any::<u16>().prop_map(DomainRef::Id),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        version().prop_map(|version| Request::Hello { version }),
        Just(Request::List),
        Just(Request::Info),
        Just(Request::Top),
        domain_ref().prop_map(|domain| Request::Pause { domain }),
        domain_ref().prop_map(|domain| Request::Unpause { domain }),
        domain_ref().prop_map(|domain| Request::Destroy { domain }),
        domain_ref().prop_map(|domain| Request::Restart { domain }),
        domain_ref().prop_map(|domain| Request::Crash { domain }),
        domain_ref().prop_map(|domain| Request::Hang { domain }),
        Just(Request::Health),
        domain_ref().prop_map(|domain| Request::Shutdown { domain }),
        domain_ref().prop_map(|domain| Request::Reboot { domain }),
        domain_ref().prop_map(|domain| Request::Vbds { domain }),
        domain_ref().prop_map(|domain| Request::Vifs { domain }),
        any::<bool>().prop_map(|reset| Request::LockHolds { reset }),
    ]
}

fn state() -> impl Strategy<Value = DomainState> {
    prop_oneof![
        Just(DomainState::Created),
        Just(DomainState::Running),
        Just(DomainState::Paused),
        Just(DomainState::Stopped(StopReason::PowerOff)),
        any::<u64>().prop_map(|code| DomainState::Stopped(StopReason::Crashed { code })),
        (any::<u64>(), any::<u64>())
            .prop_map(|(ipa, esr)| DomainState::Stopped(StopReason::Stage2Fault { ipa, esr })),
    ]
}

fn row() -> impl Strategy<Value = DomainRow> {
    (
        any::<u16>(),
        "[a-z0-9_-]{1,31}",
        any::<(u32, u16, u16)>(),
        state(),
        any::<(u64, u64, u64, u32)>(),
    )
        .prop_map(
            |(id, name, (mem_mib, vcpus, vcpus_online), state, (cpu, exits, irqs, restarts))| {
                DomainRow {
                    id,
                    name,
                    mem_mib,
                    vcpus,
                    vcpus_online,
                    state,
                    cpu_ticks: cpu,
                    exits,
                    irqs_injected: irqs,
                    restarts,
                }
            },
        )
}

fn vif_row() -> impl Strategy<Value = VifRow> {
    (
        any::<(u16, u16, u32)>(),
        "[0-9a-f:]{17}",
        "[a-z0-9]{1,15}",
        any::<(u8, u8)>(),
        proptest::option::of(any::<[u64; 7]>()),
    )
        .prop_map(
            |((frontend, backend, devid), mac, bridge, (backend_state, frontend_state), c)| {
                VifRow {
                    frontend,
                    backend,
                    devid,
                    mac,
                    bridge,
                    backend_state,
                    frontend_state,
                    counters: c.map(|c| VifCounters {
                        rx_packets: c[0],
                        rx_bytes: c[1],
                        rx_drops: c[2],
                        tx_packets: c[3],
                        tx_bytes: c[4],
                        tx_drops: c[5],
                        tx_errors: c[6],
                    }),
                }
            },
        )
}

fn reason() -> impl Strategy<Value = RestartReason> {
    prop_oneof![
        Just(RestartReason::User),
        ".{0,40}".prop_map(|what| RestartReason::Crash { what }),
        any::<u64>().prop_map(|silent_ms| RestartReason::Watchdog { silent_ms }),
        Just(RestartReason::Reboot),
        Just(RestartReason::PowerOff),
    ]
}

fn health_row() -> impl Strategy<Value = HealthRow> {
    (
        any::<(u16, u32)>(),
        "[a-z0-9_-]{1,31}",
        proptest::option::of((reason(), any::<u64>(), proptest::option::of(any::<u64>()))),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u64>()),
        proptest::option::of(".{0,60}"),
    )
        .prop_map(
            |((id, incarnation), name, last, watchdog_ms, beat_ago_ms, held)| HealthRow {
                id,
                name,
                incarnation,
                last_restart: last.map(|(reason, ago_ms, recovery_ms)| RestartRecord {
                    reason,
                    ago_ms,
                    recovery_ms,
                }),
                watchdog_ms,
                beat_ago_ms,
                held,
            },
        )
}

fn error() -> impl Strategy<Value = MgmtError> {
    prop_oneof![
        Just(MgmtError::UnknownDomain),
        state().prop_map(|state| MgmtError::WrongState { state }),
        ".{0,40}".prop_map(|what| MgmtError::NotSupported { what }),
        (1..=16u64).prop_map(|c| MgmtError::Capability(CapError::from_code(c).unwrap())),
        Just(MgmtError::BadRequest),
        version().prop_map(|ours| MgmtError::VersionMismatch { ours }),
        Just(MgmtError::Dom0Protected),
        Just(MgmtError::TooLarge),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        version().prop_map(|version| Response::Hello { version }),
        proptest::collection::vec(row(), 0..40).prop_map(Response::Domains),
        (
            version(),
            any::<u64>(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>()
        )
            .prop_map(
                |(protocol_version, counter_hz, domains, free_pages, largest_free_pages)| {
                    Response::System(SystemInfo {
                        protocol_version,
                        counter_hz,
                        domains,
                        free_pages,
                        largest_free_pages,
                    })
                }
            ),
        Just(Response::Done),
        error().prop_map(Response::Error),
        proptest::collection::vec(vif_row(), 0..8).prop_map(Response::Vifs),
        proptest::collection::vec(health_row(), 0..8).prop_map(Response::Health),
        (any::<(u16, u64, u64)>(), any::<bool>()).prop_map(|((cpu, passes, ns), since_reset)| {
            use crate::lock_holds::{CpuHolds, Hold, Pass};
            let longest = Some(Hold {
                ns,
                pass: Pass::Idle,
            });
            Response::LockHolds(LockHolds {
                cpus: vec![CpuHolds {
                    cpu,
                    passes,
                    longest,
                    by_reason: [passes; crate::lock_holds::Reason::COUNT],
                    by_intid: [crate::lock_holds::IntidPasses { intid: cpu, passes };
                        crate::lock_holds::TRACKED_INTIDS],
                    longest_wait: longest,
                    waited_ns: ns,
                }],
                since_reset,
            })
        }),
    ]
}

/// Feeds `bytes` split at `cuts` (offsets, any order, may repeat) into a fresh decoder.
fn feed_in_pieces(bytes: &[u8], cuts: &[usize]) -> Vec<Result<Vec<u8>, FrameError>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.push(0);
    cuts.push(bytes.len());
    cuts.sort_unstable();
    let mut dec = FrameDecoder::new();
    let mut out = Vec::new();
    for w in cuts.windows(2) {
        out.extend(dec.feed(&bytes[w[0]..w[1]]));
    }
    out
}

proptest! {
    #[test]
    fn requests_round_trip(req in request()) {
        let frame = encode(&req).unwrap();
        prop_assert_eq!(frame.last(), Some(&0));
        prop_assert_eq!(frame.iter().filter(|&&b| b == 0).count(), 1);
        prop_assert_eq!(decode::<Request>(&frame), Ok(req.clone()));
        let frames = FrameDecoder::new().feed(&frame);
        prop_assert_eq!(frames.len(), 1);
        prop_assert_eq!(decode::<Request>(frames[0].as_ref().unwrap()), Ok(req));
    }

    #[test]
    fn responses_round_trip(resp in response()) {
        let frame = encode(&resp).unwrap();
        prop_assert_eq!(decode::<Response>(&frame), Ok(resp));
    }

    #[test]
    fn split_and_merged_frames(
        reqs in proptest::collection::vec(request(), 1..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
        lone_zeros in proptest::collection::vec(any::<bool>(), 8),
    ) {
        let mut stream = Vec::new();
        for (r, z) in reqs.iter().zip(lone_zeros.iter().cycle()) {
            if *z {
                stream.push(0); // an empty frame (a resync byte) is ignored
            }
            stream.extend(encode(r).unwrap());
        }
        let got: Vec<Request> = feed_in_pieces(&stream, &cuts)
            .into_iter()
            .map(|f| decode(&f.unwrap()).unwrap())
            .collect();
        prop_assert_eq!(got, reqs);
    }

    #[test]
    fn resyncs_after_garbage(
        garbage in proptest::collection::vec(any::<u8>(), 0..(3 * MAX_FRAME)),
        req in request(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut stream = garbage.clone();
        stream.push(0);
        stream.extend(encode(&req).unwrap());
        let frames = feed_in_pieces(&stream, &cuts);
        let last = frames.last().unwrap().as_ref().unwrap();
        prop_assert_eq!(decode::<Request>(last), Ok(req));
        // Whatever the garbage held, the valid frame is the last one and comes out intact.
        let garbage_frames = garbage.split(|&b| b == 0).filter(|f| !f.is_empty()).count();
        prop_assert_eq!(frames.len(), garbage_frames + 1);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut dec = FrameDecoder::new();
        for f in dec.feed(&bytes).into_iter().flatten() {
            prop_assert!(f.len() < MAX_FRAME && !f.contains(&0));
            let _ = decode::<Request>(&f);
            let _ = decode::<Response>(&f);
        }
        prop_assert!(dec.pending() < MAX_FRAME);
        let _ = decode::<Request>(&bytes);
        let _ = decode::<Response>(&bytes);
    }

    #[test]
    fn domain_ref_parses(id: u16, name in "[a-z_-][a-z0-9_-]{0,30}") {
        prop_assert_eq!(DomainRef::parse(&id.to_string()), DomainRef::Id(id));
        prop_assert_eq!(DomainRef::parse(&name), DomainRef::Name(name.clone()));
        prop_assert_eq!(DomainRef::parse(&DomainRef::Name(name.clone()).to_string()),
            DomainRef::Name(name));
    }
}

#[test]
fn oversize_frame_is_reported_once_then_resyncs() {
    let mut dec = FrameDecoder::new();
    let big = vec![0x55u8; MAX_FRAME * 2];
    assert!(dec.feed(&big).is_empty());
    assert_eq!(dec.pending(), 0);
    let mut tail = vec![0u8];
    tail.extend(encode(&Request::List).unwrap());
    let frames = dec.feed(&tail);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0], Err(FrameError::TooLarge));
    assert_eq!(
        decode::<Request>(frames[1].as_ref().unwrap()),
        Ok(Request::List)
    );
    // The largest frame that fits is accepted.
    let fits = vec![0x55u8; MAX_FRAME - 1];
    let mut dec = FrameDecoder::new();
    assert_eq!(dec.feed(&fits).len(), 0);
    assert_eq!(dec.feed(&[0]), vec![Ok(fits)]);
}

#[test]
fn decode_rejects_bad_frames() {
    assert_eq!(decode::<Request>(&[]), Err(FrameError::BadEncoding));
    assert_eq!(decode::<Request>(&[0]), Err(FrameError::BadEncoding));
    // A length code pointing past the end of the frame.
    assert_eq!(decode::<Request>(&[5, 1]), Err(FrameError::BadEncoding));
    // Valid COBS, unknown variant index.
    assert_eq!(decode::<Request>(&[2, 99]), Err(FrameError::BadMessage));
    // A valid message followed by trailing bytes.
    let mut payload = postcard::to_allocvec(&Request::List).unwrap();
    payload.push(7);
    let mut framed = vec![u8::try_from(payload.len() + 1).unwrap()];
    framed.extend(&payload);
    assert_eq!(decode::<Request>(&framed), Err(FrameError::BadMessage));
    assert_eq!(
        decode::<Request>(&vec![1u8; MAX_FRAME]),
        Err(FrameError::TooLarge)
    );
}

#[test]
fn encode_refuses_oversize_messages() {
    let rows = vec![
        DomainRow {
            id: 1,
            name: "x".repeat(31),
            mem_mib: u32::MAX,
            vcpus: 8,
            vcpus_online: 8,
            state: DomainState::Running,
            cpu_ticks: u64::MAX,
            exits: u64::MAX,
            irqs_injected: u64::MAX,
            restarts: u32::MAX,
        };
        500
    ];
    assert_eq!(encode(&Response::Domains(rows)), Err(FrameError::TooLarge));
}

#[test]
fn error_codes_and_messages() {
    let all = [
        MgmtError::UnknownDomain,
        MgmtError::WrongState {
            state: DomainState::Running,
        },
        MgmtError::NotSupported { what: "x".into() },
        MgmtError::Capability(CapError::Stale),
        MgmtError::BadRequest,
        MgmtError::VersionMismatch {
            ours: PROTOCOL_VERSION,
        },
        MgmtError::Dom0Protected,
        MgmtError::TooLarge,
    ];
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.code() as usize, i + 1);
    }
    assert_eq!(
        all[1].to_string(),
        "not allowed while the domain is running"
    );
    assert_eq!(
        all[3].to_string(),
        "the microvisor refused: stale handle: the object was destroyed or replaced"
    );
    assert_eq!(
        all[5].to_string(),
        alloc::format!(
            "management protocol version mismatch: dom0 speaks {}.{}",
            PROTOCOL_VERSION.major,
            PROTOCOL_VERSION.minor
        )
    );
    assert_eq!(
        MgmtError::from(FrameError::TooLarge).to_string(),
        "message larger than the 16384-byte frame limit"
    );
}

#[test]
fn restart_reasons_and_crash_codes_in_words() {
    assert_eq!(RestartReason::User.text(), "ctl restart");
    assert_eq!(
        RestartReason::Watchdog { silent_ms: 10_549 }.text(),
        "watchdog: no heartbeat for 10.5 s"
    );
    let undef = crash_code_text(0x0200_0000);
    assert_eq!(undef, "undefined instruction (esr 0x2000000)");
    assert_eq!(
        RestartReason::Crash { what: undef }.text(),
        "crash: undefined instruction (esr 0x2000000)"
    );
    assert_eq!(crash_code_text(0x9600_0045), "data abort (esr 0x96000045)");
    assert_eq!(crash_code_text(0xdead), "panic");
    assert_eq!(RestartReason::PowerOff.word(), "poweroff");
}

#[test]
fn words_and_verbs() {
    assert_eq!(
        state_word(&DomainState::Stopped(StopReason::Crashed { code: 1 })),
        "crashed"
    );
    assert_eq!(
        state_word(&DomainState::Stopped(StopReason::PowerOff)),
        "shutdown"
    );
    assert_eq!(state_word(&DomainState::Paused), "paused");
    let r = Request::Pause {
        domain: DomainRef::parse("rtos"),
    };
    assert_eq!(
        (r.verb(), r.domain()),
        ("pause", Some(&DomainRef::Name("rtos".into())))
    );
    assert_eq!(DomainRef::parse("007"), DomainRef::Id(7));
    assert_eq!(DomainRef::parse("+7"), DomainRef::Name("+7".into()));
    assert_eq!(DomainRef::parse("70000"), DomainRef::Name("70000".into()));
    assert_eq!(Request::Top.domain(), None);
    let vifs = Request::Vifs {
        domain: DomainRef::Id(2),
    };
    assert_eq!(
        (vifs.verb(), vifs.domain()),
        ("info", Some(&DomainRef::Id(2)))
    );
    // Appended: the older variants keep their postcard index (Vbds is 13, Vifs 14).
    assert_eq!(postcard::to_allocvec(&vifs).unwrap()[0], 14);
    assert_eq!(
        postcard::to_allocvec(&Response::Vifs(Vec::new())).unwrap()[0],
        7
    );
    // 3.1 appended Uplink after LockHolds, request and response alike.
    let index = |r: &Request| postcard::to_allocvec(r).unwrap()[0];
    let uplink = Request::Uplink {
        domain: DomainRef::Id(1),
    };
    assert_eq!(
        index(&uplink),
        index(&Request::LockHolds { reset: false }) + 1
    );
    assert_eq!(
        (uplink.verb(), uplink.domain()),
        ("info", Some(&DomainRef::Id(1)))
    );
    let answer = |r: &Response| postcard::to_allocvec(r).unwrap()[0];
    assert_eq!(
        answer(&Response::Uplink(None)),
        answer(&Response::LockHolds(Default::default())) + 1
    );
    assert_eq!(MGMT_VERSION.major, 5);
}

#[test]
fn a_full_upload_chunk_fits_a_frame_whatever_its_bytes() {
    for fill in [0x00u8, 0xff, 0x80] {
        let req = Request::Upload {
            op: UploadOp::Chunk {
                offset: u64::MAX,
                bytes: vec![fill; UPLOAD_CHUNK],
            },
        };
        let frame = encode(&req).unwrap();
        assert!(frame.len() <= MAX_FRAME, "{} bytes", frame.len());
        let mut dec = FrameDecoder::new();
        let got = dec.feed(&frame);
        assert_eq!(got.len(), 1);
        assert_eq!(decode::<Request>(got[0].as_ref().unwrap()).unwrap(), req);
    }
}
