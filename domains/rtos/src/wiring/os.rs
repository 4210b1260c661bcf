//! The kernel's wiring: the global kernel, thread creation, blocking-call wrappers, the
//! timer interrupt (latency recording) and the post-IRQ reschedule, and `printk`.

use alloc::boxed::Box;
use alloc::vec::Vec;
use bulkhead_runtime::{arch, gic, irq, threads, timer};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use protocol::layout::VTIMER_PPI;
use rtos::kernel::{Error, Kernel, Op, PeriodicSpec, Tid, Wake};
use rtos::log::{LineBuf, LogRing};
use rtos::stats::{Samples, Summary};

/// Stack of every thread.
const STACK_BYTES: usize = 16 * 1024;
/// SGI the demo uses as a stand-in device interrupt (ISR-to-thread notification).
pub const DEMO_SGI: u32 = 2;
const NOT_ARMED: u64 = u64::MAX;

static KERNEL: spin::Mutex<Option<Kernel>> = spin::Mutex::new(None);
/// A thread's code.
type Body = Box<dyn Fn() + Send>;
/// Bodies by tid, taken by each thread when it first runs.
static BODIES: spin::Mutex<Vec<Option<Body>>> = spin::Mutex::new(Vec::new());
/// The deadline the virtual timer is armed for.
static ARMED: AtomicU64 = AtomicU64::new(NOT_ARMED);
static LOG: spin::Mutex<Option<LogRing>> = spin::Mutex::new(None);
static KLOGD: AtomicUsize = AtomicUsize::new(usize::MAX);
static SGI_TARGET: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Timer-interrupt figures (always on) and latency samples (while the benchmark runs).
pub struct IrqStats {
    /// Timer interrupts taken.
    pub timer_irqs: u64,
    /// Running latency summary (ticks).
    pub n: u64,
    sum: u64,
    min: u64,
    max: u64,
    /// Raw latency samples while recording.
    pub samples: Option<Samples>,
}

pub static IRQ: spin::Mutex<IrqStats> = spin::Mutex::new(IrqStats {
    timer_irqs: 0,
    n: 0,
    sum: 0,
    min: u64::MAX,
    max: 0,
    samples: None,
});
/// Whether interrupt latencies go into `IRQ.samples`.
pub static RECORDING: AtomicBool = AtomicBool::new(false);

impl IrqStats {
    /// The running latency summary (p99 unknown: reported as the max).
    pub fn summary(&self) -> Summary {
        if self.n == 0 {
            return Summary::default();
        }
        Summary {
            n: self.n,
            min: self.min,
            avg: self.sum / self.n,
            max: self.max,
            p99: self.max,
        }
    }
}

/// Runs `f` on the kernel with IRQs masked, without rescheduling (interrupt handlers).
pub fn with_kernel<R>(f: impl FnOnce(&mut Kernel, u64) -> R) -> R {
    irq::without_interrupts(|| {
        let now = timer::now();
        let mut g = KERNEL.lock();
        f(g.as_mut().expect("kernel initialised"), now)
    })
}

/// A kernel call from a thread: runs `f`, then reschedules (switching away if the caller
/// blocked or was outranked; this returns once it runs again).
pub fn kcall<R>(f: impl FnOnce(&mut Kernel, u64) -> R) -> R {
    irq::without_interrupts(|| {
        let r = with_kernel(f);
        reschedule();
        r
    })
}

/// Picks the next thread, arms the timer for the next kernel event and switches. IRQs
/// must be masked. Always rewrites CNTV_CVAL/CTL (the microvisor expects it after a timer
/// interrupt).
fn reschedule() {
    let now = timer::now();
    let (switch, next) = {
        let mut g = KERNEL.lock();
        let k = g.as_mut().expect("kernel initialised");
        let s = k.schedule(now);
        (s, k.next_event())
    };
    match next {
        Some(d) => {
            ARMED.store(d, Ordering::Relaxed);
            timer::set_deadline(d);
        }
        None => {
            ARMED.store(NOT_ARMED, Ordering::Relaxed);
            timer::stop();
        }
    }
    if let Some((_, to)) = switch {
        threads::switch_to(to);
    }
}

