//! Our own domains speak xenstore too: the runtime's client reads this domain's home nodes
//! (written by dom0's xenstore), writes and reads back a node, and gets a clean error for a
//! node it may not read.

use super::Ctx;
use alloc::format;
use bulkhead_runtime::println;
use bulkhead_runtime::xenstore::{XsClient, XsError};

/// Runs the xenstore round trips.
pub fn run(cx: &mut Ctx, name: &str) {
    let mut xs = match XsClient::open() {
        Ok(c) => c,
        Err(e) => {
            let line =
                cx.r.truth("xenstore open", false, format!("{e:?}"), "a client");
            println!("{line}");
            return;
        }
    };
    let got = xs
        .read("name")
        .map(|v| alloc::string::String::from_utf8_lossy(&v).into_owned());
    let line = cx.r.truth(
        "xenstore read name",
        got.as_deref() == Ok(name),
        format!("{got:?}"),
        name,
    );
    println!("{line}");
    let wrote = xs.write("data/probe", b"42");
    let back = xs.read("data/probe");
    let line = cx.r.truth(
        "xenstore write then read data/probe",
        wrote.is_ok() && back.as_deref() == Ok(&b"42"[..]),
        format!("{wrote:?} {back:?}"),
        "Ok(()) Ok([52, 50])",
    );
    println!("{line}");
    let cpus = xs.directory("cpu");
    let line = cx.r.truth(
        "xenstore directory cpu",
        cpus.as_ref().is_ok_and(|c| c.iter().any(|n| n == "0")),
        format!("{cpus:?}"),
        "[\"0\", ...]",
    );
    println!("{line}");
    let denied = xs.read("/local/domain/0/name");
    let line = cx.r.truth(
        "xenstore read of another domain's node refused",
        matches!(&denied, Err(XsError::Store(e)) if e == "EACCES" || e == "ENOENT"),
        format!("{denied:?}"),
        "EACCES",
    );
    println!("{line}");
}
