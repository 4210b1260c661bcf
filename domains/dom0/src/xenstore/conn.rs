//! One client connection: its partial input, queued output, watches and transactions.
//!
//! [`Conn::held`] is the heap the connection holds beyond its nodes, charged to the
//! domain's memory quota (see `quota.rs`).

use super::quota::ENTRY_OVERHEAD;
use super::txn::Transaction;
use super::watch::Watch;
use super::wire::{Assembler, HEADER_LEN};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use protocol::xen::structs::DomId;

/// One queued message.
#[derive(Debug)]
struct Queued {
    bytes: Vec<u8>,
    /// Bytes already handed to the ring.
    sent: usize,
    event: bool,
}

/// Messages waiting for room in the connection's response ring, in order.
#[derive(Debug, Default)]
pub struct Outbox {
    queue: VecDeque<Queued>,
    /// Unsent bytes over all messages.
    bytes: usize,
    /// Replies not yet fully sent.
    replies: u32,
    /// Heap held by the queue: every queued message whole, plus its slot.
    held: usize,
    /// Watch events dropped because the queue was over its limit.
    pub dropped_events: u64,
    /// For each watch that lost an event, one event on the watch's own path, queued as
    /// soon as the queue has room again ([`Outbox::pay_owed`]): the watcher learns that
    /// something under it changed and looks again, rather than never hearing of it.
    owed: Vec<Vec<u8>>,
}

impl Outbox {
    /// Queues a reply (never dropped; bounded by the outstanding-request limit).
    pub fn push_reply(&mut self, bytes: Vec<u8>) {
        self.replies += 1;
        self.push(bytes, false);
    }

    /// Queues a watch event unless an identical one is already queued (as xenstored, this
    /// does not apply to `@` special events), the queue holds more than `limit` bytes
    /// (0 = no limit), or it would cost more than `room` bytes of the domain's memory quota.
    /// A dropped event is counted and `catch_up(&bytes)` (the same watch's event on its own
    /// path, made only then) is owed instead, once per watch, if the quota has room for it.
    pub fn push_event(
        &mut self,
        bytes: Vec<u8>,
        limit: usize,
        room: usize,
        catch_up: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
    ) {
        let special = bytes.get(HEADER_LEN) == Some(&b'@');
        if !special && self.queue.iter().any(|q| q.event && q.bytes == bytes) {
            return;
        }
        if (limit != 0 && self.bytes + bytes.len() > limit) || cost(&bytes) > room {
            self.dropped_events += 1;
            let Some(catch_up) = catch_up(&bytes).filter(|c| cost(c) <= room) else {
                return;
            };
            if !self.owed.contains(&catch_up) {
                self.held += cost(&catch_up);
                self.owed.push(catch_up);
            }
            return;
        }
        self.push(bytes, true);
    }

    /// Queues the owed catch-up events that fit under `limit` (0 = no limit), oldest
    /// first; each is already charged. One identical to a queued event is dropped: that
    /// event tells the watcher the same.
    pub fn pay_owed(&mut self, limit: usize) {
        while let Some(first) = self.owed.first() {
            if limit != 0 && self.bytes + first.len() > limit {
                return;
            }
            let bytes = self.owed.remove(0);
            self.held -= cost(&bytes);
            if !self.queue.iter().any(|q| q.event && q.bytes == bytes) {
                self.push(bytes, true);
            }
        }
    }

    fn push(&mut self, bytes: Vec<u8>, event: bool) {
        self.bytes += bytes.len();
        self.held += cost(&bytes);
        self.queue.push_back(Queued {
            bytes,
            sent: 0,
            event,
        });
    }

    /// The unsent bytes of the first queued message (empty if nothing is queued).
    pub fn head(&self) -> &[u8] {
        self.queue.front().map_or(&[], |q| &q.bytes[q.sent..])
    }

