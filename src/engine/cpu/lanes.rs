//! Two lanes of work for one executor: the calling thread and one helper thread.
//!
//! A training step on a small machine is a chain of kernels of 20 to 200 µs each. Split
//! across a thread pool, each one pays for waking a sleeping worker (tens of µs on a
//! virtual machine), which costs about what the split saves. The helper here instead
//! spins, ready, for as long as a run lasts (and sleeps between runs), so handing it
//! half a kernel costs well under a microsecond.
//!
//! `both(a, b)` posts `b` to the helper, runs `a`, then takes `b` back and runs it too if
//! the helper has not started it (it may not be running at all on a busy machine: then
//! the caller does everything, no worse than one thread). A panic in `b` is carried
//! back to the caller.
//!
//! On a machine busy with other work the helper can also be preempted halfway through a
//! job, and the caller then waits for the scheduler (milliseconds, for a job of tens of
//! microseconds). After a few such stalls the lanes stop splitting until splitting is
//! switched on again. Whether to split at all is measured per plan (`Chooser`): two
//! lanes win on an idle machine and lose to one thread where other work holds a core.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// A wait for the helper this long means it was preempted, not just a little behind.
const STALL: std::time::Duration = std::time::Duration::from_micros(200);
/// Stalls in one run after which the rest of the run is done on one thread.
const MAX_STALLS: u32 = 3;

const IDLE: u8 = 0;
const POSTED: u8 = 1;
const RUNNING: u8 = 2;
const DONE: u8 = 3;

/// A posted job: a type-erased `&mut dyn FnMut()` living on the caller's stack, valid
/// until the caller sees `DONE` (or takes it back).
#[derive(Clone, Copy)]
struct Job(*mut (dyn FnMut() + Send));

// SAFETY: the pointee is `Send`; the pointer is only dereferenced by the one thread that
// claimed the job, while the caller waits for it.
unsafe impl Send for Job {}

struct Shared {
    state: AtomicU8,
    job: Mutex<Option<Job>>,
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    /// While set the helper spins for work; otherwise it sleeps on `wake`.
    active: AtomicBool,
    /// Stalls seen in the current run (see the module docs).
    stalls: AtomicU32,
    quit: AtomicBool,
    sleep: Mutex<()>,
    wake: Condvar,
}

/// The two lanes: the calling thread and its spinning helper (see the module docs);
/// dropping it stops the helper.
pub struct Lanes {
    shared: Arc<Shared>,
    helper: Option<JoinHandle<()>>,
}

impl Lanes {
    /// Two lanes when the rayon pool (sized by the machine, or `RAYON_NUM_THREADS`) has
    /// exactly two threads; else one (`both` runs in order), and kernels split across
    /// the pool as before: on a larger machine a medium product is worth more than two
    /// threads.
    pub fn new() -> Self {
        let shared = Arc::new(Shared {
            state: AtomicU8::new(IDLE),
            job: Mutex::new(None),
            panic: Mutex::new(None),
            active: AtomicBool::new(false),
            stalls: AtomicU32::new(0),
            quit: AtomicBool::new(false),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        });
        let helper = (rayon::current_num_threads() == 2).then(|| {
            let s = shared.clone();
            std::thread::Builder::new()
                .name("riskgrad-lane".into())
                .spawn(move || helper_loop(&s))
                .ok()
        });
        Lanes {
            shared,
            helper: helper.flatten(),
        }
    }

    /// Whether there is a helper at all (a 2-thread pool).
    pub fn available(&self) -> bool {
        self.helper.is_some()
    }

    /// Whether work is being split now (see `set_splitting`).
    pub fn two(&self) -> bool {
        self.helper.is_some() && self.shared.active.load(Ordering::Acquire)
    }