fn on_irq(intid: u32) {
    // Read the counter first: this is the latency measurement point.
    let now = timer::now();
    #[cfg(feature = "native")]
    if bulkhead_runtime::current_vcpu() != 0 {
        return super::load::on_irq(intid);
    }
    match intid {
        VTIMER_PPI => {
            let armed = ARMED.load(Ordering::Relaxed);
            {
                let mut s = IRQ.lock();
                s.timer_irqs += 1;
                if armed != NOT_ARMED && now >= armed {
                    let lat = now - armed;
                    note_late(armed, lat);
                    s.n += 1;
                    s.sum += lat;
                    s.min = s.min.min(lat);
                    s.max = s.max.max(lat);
                    if RECORDING.load(Ordering::Relaxed) {
                        if let Some(v) = s.samples.as_mut() {
                            v.push(lat);
                        }
                    }
                }
            }
            // Rearmed by the post-IRQ reschedule; until then nothing is armed.
            ARMED.store(NOT_ARMED, Ordering::Relaxed);
            timer::stop();
            let mut g = KERNEL.lock();
            if let Some(k) = g.as_mut() {
                k.tick(now);
            }
        }
        DEMO_SGI => {
            let t = SGI_TARGET.load(Ordering::Relaxed);
            if t != usize::MAX {
                let mut g = KERNEL.lock();
                if let Some(k) = g.as_mut() {
                    let _ = k.notify(t, 1);
                }
            }
        }
        _ => {}
    }
}

/// A timer interrupt that came late: when it was due, how late, and where it found us. The
/// `late-irq` marker reports the worst of each second, so that a miss can be told apart:
/// found idle, the interrupt was held outside this domain (the microvisor's exit path or
/// the machine; README, Status); found elsewhere, `elr` says which of our own
/// IRQ-masked sections or calls held it.
#[derive(Clone, Copy, Debug)]
pub struct LateIrq {
    /// Deadline the timer was armed for (counter ticks).
    pub armed: u64,
    /// Counter ticks between the deadline and the handler.
    pub lat: u64,
    /// The interrupted PC.
    pub elr: u64,
    /// Whether it found the CPU idle: the idle loop's WFI ended after the deadline (what
    /// kept the interrupt was then outside this domain: the microvisor or the machine).
    pub idle: bool,
    /// How many late interrupts since the last report.
    pub count: u64,
}

/// The worst late timer interrupt since the last [`take_late_irq`].
static LATE: spin::Mutex<Option<LateIrq>> = spin::Mutex::new(None);
/// When the idle loop's WFI last returned.
static WFI_EXIT: AtomicU64 = AtomicU64::new(0);
/// Latency above which a timer interrupt is noted (µs).
const LATE_NOTE_US: u64 = 200;

fn note_late(armed: u64, lat: u64) {
    if lat < us_to_ticks(LATE_NOTE_US) {
        return;
    }
    let rec = LateIrq {
        armed,
        lat,
        // Still the interrupted PC: nothing between the vector and here takes an exception.
        elr: arch::elr(),
        idle: WFI_EXIT.load(Ordering::Relaxed) >= armed,
        count: 1,
    };
    let mut g = LATE.lock();
    *g = Some(match *g {
        Some(old) if old.lat >= lat => LateIrq {
            count: old.count + 1,
            ..old
        },
        Some(old) => LateIrq {
            count: old.count + 1,
            ..rec
        },
        None => rec,
    });
}

/// The worst late timer interrupt since the last call (`None`: none came late).
pub fn take_late_irq() -> Option<LateIrq> {
    irq::without_interrupts(|| LATE.lock().take())
}

