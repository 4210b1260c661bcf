//! Host tests for the Xen guest ABI definitions (layouts are also checked at compile time).

use super::ring::*;
use super::structs::*;
use super::*;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

#[test]
fn hypercall_numbers_round_trip() {
    for (n, h) in [
        (12, Hypercall::MemoryOp),
        (17, Hypercall::XenVersion),
        (18, Hypercall::ConsoleIo),
        (20, Hypercall::GrantTableOp),
        (21, Hypercall::VmAssist),
        (24, Hypercall::VcpuOp),
        (29, Hypercall::SchedOp),
        (32, Hypercall::EventChannelOp),
        (33, Hypercall::PhysdevOp),
        (34, Hypercall::HvmOp),
    ] {
        assert_eq!(Hypercall::try_from(n), Ok(h));
        assert_eq!(h as u64, n);
        assert_eq!(Hypercall::from_reg(n), Some(h));
    }
    for n in [0, 6, 13, 16, 35, 48, u64::MAX] {
        assert_eq!(Hypercall::try_from(n), Err(n));
    }
}

#[test]
fn sub_ops_round_trip_and_reject_unknown() {
    for op in [
        SchedOp::Yield,
        SchedOp::Block,
        SchedOp::Shutdown,
        SchedOp::Poll,
    ] {
        assert_eq!(SchedOp::try_from(op as u32), Ok(op));
    }
    assert_eq!(SchedOp::try_from(4), Err(4));
    assert_eq!(ShutdownReason::try_from(1), Ok(ShutdownReason::Reboot));
    assert_eq!(ShutdownReason::try_from(6), Err(6));
    assert_eq!(MemoryOp::from_reg(7), Some(MemoryOp::AddToPhysmap));
    assert_eq!(
        MemoryOp::from_reg(7 | 1 << 32),
        None,
        "high bits must not alias"
    );
    assert_eq!(MapSpace::try_from(1), Ok(MapSpace::GrantTable));
    assert_eq!(VcpuOp::try_from(10), Ok(VcpuOp::RegisterVcpuInfo));
    assert_eq!(VcpuOp::try_from(5), Ok(VcpuOp::RegisterRunstateMemoryArea));
    assert_eq!(HvmOp::try_from(1), Ok(HvmOp::GetParam));
    assert_eq!(HvmParam::try_from(18), Ok(HvmParam::ConsoleEvtchn));
    assert_eq!(HvmParam::try_from(0), Err(0));
    for (n, op) in [
        (0, EvtchnOp::BindInterdomain),
        (3, EvtchnOp::Close),
        (4, EvtchnOp::Send),
        (5, EvtchnOp::Status),
        (6, EvtchnOp::AllocUnbound),
        (8, EvtchnOp::BindVcpu),
        (9, EvtchnOp::Unmask),
        (11, EvtchnOp::InitControl),
    ] {
        assert_eq!(EvtchnOp::try_from(n), Ok(op));
    }
    assert_eq!(EvtchnOp::try_from(1), Err(1), "bind_virq is not offered");
    for (n, op) in [
        (0, GnttabOp::MapGrantRef),
        (1, GnttabOp::UnmapGrantRef),
        (5, GnttabOp::Copy),
        (6, GnttabOp::QuerySize),
        (8, GnttabOp::SetVersion),
    ] {
        assert_eq!(GnttabOp::try_from(n), Ok(op));
    }
    assert_eq!(GnttabOp::try_from(2), Err(2));
    assert_eq!(XenVersionOp::try_from(6), Ok(XenVersionOp::GetFeatures));
    assert_eq!(ConsoleIoOp::try_from(0), Ok(ConsoleIoOp::Write));
    assert_eq!(ConsoleIoOp::try_from(2), Err(2));
    assert_eq!(XsType::try_from(15), Ok(XsType::WatchEvent));
    assert_eq!(XsType::try_from(20), Err(20), "20 was XS_RESTRICT, removed");
    assert_eq!(XsType::try_from(XS_INVALID), Err(XS_INVALID));
}

#[test]
fn errno_returns_are_negated() {
    assert_eq!(XenErrno::ENOSYS.to_ret(), (-38i64) as u64);
    assert_eq!(XenErrno::EFAULT.to_ret(), 0xFFFF_FFFF_FFFF_FFF2);
    assert_eq!(
        XenErrno::from_ret(XenErrno::EINVAL.to_ret()),
        Some(XenErrno::EINVAL)
    );
    assert_eq!(XenErrno::from_ret(0), None);
    assert_eq!(XenErrno::from_ret(5), None);
    assert_eq!(XenErrno::from_ret(i64::MIN as u64), None);
    assert_eq!(XenErrno::try_from(11), Ok(XenErrno::EAGAIN));
    assert_eq!(XenErrno::try_from(10), Err(10));
    for e in XenErrno::ALL {
        assert_eq!(XenErrno::try_from(e as i64), Ok(e));
    }
}