    /// Starts or stops splitting: while on, the helper spins, ready for work; while off
    /// it sleeps and `both` runs its halves in order here.
    pub fn set_splitting(&self, on: bool) {
        if self.helper.is_none() || on == self.shared.active.load(Ordering::Acquire) {
            return;
        }
        if on {
            self.shared.stalls.store(0, Ordering::Relaxed);
        }
        self.shared.active.store(on, Ordering::Release);
        if on {
            let _guard = self.shared.sleep.lock().unwrap_or_else(|p| p.into_inner());
            self.shared.wake.notify_one();
        }
    }

    /// Runs `a` here and `b` on the helper if it is free to, else here after `a`. Call it
    /// from the thread that runs the plan, not from inside `a` or `b` (one job at a time).
    pub fn both(&self, a: impl FnOnce(), b: impl FnOnce() + Send) {
        let stalled = self.shared.stalls.load(Ordering::Relaxed) >= MAX_STALLS;
        if stalled || !self.two() {
            a();
            b();
            return;
        }
        let mut b = Some(b);
        let mut call_b = || (b.take().expect("run once"))();
        let dyn_b: &mut (dyn FnMut() + Send) = &mut call_b;
        // SAFETY: the lifetime is erased to post the job; it is used only until this
        // function has seen it finished or taken it back, below, before `call_b` drops.
        let job = Job(unsafe {
            std::mem::transmute::<*mut (dyn FnMut() + Send + '_), *mut (dyn FnMut() + Send + 'static)>(
                dyn_b,
            )
        });
        *self.shared.job.lock().unwrap_or_else(|p| p.into_inner()) = Some(job);
        self.shared.state.store(POSTED, Ordering::Release);
        // `b` must be finished or taken back before this frame unwinds: catch `a`'s panic.
        let ran_a = catch_unwind(AssertUnwindSafe(a));
        if self
            .shared
            .state
            .compare_exchange(POSTED, IDLE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            // The helper never started it.
            self.shared
                .job
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Err(p) = ran_a {
                resume_unwind(p);
            }
            call_b();
            return;
        }
        let waited = std::time::Instant::now();
        let mut spins = 0u32;
        while self.shared.state.load(Ordering::Acquire) != DONE {
            spins += 1;
            if spins < 256 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        if waited.elapsed() > STALL {
            self.shared.stalls.fetch_add(1, Ordering::Relaxed);
        }
        self.shared.state.store(IDLE, Ordering::Release);
        if let Err(p) = ran_a {
            resume_unwind(p);
        }
        if let Some(p) = self
            .shared
            .panic
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            resume_unwind(p);
        }
    }
}

impl Default for Lanes {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        self.shared.quit.store(true, Ordering::Release);
        {
            let _guard = self.shared.sleep.lock().unwrap_or_else(|p| p.into_inner());
            self.shared.wake.notify_one();
        }
        if let Some(h) = self.helper.take() {
            let _ = h.join();
        }
    }
}

fn helper_loop(s: &Shared) {
    let mut spins = 0u32;
    while !s.quit.load(Ordering::Acquire) {
        if !s.active.load(Ordering::Acquire) {
            let guard = s.sleep.lock().unwrap_or_else(|p| p.into_inner());
            if !s.active.load(Ordering::Acquire) && !s.quit.load(Ordering::Acquire) {
                // Woken by `active` or `drop`; the timeout only bounds a missed wake-up.
                let _ = s
                    .wake
                    .wait_timeout(guard, std::time::Duration::from_millis(50));
            }
            continue;
        }
        if s.state
            .compare_exchange(POSTED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            spins = 0;
            let job = s.job.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(Job(f)) = job {
                // SAFETY: the poster waits until DONE before the closure goes away.
                let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*f)() }));
                if let Err(p) = result {
                    *s.panic.lock().unwrap_or_else(|p| p.into_inner()) = Some(p);
                }
            }
            s.state.store(DONE, Ordering::Release);
            continue;
        }
        spins += 1;
        if spins < 256 {
            std::hint::spin_loop();
        } else {
            // A serial stretch of the step. Yield between looks: alone on a core that
            // costs a system call per look; sharing one (with the caller, on a busy
            // machine) it hands the core over instead of spinning against it.
            std::thread::yield_now();
        }
    }
}

