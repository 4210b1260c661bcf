//! Host tests of the scheduler, periodic jobs and synchronisation primitives. Each test
//! plays the shell: it calls a kernel entry point as the running thread, then `schedule`.

use super::*;

fn run(k: &mut Kernel, now: u64) -> Tid {
    k.schedule(now);
    k.current()
}

fn spec(period: u64, deadline: u64, budget: u64) -> PeriodicSpec {
    PeriodicSpec {
        period,
        deadline,
        budget,
    }
}

#[test]
fn highest_priority_runs_fifo_within_priority() {
    let mut k = Kernel::new(0);
    let a = k.spawn("a", 5).unwrap();
    let b = k.spawn("b", 9).unwrap();
    let c = k.spawn("c", 5).unwrap();
    assert_eq!(k.schedule(0), Some((IDLE, b)));
    k.sleep_until(100);
    assert_eq!(run(&mut k, 1), a);
    // Equal priority does not preempt; yielding goes to the back.
    assert_eq!(run(&mut k, 2), a);
    k.yield_now();
    assert_eq!(run(&mut k, 3), c);
    k.sleep_until(50);
    assert_eq!(run(&mut k, 4), a);
    k.sleep_until(60);
    assert_eq!(run(&mut k, 5), IDLE);
    assert_eq!(k.next_event(), Some(50));
}

#[test]
fn wakeup_preempts_lower_priority_and_resumes_it_first() {
    let mut k = Kernel::new(0);
    let hi = k.spawn("hi", 10).unwrap();
    let lo1 = k.spawn("lo1", 3).unwrap();
    let lo2 = k.spawn("lo2", 3).unwrap();
    assert_eq!(run(&mut k, 0), hi);
    k.sleep_until(100);
    assert_eq!(run(&mut k, 10), lo1);
    k.tick(99);
    assert_eq!(run(&mut k, 99), lo1, "not due yet");
    k.tick(100);
    assert_eq!(k.schedule(100), Some((lo1, hi)));
    assert_eq!(k.take_wake(hi), Some(Wake::Ok));
    k.sleep_until(1000);
    // The preempted thread keeps its place ahead of its equal-priority peer.
    assert_eq!(run(&mut k, 101), lo1);
    assert_eq!(k.thread(lo2).unwrap().runs, 0);
    assert_eq!(k.thread(lo1).unwrap().cpu_time, 90);
}

#[test]
fn periodic_releases_and_deadline_miss() {
    let mut k = Kernel::new(0);
    let t = k
        .spawn_periodic("ctl", 8, spec(1000, 500, 400), 1000)
        .unwrap();
    assert_eq!(run(&mut k, 0), IDLE);
    assert_eq!(k.next_event(), Some(1000));
    k.tick(1003);
    assert_eq!(run(&mut k, 1003), t);
    assert_eq!(k.job_release(), Some(1000));
    assert_eq!(k.job_done(1200), Ok(true));
    assert_eq!(run(&mut k, 1200), IDLE);
    // Second job: blocked on a semaphore past its deadline (not running, so no overrun).
    k.tick(2000);
    assert_eq!(run(&mut k, 2000), t);
    let s = k.sem_create(0, 1);
    assert_eq!(k.sem_take(s, None), Ok(Op::Blocked));
    assert_eq!(run(&mut k, 2100), IDLE);
    k.sem_give(s).unwrap();
    assert_eq!(run(&mut k, 2700), t);
    assert_eq!(k.job_done(2750), Ok(false));
    let j = k.thread(t).unwrap().jobs().unwrap();
    assert_eq!(
        (j.releases, j.completed, j.misses, j.overruns),
        (2, 2, 1, 0)
    );
    assert_eq!(j.max_response, 750);
    assert_eq!(k.next_event(), Some(3000));
}

#[test]
fn budget_overrun_is_detected_and_enforced() {
    let mut k = Kernel::new(0);
    let t = k
        .spawn_periodic("hog", 8, spec(1000, 1000, 300), 1000)
        .unwrap();
    let lo = k.spawn("lo", 2).unwrap();
    assert_eq!(run(&mut k, 0), lo);
    k.tick(1000);
    assert_eq!(run(&mut k, 1000), t);
    // Tick-less: the next interrupt is the budget's end.
    assert_eq!(k.next_event(), Some(1300));
    k.tick(1300);
    assert_eq!(k.thread(t).unwrap().state, State::Suspended);
    assert_eq!(
        run(&mut k, 1300),
        lo,
        "the overrunning job stops, lower priority runs"
    );
    let j = k.thread(t).unwrap().jobs().unwrap();
    assert_eq!((j.overruns, j.misses), (1, 1));
    // Next release: a fresh budget.
    k.tick(2000);
    assert_eq!(run(&mut k, 2000), t);
    assert_eq!(k.next_event(), Some(2300));
    assert_eq!(k.job_done(2100), Ok(true));
    assert_eq!(k.thread(t).unwrap().jobs().unwrap().overruns, 1);
}