#[test]
fn structs_read_from_guest_bytes() {
    // A map request as a little-endian guest lays it out.
    let mut raw = [0u8; 32];
    raw[0..8].copy_from_slice(&0x4123_4000u64.to_le_bytes());
    raw[8..12].copy_from_slice(&(gntmap::HOST_MAP | gntmap::READONLY).to_le_bytes());
    raw[12..16].copy_from_slice(&77u32.to_le_bytes());
    raw[16..18].copy_from_slice(&3u16.to_le_bytes());
    let m = GnttabMapGrantRef::read_from_bytes(&raw).unwrap();
    assert_eq!(m.host_addr, 0x4123_4000);
    assert_eq!(m.flags, gntmap::HOST_MAP | gntmap::READONLY);
    assert_eq!((m.gref, m.dom, m.status), (77, 3, gntst::OKAY));
    assert!(GnttabMapGrantRef::read_from_bytes(&raw[..31]).is_err());

    let mut copy = GnttabCopy::new_zeroed();
    copy.source.u = 0xdead_0000_0000_0009;
    assert_eq!(copy.source.gref(), 9);
    copy.flags = gntcopy::SOURCE_GREF;
    let back = GnttabCopy::read_from_bytes(copy.as_bytes()).unwrap();
    assert_eq!(back, copy);

    let entry = GrantEntryV1::read_from_bytes(&[0x05, 0x00, 0x01, 0x00, 0x10, 0, 0, 0]).unwrap();
    assert_eq!(entry.flags & gtf::TYPE_MASK, gtf::PERMIT_ACCESS);
    assert_ne!(entry.flags & gtf::READONLY, 0);
    assert_eq!((entry.domid, entry.frame), (1, 0x10));
    assert_eq!(GRANT_ENTRIES_PER_FRAME, 512);
}

#[test]
fn evtchn_status_union() {
    let mut s = EvtchnStatus::new_zeroed();
    s.set_interdomain(5, 12);
    assert_eq!((s.remote_dom(), s.remote_port()), (5, 12));
    // C places the union's domid at byte 16 and the interdomain port at byte 20.
    assert_eq!(&s.as_bytes()[16..24], &[5, 0, 0, 0, 12, 0, 0, 0]);
}

#[test]
fn shared_pages_fit_and_zero() {
    assert!(core::mem::size_of::<SharedInfo>() <= 4096);
    assert!(core::mem::size_of::<XenstoreDomainInterface>() <= 4096);
    assert!(core::mem::size_of::<XenconsInterface>() <= 4096);
    assert_eq!(EVTCHN_2L_NR_CHANNELS, 4096);
    let page = [0u8; 4096];
    let (si, _) = SharedInfo::read_from_prefix(&page).unwrap();
    assert_eq!(si.vcpu_info[0].evtchn_upcall_pending, 0);
    let (cons, _) = XenconsInterface::read_from_prefix(&page).unwrap();
    assert_eq!(cons.connection, XENCONSOLE_CONNECTED);
    let hdr = XsdSockmsg {
        ty: XsType::Read as u32,
        req_id: 1,
        tx_id: 0,
        len: 6,
    };
    assert_eq!(
        hdr.as_bytes(),
        &[2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0]
    );
}

#[test]
fn xenstore_framing_round_trips() {
    use ring::{xs_message, xs_reply, xs_string, XsReply, XsType, XsdSockmsg};
    let m = xs_message(XsType::Read, 7, 0, &xs_string(b"name"));
    let h = XsdSockmsg::decode(&m).unwrap();
    assert_eq!(
        (h.ty, h.req_id, h.tx_id, h.len),
        (XsType::Read as u32, 7, 0, 5)
    );
    assert_eq!(XsdSockmsg::decode(&m[..15]), None);
    let reply = xs_message(XsType::Read, 7, 0, b"rtos");
    assert_eq!(xs_reply(&reply[..18], 7, XsType::Read), XsReply::Partial);
    assert_eq!(xs_reply(&reply, 7, XsType::Read), XsReply::Ok(b"rtos"));
    assert_eq!(xs_reply(&reply, 8, XsType::Read), XsReply::Unexpected);
    assert_eq!(xs_reply(&reply, 7, XsType::Write), XsReply::Unexpected);
    let err = xs_message(XsType::Error, 7, 0, &xs_string(b"EACCES"));
    assert_eq!(xs_reply(&err, 7, XsType::Read), XsReply::Error(b"EACCES"));
    // A hostile length never reads past what arrived.
    let mut huge = xs_message(XsType::Read, 7, 0, b"x");
    huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(xs_reply(&huge, 7, XsType::Read), XsReply::Partial);
}