    /// Marks `n` bytes as handed to the ring, across message boundaries.
    pub fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let Some(q) = self.queue.front_mut() else {
                return;
            };
            let step = n.min(q.bytes.len() - q.sent);
            q.sent += step;
            self.bytes -= step;
            n -= step;
            if q.sent == q.bytes.len() {
                if !q.event {
                    self.replies -= 1;
                }
                self.held -= cost(&q.bytes);
                self.queue.pop_front();
            }
        }
    }

    /// Removes and returns up to `max` unsent bytes.
    pub fn take(&mut self, max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while out.len() < max {
            let head = self.head();
            if head.is_empty() {
                break;
            }
            let n = head.len().min(max - out.len());
            out.extend_from_slice(&head[..n]);
            self.advance(n);
        }
        out
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Replies not yet fully sent.
    pub fn replies(&self) -> u32 {
        self.replies
    }

    /// Heap held by queued messages.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Drops everything queued and owed (counters are kept).
    pub fn clear(&mut self) {
        self.owed.clear();
        self.queue.clear();
        self.bytes = 0;
        self.replies = 0;
        self.held = 0;
    }
}

/// Heap one queued message costs.
fn cost(bytes: &[u8]) -> usize {
    bytes.len() + ENTRY_OVERHEAD
}

/// A client of the store: a domain's ring, or dom0's in-process user.
#[derive(Debug)]
pub struct Conn {
    /// Partial request bytes.
    pub input: Assembler,
    /// Replies and events not yet in the ring.
    pub out: Outbox,
    /// Registered watches, in registration order (change only through [`Conn::add_watch`],
    /// [`Conn::remove_watch`] and [`Conn::clear_watches`], which keep `watch_bytes`).
    pub watches: Vec<Watch>,
    /// Heap held by `watches`.
    watch_bytes: usize,
    /// Open transactions by id (never 0).
    pub txs: BTreeMap<u32, Transaction>,
    /// Where the search for the next transaction id starts.
    pub next_tx: u32,
    /// Shut down after a protocol violation: input is ignored until a reset.
    pub faulted: bool,
    /// The connection's domain.
    pub domid: DomId,
}

impl Conn {
    /// A fresh connection for `domid`.
    pub fn new(domid: DomId) -> Self {
        Self {
            input: Assembler::default(),
            out: Outbox::default(),
            watches: Vec::new(),
            watch_bytes: 0,
            txs: BTreeMap::new(),
            next_tx: 1,
            faulted: false,
            domid,
        }
    }

    /// Back to the freshly connected state: no input, output, watches or transactions.
    pub fn reset(&mut self) {
        self.input.clear();
        self.out.clear();
        self.clear_watches();
        self.txs.clear();
        self.faulted = false;
    }

    /// Heap held on the domain's behalf beyond its nodes: queued output, watches and open
    /// transactions.
    pub fn held(&self) -> usize {
        self.out.held() + self.watch_bytes + self.txs.values().map(Transaction::held).sum::<usize>()
    }

    /// Heap one watch costs.
    pub fn watch_cost(path: &str, token: &[u8]) -> usize {
        path.len() + token.len() + core::mem::size_of::<Watch>() + ENTRY_OVERHEAD
    }

    /// Registers `w`.
    pub fn add_watch(&mut self, w: Watch) {
        self.watch_bytes += Self::watch_cost(&w.path, &w.token);
        self.watches.push(w);
    }

    /// Removes the watch at index `at`.
    pub fn remove_watch(&mut self, at: usize) {
        let w = self.watches.remove(at);
        self.watch_bytes -= Self::watch_cost(&w.path, &w.token);
    }

    /// Removes every watch.
    pub fn clear_watches(&mut self) {
        self.watches.clear();
        self.watch_bytes = 0;
    }

    /// An unused nonzero transaction id.
    pub fn allocate_tx_id(&mut self) -> u32 {
        let mut id = self.next_tx;
        while id == 0 || self.txs.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next_tx = id.wrapping_add(1);
        id
    }
}