#[test]
fn budget_counts_only_time_running() {
    let mut k = Kernel::new(0);
    let t = k.spawn_periodic("p", 5, spec(1000, 1000, 300), 0).unwrap();
    let hi = k.spawn("hi", 9).unwrap();
    k.tick(0);
    assert_eq!(run(&mut k, 0), hi);
    k.sleep_until(250);
    assert_eq!(run(&mut k, 0), t);
    k.tick(200);
    assert_eq!(
        k.next_event(),
        Some(250),
        "hi's wake-up comes before the budget end"
    );
    k.tick(250);
    assert_eq!(run(&mut k, 250), hi, "preempted after 250 of its 300");
    k.sleep_until(5000);
    assert_eq!(run(&mut k, 260), t);
    assert_eq!(
        k.next_event(),
        Some(310),
        "the time hi ran is not charged to t"
    );
}

#[test]
fn bad_specs_are_refused() {
    let mut k = Kernel::new(0);
    assert_eq!(
        k.spawn_periodic("x", 1, spec(100, 200, 10), 0),
        Err(Error::BadSpec)
    );
    assert_eq!(
        k.spawn_periodic("x", 1, spec(100, 100, 0), 0),
        Err(Error::BadSpec)
    );
    assert_eq!(k.job_done(0), Err(Error::NotPeriodic));
}

#[test]
fn priority_inheritance() {
    let mut k = Kernel::new(0);
    let m = k.mutex_create();
    let lo = k.spawn("lo", 2).unwrap();
    assert_eq!(run(&mut k, 0), lo);
    assert_eq!(k.mutex_lock(m), Ok(Op::Done(())));
    let mid = k.spawn("mid", 5).unwrap();
    let hi = k.spawn("hi", 9).unwrap();
    assert_eq!(run(&mut k, 1), hi);
    assert_eq!(k.mutex_lock(m), Ok(Op::Blocked));
    // Without inheritance `mid` would run now and starve `hi`.
    assert_eq!(k.thread(lo).unwrap().prio, 9);
    assert_eq!(run(&mut k, 2), lo);
    assert_eq!(k.mutex_unlock(m), Ok(()));
    assert_eq!(k.thread(lo).unwrap().prio, 2);
    assert_eq!(k.mutex_owner(m), Some(hi));
    assert_eq!(run(&mut k, 3), hi);
    assert_eq!(k.mutex_unlock(m), Ok(()));
    k.sleep_until(100);
    assert_eq!(run(&mut k, 4), mid);
    assert_eq!(k.mutex_unlock(m), Err(Error::NotOwner));
}

#[test]
fn transitive_inheritance_and_deadlock_refusal() {
    let mut k = Kernel::new(0);
    let (m1, m2) = (k.mutex_create(), k.mutex_create());
    let a = k.spawn("a", 1).unwrap();
    assert_eq!(run(&mut k, 0), a);
    assert_eq!(k.mutex_lock(m1), Ok(Op::Done(())));
    let b = k.spawn("b", 4).unwrap();
    assert_eq!(run(&mut k, 0), b);
    assert_eq!(k.mutex_lock(m2), Ok(Op::Done(())));
    assert_eq!(k.mutex_lock(m2), Err(Error::WouldDeadlock));
    assert_eq!(k.mutex_lock(m1), Ok(Op::Blocked)); // b waits for a
    assert_eq!(k.thread(a).unwrap().prio, 4);
    let c = k.spawn("c", 7).unwrap();
    assert_eq!(run(&mut k, 0), c);
    assert_eq!(k.mutex_lock(m2), Ok(Op::Blocked)); // c waits for b, which waits for a
    assert_eq!(k.thread(b).unwrap().prio, 7);
    assert_eq!(k.thread(a).unwrap().prio, 7);
    assert_eq!(run(&mut k, 0), a);
    // a closing the cycle a -> m2 -> b -> m1 -> a is refused.
    assert_eq!(k.mutex_lock(m2), Err(Error::WouldDeadlock));
    assert_eq!(k.mutex_unlock(m1), Ok(()));
    assert_eq!(k.thread(a).unwrap().prio, 1);
    assert_eq!(run(&mut k, 0), b);
    assert_eq!(k.thread(b).unwrap().prio, 7);
    assert_eq!(k.mutex_unlock(m2), Ok(()));
    assert_eq!(k.thread(b).unwrap().prio, 4);
    assert_eq!(run(&mut k, 0), c);
}