/// Whether a plan's steps split across the two lanes, decided by measuring both ways
/// rather than assumed: on an idle machine splitting wins, on one where other work holds
/// a core it loses to one thread, and which is the case changes as other jobs come and
/// go. So the chooser alternates: a trial of `TRIAL` steps each way, interleaved (both
/// ways see the same load), then `EXPLOIT` steps the way whose median step was shorter
/// (a median, because a preempted step is an outlier), then another trial.
#[derive(Clone, Debug, Default)]
pub struct Chooser {
    /// Step times of the current trial, one thread and split.
    trial: [Vec<f64>; 2],
    /// Steps left to run the chosen way before the next trial, and that way.
    exploit: usize,
    split: bool,
    /// Whether the step last picked belongs to a trial.
    trying: bool,
}

impl Chooser {
    const TRIAL: usize = 4;
    const EXPLOIT: usize = 40;

    /// Whether to split the next step.
    pub fn pick(&mut self) -> bool {
        self.trying = self.exploit == 0;
        if !self.trying {
            self.exploit -= 1;
            return self.split;
        }
        // Trial: split, one thread, split, ...
        self.trial[1].len() <= self.trial[0].len()
    }

    /// The time of the step just picked.
    pub fn record(&mut self, split: bool, seconds: f64) {
        if !self.trying {
            return;
        }
        self.trial[split as usize].push(seconds);
        if self.trial.iter().all(|t| t.len() >= Self::TRIAL) {
            let median = |t: &mut Vec<f64>| {
                t.sort_by(f64::total_cmp);
                t[t.len() / 2]
            };
            let (one, two) = (median(&mut self.trial[0]), median(&mut self.trial[1]));
            self.split = two < one;
            self.exploit = Self::EXPLOIT;
            self.trial = Default::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_runs_each_half_once_with_or_without_the_helper() {
        let lanes = Lanes::new();
        let mut hits = [0u32; 2];
        let (left, right) = hits.split_at_mut(1);
        lanes.both(|| left[0] += 1, || right[0] += 1);
        lanes.set_splitting(true);
        for _ in 0..1000 {
            let (l, r) = hits.split_at_mut(1);
            lanes.both(|| l[0] += 1, || r[0] += 1);
        }
        lanes.set_splitting(false);
        assert_eq!(hits, [1001, 1001]);
    }

    #[test]
    fn a_panic_in_the_helper_reaches_the_caller() {
        let lanes = Lanes::new();
        lanes.set_splitting(true);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            for _ in 0..100 {
                lanes.both(
                    || std::thread::sleep(std::time::Duration::from_micros(50)),
                    || panic!("boom"),
                );
            }
        }));
        assert!(caught.is_err());
        // Still usable afterwards.
        let mut x = 0;
        lanes.both(|| (), || x += 1);
        lanes.set_splitting(false);
        assert_eq!(x, 1);
    }

    #[test]
    fn the_chooser_tries_both_ways_then_keeps_the_faster() {
        let mut c = Chooser::default();
        let run = |c: &mut Chooser, split_cost: f64, steps: usize| -> usize {
            (0..steps)
                .filter(|_| {
                    let p = c.pick();
                    c.record(p, if p { split_cost } else { 1.0 });
                    p
                })
                .count()
        };
        // A trial of 4 + 4 steps, then 40 steps of the faster way: 4 + 40 splits.
        assert_eq!(run(&mut c, 0.5, 48), 44);
        // Splitting becomes slower: the next trial notices.
        assert_eq!(run(&mut c, 2.0, 48), 4);
        // One preempted step in a trial does not decide it.
        let mut c = Chooser::default();
        let mut times = [0.5, 9.0, 0.5, 0.5].into_iter();
        for _ in 0..8 {
            let p = c.pick();
            c.record(p, if p { times.next().unwrap() } else { 1.0 });
        }
        assert!(
            c.pick(),
            "the median split step (0.5) beats one thread (1.0)"
        );
    }
}
