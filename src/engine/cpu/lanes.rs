//! Lanes of work for one executor: the calling thread and one spinning helper per
//! other core.
//!
//! A training step of a credit model is a chain of kernels of 5 to 200 µs each. Split
//! across a thread pool, each one pays for waking sleeping workers (tens of µs on a
//! virtual machine), which costs about what the split saves. The helpers here instead
//! spin, ready, for as long as a run lasts (and sleep between runs), so handing them
//! parts of a kernel costs about a microsecond.
//!
//! `split(parts, f)` posts `f` to the helpers and runs `f(0..parts)` on whichever lane
//! claims each part first, the caller included: if no helper is running (a busy
//! machine), the caller claims every part, no worse than one thread. Every kernel that
//! splits gives each part its own outputs and computes each output exactly as it would
//! unsplit, so results do not depend on the number of lanes. A panic in a part is
//! carried back to the caller.
//!
//! On a machine busy with other work a helper can also be preempted halfway through a
//! part, and the caller then waits for the scheduler (milliseconds, for a part of
//! microseconds). After a few such stalls the lanes stop splitting until splitting is
//! switched on again. Whether to split at all is measured per plan (`Chooser`): the
//! lanes win on an idle machine and lose to one thread where other work holds the cores.

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// A wait for the helpers this long means one was preempted, not just a little behind.
const STALL: std::time::Duration = std::time::Duration::from_micros(200);
/// Looks for work a helper makes by spinning before it yields its core between looks:
/// about 50 µs, longer than the serial stretches between a step's split kernels, since a
/// yield on a virtual machine can take microseconds to come back.
const SPINS_BEFORE_YIELD: u32 = 1 << 14;
/// How long a helper stays awake (yielding between looks) after splitting is switched
/// off, before it sleeps.
const STAY_AWAKE: std::time::Duration = std::time::Duration::from_millis(2);
/// Stalls in one run after which the rest of the run is done on one thread.
const MAX_STALLS: u32 = 3;

/// Set to `always`, every step splits across as many lanes as there are threads, however
/// few cores the machine has: for tests of the split paths (a test cannot rely on the
/// chooser picking them). Read once.
pub const FORCE_SPLIT_VAR: &str = "RISKGRAD_CPU_SPLIT";

/// Whether `FORCE_SPLIT_VAR` is `always`.
pub fn split_forced() -> bool {
    static FORCED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| std::env::var(FORCE_SPLIT_VAR).is_ok_and(|v| v == "always"))
}

/// A posted job: a type-erased `&dyn Fn(usize)` living on the caller's stack, valid
/// until the caller has closed the job and seen no helper inside it.
#[derive(Clone, Copy)]
struct Job {
    run: *const (dyn Fn(usize) + Sync),
    parts: usize,
}

struct Shared {
    /// The current job; written only by the caller while no helper is inside one
    /// (`open` false and `inside` 0), read by helpers inside it.
    job: UnsafeCell<Job>,
    /// Bumped when a job is posted: helpers look for a change.
    posted: AtomicU64,
    /// Whether helpers may enter the current job.
    open: AtomicBool,
    /// Helpers inside the current job (entered, not yet left).
    inside: AtomicUsize,
    /// The parts claimed, a bit each (jobs of up to 64 parts), or the next part to
    /// claim (longer jobs), and the parts finished.
    claimed: AtomicU64,
    next: AtomicUsize,
    finished: AtomicUsize,
    /// The lanes, the caller's included.
    lanes: usize,
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
    /// While set the helpers spin for work; otherwise they sleep on `wake`.
    active: AtomicBool,
    /// Stalls seen in the current run (see the module docs).
    stalls: AtomicU32,
    quit: AtomicBool,
    sleep: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is written only while no helper can read it (see its doc); the closure it
// points to is `Sync`.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

impl Shared {
    /// Claims and runs parts of the current job as `lane` until none is left. A lane
    /// first takes its own parts (`lane`, `lane + lanes`, ...), so a kernel's part `i`
    /// runs on the same core from one kernel to the next and the rows it writes stay in
    /// that core's cache for the next kernel that reads them; then any part left (a lane
    /// late or preempted).
    fn work(&self, job: Job, lane: usize) {
        if job.parts > 64 {
            loop {
                let part = self.next.fetch_add(1, Ordering::AcqRel);
                if part >= job.parts {
                    return;
                }
                self.run(job, part);
            }
        }
        let own = (lane..job.parts).step_by(self.lanes);
        for part in own.chain(0..job.parts) {
            let bit = 1u64 << part;
            // Look before claiming: a load of a claimed bit costs less than a swap.
            if self.claimed.load(Ordering::Acquire) & bit == 0
                && self.claimed.fetch_or(bit, Ordering::AcqRel) & bit == 0
            {
                self.run(job, part);
            }
        }
    }