#[test]
fn semaphore_timeout_and_isr_give() {
    let mut k = Kernel::new(0);
    let s = k.sem_create(1, 2);
    let t = k.spawn("t", 3).unwrap();
    assert_eq!(run(&mut k, 0), t);
    assert_eq!(k.sem_take(s, None), Ok(Op::Done(())));
    assert_eq!(k.sem_take(s, Some(50)), Ok(Op::Blocked));
    assert_eq!(run(&mut k, 0), IDLE);
    k.tick(50);
    assert_eq!(run(&mut k, 50), t);
    assert_eq!(k.take_wake(t), Some(Wake::Timeout));
    assert_eq!(k.sem_take(s, Some(500)), Ok(Op::Blocked));
    assert_eq!(run(&mut k, 60), IDLE);
    // From an interrupt handler: wakes the waiter; its timeout is cancelled.
    k.sem_give(s).unwrap();
    assert_eq!(k.next_event(), None);
    assert_eq!(run(&mut k, 70), t);
    assert_eq!(k.take_wake(t), Some(Wake::Ok));
    k.sem_give(s).unwrap();
    k.sem_give(s).unwrap();
    assert_eq!(k.sem_give(s), Err(Error::Full));
    assert_eq!(k.sem_count(s), Some(2));
    assert_eq!(k.sem_give(7), Err(Error::NoSuchObject));
}

#[test]
fn message_queue_blocking_both_ways() {
    let mut k = Kernel::new(0);
    let q = k.queue_create(1);
    let rx = k.spawn("rx", 6).unwrap();
    let tx = k.spawn("tx", 4).unwrap();
    assert_eq!(run(&mut k, 0), rx);
    assert_eq!(k.queue_recv(q, None), Ok(Op::Blocked));
    assert_eq!(run(&mut k, 0), tx);
    // Direct hand-off to the waiting receiver, which preempts.
    assert_eq!(k.queue_send(q, 11, None), Ok(Op::Done(())));
    assert_eq!(run(&mut k, 0), rx);
    assert_eq!(k.take_msg(rx), Some(11));
    k.sleep_until(10);
    assert_eq!(run(&mut k, 0), tx);
    assert_eq!(k.queue_send(q, 12, None), Ok(Op::Done(())));
    assert_eq!(k.queue_send(q, 13, None), Ok(Op::Blocked));
    assert_eq!(k.queue_try_send(q, 14), Err(Error::Full));
    assert_eq!(run(&mut k, 5), IDLE);
    k.tick(10);
    assert_eq!(run(&mut k, 10), rx);
    assert_eq!(k.queue_recv(q, None), Ok(Op::Done(12)));
    // Receiving made room: the blocked sender's message moved in and it woke.
    assert_eq!(k.queue_len(q), Some(1));
    assert_eq!(k.take_wake(tx), Some(Wake::Ok));
    assert_eq!(k.queue_recv(q, None), Ok(Op::Done(13)));
    assert_eq!(k.queue_recv(q, Some(20)), Ok(Op::Blocked));
    assert_eq!(run(&mut k, 11), tx);
    k.sleep_until(1000);
    k.tick(20);
    assert_eq!(run(&mut k, 20), rx);
    assert_eq!(k.take_wake(rx), Some(Wake::Timeout));
    assert_eq!(k.take_msg(rx), None);
}

#[test]
fn notification_from_isr() {
    let mut k = Kernel::new(0);
    let w = k.spawn("worker", 7).unwrap();
    assert_eq!(run(&mut k, 0), w);
    assert_eq!(k.wait_notify(None), Op::Blocked);
    assert_eq!(run(&mut k, 0), IDLE);
    k.notify(w, 0b10).unwrap();
    k.notify(w, 0b01).unwrap();
    assert_eq!(run(&mut k, 1), w);
    assert_eq!(k.take_wake(w), Some(Wake::Ok));
    assert_eq!(k.take_notify(w), 0b11);
    k.notify(w, 4).unwrap();
    assert_eq!(k.wait_notify(None), Op::Done(4));
    assert_eq!(k.notify(99, 1), Err(Error::NoSuchObject));
}

#[test]
fn release_while_job_runs_counts_one_miss() {
    let mut k = Kernel::new(0);
    let t = k.spawn_periodic("slow", 5, spec(100, 100, 100), 0).unwrap();
    let hi = k.spawn("hi", 9).unwrap();
    k.tick(0);
    assert_eq!(run(&mut k, 0), hi);
    k.sleep_until(250);
    k.tick(100);
    k.tick(200);
    k.tick(250);
    assert_eq!(run(&mut k, 250), hi);
    k.sleep_until(10_000);
    assert_eq!(run(&mut k, 250), t);
    assert_eq!(k.job_done(260), Ok(false));
    let j = k.thread(t).unwrap().jobs().unwrap();
    assert_eq!((j.releases, j.completed, j.misses, j.skipped), (3, 1, 1, 2));
}