/// Sets up the kernel (the caller becomes the idle thread), the GIC and the log ring.
pub fn init() {
    irq::init_primary();
    gic::enable(VTIMER_PPI);
    gic::enable(DEMO_SGI);
    irq::without_interrupts(|| {
        *KERNEL.lock() = Some(Kernel::new(timer::now()));
        *LOG.lock() = Some(LogRing::new(8 * 1024));
        BODIES.lock().push(None);
    });
    irq::set_handler(on_irq);
    irq::set_post_handler(|| {
        // Only CPU 0 runs the kernel (bare metal, others may run the load).
        if bulkhead_runtime::current_vcpu() == 0 {
            reschedule()
        }
    });
}

fn register(tid: Tid, body: Box<dyn Fn() + Send>) {
    irq::without_interrupts(|| {
        let mut b = BODIES.lock();
        while b.len() <= tid {
            b.push(None);
        }
        b[tid] = Some(body);
        threads::create(tid, STACK_BYTES, thread_main, tid);
    });
}

fn thread_main(tid: usize) -> ! {
    irq::enable_irqs();
    let body = irq::without_interrupts(|| BODIES.lock()[tid].take());
    if let Some(f) = body {
        f();
    }
    // A finished thread sleeps forever.
    loop {
        sleep_until(u64::MAX);
    }
}

/// Creates a thread at static priority `prio` running `body`.
pub fn spawn(name: &'static str, prio: u8, body: impl Fn() + Send + 'static) -> Result<Tid, Error> {
    let tid = with_kernel(|k, _| k.spawn(name, prio))?;
    register(tid, Box::new(body));
    Ok(tid)
}

/// Creates a periodic thread; `job` runs once per release (the loop and the end-of-job
/// call are done here).
pub fn spawn_periodic(
    name: &'static str,
    prio: u8,
    spec: PeriodicSpec,
    first_release: u64,
    job: impl Fn() + Send + 'static,
) -> Result<Tid, Error> {
    let tid = with_kernel(|k, _| k.spawn_periodic(name, prio, spec, first_release))?;
    register(
        tid,
        Box::new(move || loop {
            job();
            job_done();
        }),
    );
    Ok(tid)
}

/// Makes `tid` the thread the demo SGI notifies.
pub fn set_sgi_target(tid: Tid) {
    SGI_TARGET.store(tid, Ordering::Relaxed);
}

/// Counter ticks the idle loop has spent in WFI.
static IDLE_TICKS: AtomicU64 = AtomicU64::new(0);

/// Counter ticks spent idle so far (the microvisor cannot see it: our WFI is not trapped
/// on a pinned-exclusive vCPU).
pub fn idle_ticks() -> u64 {
    IDLE_TICKS.load(Ordering::Relaxed)
}

/// Enables IRQs, runs the first schedule and idles forever.
pub fn run_idle() -> ! {
    irq::enable_irqs();
    kcall(|_, _| ());
    loop {
        // IRQs masked around the WFI (it still wakes on a pending interrupt): the time is
        // taken before the interrupt is handled and perhaps switches to a thread, so only
        // time in WFI counts as idle.
        irq::without_interrupts(|| {
            let start = timer::now();
            arch::wfi();
            let end = timer::now();
            WFI_EXIT.store(end, Ordering::Relaxed);
            IDLE_TICKS.fetch_add(end.saturating_sub(start), Ordering::Relaxed);
        });
    }
}

// ---- blocking calls ------------------------------------------------------------------

/// The running thread's id.
#[allow(dead_code)] // part of the call set; the demo does not need it
pub fn current() -> Tid {
    with_kernel(|k, _| k.current())
}

/// Sleeps until the counter reaches `when`.
pub fn sleep_until(when: u64) {
    kcall(|k, _| k.sleep_until(when));
}

/// Sleeps for `us` microseconds.
pub fn sleep_us(us: u64) {
    let d = us_to_ticks(us);
    kcall(|k, now| k.sleep_until(now.saturating_add(d)));
}

/// Ends the current periodic job; returns when the next one is released.
pub fn job_done() {
    kcall(|k, now| {
        let _ = k.job_done(now);
    });
}

/// Release time of the running periodic thread's current job.
pub fn job_release() -> u64 {
    with_kernel(|k, _| k.job_release().unwrap_or(0))
}