    fn run(&self, job: Job, part: usize) {
        // SAFETY: the caller keeps the closure alive until every part is finished.
        let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*job.run)(part) }));
        if let Err(p) = result {
            *self.panic.lock().unwrap_or_else(|p| p.into_inner()) = Some(p);
        }
        self.finished.fetch_add(1, Ordering::AcqRel);
    }
}

/// A pointer to a slice's first element that parts on other lanes may offset into.
struct SendPtr<T>(*mut T);

impl<T> SendPtr<T> {
    fn get(&self) -> *mut T {
        self.0
    }
}

// SAFETY: used only by `split_chunks`, whose parts write disjoint ranges.
unsafe impl<T: Send> Sync for SendPtr<T> {}

/// The lanes: the calling thread and its spinning helpers (see the module docs);
/// dropping it stops the helpers.
pub struct Lanes {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
}

impl Lanes {
    /// One lane per thread of the rayon pool (sized by the machine, `RAYON_NUM_THREADS`
    /// or `--threads`), but no more than the machine's cores: a spinning helper without a
    /// core of its own only slows the others (unless `FORCE_SPLIT_VAR` says otherwise).
    pub fn new() -> Self {
        let cores = match split_forced() {
            true => usize::MAX,
            false => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Self::with_count(rayon::current_num_threads().min(cores))
    }

    /// `count` lanes: the caller and `count - 1` helpers (fewer if threads cannot be
    /// started).
    pub fn with_count(count: usize) -> Self {
        let noop: &(dyn Fn(usize) + Sync) = &|_| {};
        let shared = Arc::new(Shared {
            job: UnsafeCell::new(Job {
                run: noop as *const _,
                parts: 0,
            }),
            posted: AtomicU64::new(0),
            open: AtomicBool::new(false),
            inside: AtomicUsize::new(0),
            claimed: AtomicU64::new(0),
            next: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            lanes: count.max(1),
            panic: Mutex::new(None),
            active: AtomicBool::new(false),
            stalls: AtomicU32::new(0),
            quit: AtomicBool::new(false),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        });
        let helpers = (1..count.max(1))
            .map_while(|i| {
                let s = shared.clone();
                std::thread::Builder::new()
                    .name(format!("riskgrad-lane-{i}"))
                    .spawn(move || helper_loop(&s, i))
                    .ok()
            })
            .collect();
        Lanes { shared, helpers }
    }

    /// Whether there are helpers at all.
    pub fn available(&self) -> bool {
        !self.helpers.is_empty()
    }

    /// The lanes work is split across now: 1 while splitting is off (see
    /// `set_splitting`) or after repeated stalls, else the caller and every helper.
    pub fn count(&self) -> usize {
        let splitting = self.shared.active.load(Ordering::Acquire)
            && self.shared.stalls.load(Ordering::Relaxed) < MAX_STALLS;
        if splitting {
            self.helpers.len() + 1
        } else {
            1
        }
    }

    /// Whether work is being split now.
    pub fn splitting(&self) -> bool {
        self.count() > 1
    }

    /// Starts or stops splitting: while on, the helpers spin, ready for work; while off
    /// they sleep and `split` runs every part here.
    pub fn set_splitting(&self, on: bool) {
        if self.helpers.is_empty() || on == self.shared.active.load(Ordering::Acquire) {
            return;
        }
        if on {
            self.shared.stalls.store(0, Ordering::Relaxed);
        }
        self.shared.active.store(on, Ordering::Release);
        if on {
            let _guard = self.shared.sleep.lock().unwrap_or_else(|p| p.into_inner());
            self.shared.wake.notify_all();
        }
    }

    /// Runs `f(0)` to `f(parts - 1)`, each once, across the lanes (all here when not
    /// splitting). Call it from the thread that runs the plan, not from inside a part
    /// (one job at a time).
    pub fn split(&self, parts: usize, f: impl Fn(usize) + Sync) {
        if parts <= 1 || !self.splitting() {
            (0..parts).for_each(f);
            return;
        }
        let s = &*self.shared;
        let f: &(dyn Fn(usize) + Sync) = &f;
        // SAFETY: the lifetime is erased to post the job; it is used only until this
        // function has closed the job and seen every helper leave it, below, before `f`
        // goes out of scope.
        let run = unsafe {
            std::mem::transmute::<
                *const (dyn Fn(usize) + Sync + '_),
                *const (dyn Fn(usize) + Sync + 'static),
            >(f)
        };
        let job = Job { run, parts };
        // SAFETY: no helper is inside a job (the last `split` waited for that), so none
        // reads `job` while it is written.
        unsafe { *s.job.get() = job };
        s.claimed.store(0, Ordering::Relaxed);
        s.next.store(0, Ordering::Relaxed);
        s.finished.store(0, Ordering::Relaxed);
        s.open.store(true, Ordering::SeqCst);
        s.posted.fetch_add(1, Ordering::SeqCst);
        s.work(job, 0);
        let waited = std::time::Instant::now();
        let mut spins = 0u32;
        while s.finished.load(Ordering::Acquire) < parts {
            spins += 1;
            if spins < 256 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        if waited.elapsed() > STALL {
            s.stalls.fetch_add(1, Ordering::Relaxed);
        }
        // Close the job, then wait for helpers that entered it to leave (they find no
        // part left and go at once), so the next job can be written.
        s.open.store(false, Ordering::SeqCst);
        while s.inside.load(Ordering::SeqCst) != 0 {
            std::hint::spin_loop();
        }
        if let Some(p) = s.panic.lock().unwrap_or_else(|p| p.into_inner()).take() {
            resume_unwind(p);
        }
    }

    /// Runs `f(part, chunk)` for each `chunk`-long piece of `data` (the last may be
    /// shorter), numbered from 0, across the lanes.
    pub fn split_chunks<T: Send>(
        &self,
        data: &mut [T],
        chunk: usize,
        f: impl Fn(usize, &mut [T]) + Sync,
    ) {
        let (len, chunk) = (data.len(), chunk.max(1));
        let base = SendPtr(data.as_mut_ptr());
        self.split(len.div_ceil(chunk), |part| {
            let start = part * chunk;
            let end = (start + chunk).min(len);
            // SAFETY: each part is claimed once and the parts' ranges of `data` are
            // disjoint; `data` is borrowed mutably for this call.
            let piece =
                unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
            f(part, piece)
        });
    }

    /// Runs `a` and `b`, on two lanes when splitting.
    pub fn both(&self, a: impl FnOnce() + Send, b: impl FnOnce() + Send) {
        let (a, b) = (Mutex::new(Some(a)), Mutex::new(Some(b)));
        self.split(2, |part| {
            if part == 0 {
                let a = a.lock().unwrap_or_else(|p| p.into_inner()).take();
                a.expect("run once")()
            } else {
                let b = b.lock().unwrap_or_else(|p| p.into_inner()).take();
                b.expect("run once")()
            }
        });
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
            self.shared.wake.notify_all();
        }
        for h in self.helpers.drain(..) {
            let _ = h.join();
        }
    }
}

/// The loop of helper `lane` (1 and up; the caller is lane 0).
fn helper_loop(s: &Shared, lane: usize) {
    let mut spins = 0u32;
    let mut seen = 0u64;
    // When splitting was last seen off, while it stays off.
    let mut idle_since: Option<std::time::Instant> = None;
    while !s.quit.load(Ordering::Acquire) {
        if !s.active.load(Ordering::Acquire) {
            // Stay awake a while first: the chooser's trials switch splitting off and on
            // step by step, and a wake-up from sleep costs tens of µs on a virtual
            // machine, which would count against every split step of a trial.
            let since = *idle_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() < STAY_AWAKE {
                std::thread::yield_now();
                continue;
            }
            let guard = s.sleep.lock().unwrap_or_else(|p| p.into_inner());
            if !s.active.load(Ordering::Acquire) && !s.quit.load(Ordering::Acquire) {
                // Woken by `active` or `drop`; the timeout only bounds a missed wake-up.
                let _ = s
                    .wake
                    .wait_timeout(guard, std::time::Duration::from_millis(50));
            }
            continue;
        }
        idle_since = None;
        let posted = s.posted.load(Ordering::SeqCst);
        if posted != seen {
            seen = posted;
            spins = 0;
            // Enter, then check the job is still open: the caller closes it before it
            // waits for `inside` to reach 0, so either it sees this helper or this
            // helper sees it closed (both sides sequentially consistent).
            s.inside.fetch_add(1, Ordering::SeqCst);
            if s.open.load(Ordering::SeqCst) {
                // SAFETY: the job is open and this helper is counted inside it.
                let job = unsafe { *s.job.get() };
                s.work(job, lane);
            }
            s.inside.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        spins += 1;
        if spins < SPINS_BEFORE_YIELD {
            std::hint::spin_loop();
        } else {
            // A serial stretch of the step. Yield between looks: alone on a core that
            // costs a system call per look; sharing one (with the caller, on a busy
            // machine) it hands the core over instead of spinning against it.
            std::thread::yield_now();
        }
    }
}

/// Whether a plan's steps split across the lanes, decided by measuring both ways
/// rather than assumed: on an idle machine splitting wins, on one where other work holds
/// a core it loses to one thread, and which is the case changes as other jobs come and
/// go. So the chooser alternates: a trial of `TRIAL` steps each way, interleaved (both
/// ways see the same load), then `EXPLOIT` steps the way whose median step was shorter
/// (a median, because a preempted step is an outlier), then another trial. Each trial
/// that confirms the last choice doubles the steps until the next (up to
/// `MAX_EXPLOIT`): a plan whose split steps are much slower (the MLP's, on two cores)
/// then pays for a trial's slow steps rarely, not every 48 steps.
#[derive(Clone, Debug, Default)]
pub struct Chooser {
    /// Step times of the current trial, one thread and split.
    trial: [Vec<f64>; 2],
    /// Steps left to run the chosen way before the next trial, and that way.
    exploit: usize,
    split: bool,
    /// The steps the last choice was kept for (0 before the first trial).
    kept: usize,
    /// Whether the step last picked belongs to a trial.
    trying: bool,
}

impl Chooser {
    const TRIAL: usize = 4;
    const EXPLOIT: usize = 40;
    const MAX_EXPLOIT: usize = 40 << 5;

    /// Whether to split the next step.
    pub fn pick(&mut self) -> bool {
        if split_forced() {
            return true;
        }
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
            let split = two < one;
            self.kept = if self.kept > 0 && split == self.split {
                (self.kept * 2).min(Self::MAX_EXPLOIT)
            } else {
                Self::EXPLOIT
            };
            self.split = split;
            self.exploit = self.kept;
            self.trial = Default::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_runs_each_half_once_with_or_without_the_helper() {
        let lanes = Lanes::with_count(2);
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
    fn split_runs_every_part_once_on_any_number_of_lanes() {
        for count in [1, 2, 3, 5] {
            let lanes = Lanes::with_count(count);
            lanes.set_splitting(true);
            assert_eq!(lanes.count(), count);
            for parts in [0, 1, 2, 3, 7, 64] {
                for _ in 0..50 {
                    let hits: Vec<AtomicU32> = (0..parts).map(|_| AtomicU32::new(0)).collect();
                    lanes.split(parts, |p| {
                        hits[p].fetch_add(1, Ordering::Relaxed);
                    });
                    assert!(
                        hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                        "{count} lanes, {parts} parts"
                    );
                }
            }
            let mut data: Vec<usize> = vec![usize::MAX; 1001];
            lanes.split_chunks(&mut data, 64, |part, chunk| {
                chunk
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, x)| *x = part * 64 + i)
            });
            assert!(
                data.iter().enumerate().all(|(i, &x)| i == x),
                "{count} lanes"
            );
            lanes.set_splitting(false);
            assert_eq!(lanes.count(), 1);
        }
    }

    #[test]
    fn a_panic_in_the_helper_reaches_the_caller() {
        let lanes = Lanes::with_count(2);
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
        // Trials that confirm the choice come further and further apart: after the
        // trial above (one thread, 40 steps), one thread for 80, then 160.
        let mut c2 = c.clone();
        assert_eq!(run(&mut c2, 2.0, 8 + 80 + 8 + 160), 8);
        // A trial that reverses the choice starts again from 40 steps.
        assert_eq!(run(&mut c, 2.0, 8 + 80), 4);
        assert_eq!(run(&mut c, 0.5, 8 + 40), 4 + 40);
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