/// Locks mutex `m` (blocks with priority inheritance).
pub fn mutex_lock(m: usize) -> Result<(), Error> {
    kcall(|k, _| k.mutex_lock(m)).map(drop)
}

/// Unlocks mutex `m` (may switch to the new owner).
pub fn mutex_unlock(m: usize) -> Result<(), Error> {
    kcall(|k, _| k.mutex_unlock(m))
}

/// Takes a unit of semaphore `s`, waiting up to `timeout_us` (forever if `None`).
pub fn sem_take(s: usize, timeout_us: Option<u64>) -> Result<Wake, Error> {
    let t = timeout_us.map(us_to_ticks);
    match kcall(|k, now| k.sem_take(s, t.map(|d| now.saturating_add(d))))? {
        Op::Done(()) => Ok(Wake::Ok),
        Op::Blocked => Ok(with_kernel(|k, _| k.take_wake(k.current())).unwrap_or(Wake::Ok)),
    }
}

/// Gives a unit of semaphore `s`.
pub fn sem_give(s: usize) -> Result<(), Error> {
    kcall(|k, _| k.sem_give(s))
}

/// Receives from queue `q` (blocks while empty).
pub fn queue_recv(q: usize) -> Result<u64, Error> {
    match kcall(|k, _| k.queue_recv(q, None))? {
        Op::Done(m) => Ok(m),
        Op::Blocked => with_kernel(|k, _| k.take_msg(k.current())).ok_or(Error::Empty),
    }
}

/// Sends to queue `q` without blocking.
pub fn queue_try_send(q: usize, msg: u64) -> Result<(), Error> {
    kcall(|k, _| k.queue_try_send(q, msg))
}

/// Waits for notification bits; returns them.
pub fn wait_notify() -> u32 {
    match kcall(|k, _| k.wait_notify(None)) {
        Op::Done(b) => b,
        Op::Blocked => with_kernel(|k, _| k.take_notify(k.current())),
    }
}

/// Raises the demo SGI on this vCPU (its handler notifies the SGI target thread).
pub fn raise_demo_sgi() {
    gic::send_sgi(DEMO_SGI, bulkhead_runtime::current_vcpu());
}

/// Counter ticks per microsecond (at least 1).
pub fn ticks_per_us() -> u64 {
    (timer::freq() / 1_000_000).max(1)
}

/// Microseconds to counter ticks.
pub fn us_to_ticks(us: u64) -> u64 {
    (u128::from(us) * u128::from(timer::freq()) / 1_000_000) as u64
}

// ---- printk --------------------------------------------------------------------------

/// Formats one log line into the ring (any context, never blocks) and wakes `klogd`.
pub fn printk_fmt(args: core::fmt::Arguments<'_>) {
    let mut line = LineBuf::<160>::new();
    let _ = line.write_fmt(args);
    irq::without_interrupts(|| {
        if let Some(r) = LOG.lock().as_mut() {
            r.push_line(line.as_bytes());
        }
        let t = KLOGD.load(Ordering::Relaxed);
        if t != usize::MAX {
            if let Some(k) = KERNEL.lock().as_mut() {
                let _ = k.notify(t, 1);
            }
        }
    });
}

/// `printk!`: log a line through the ring drained by the `klogd` thread.
#[macro_export]
macro_rules! printk {
    ($($arg:tt)*) => { $crate::wiring::os::printk_fmt(format_args!($($arg)*)) };
}

/// Starts `klogd` (lowest priority above idle): prints the ring's lines.
pub fn start_klogd() -> Result<Tid, Error> {
    let tid = spawn("klogd", 1, || loop {
        wait_notify();
        let mut buf = [0u8; 160];
        while let Some(n) = irq::without_interrupts(|| LOG.lock().as_mut()?.pop_line(&mut buf)) {
            let s = core::str::from_utf8(&buf[..n]).unwrap_or("<bad utf-8>");
            bulkhead_runtime::println!("{s}");
        }
    })?;
    KLOGD.store(tid, Ordering::Relaxed);
    Ok(tid)
}
