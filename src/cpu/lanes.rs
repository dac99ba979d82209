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

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

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
    quit: AtomicBool,
    sleep: Mutex<()>,
    wake: Condvar,
}

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
            quit: AtomicBool::new(false),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        });
        let helper = (rayon::current_num_threads() == 2).then(|| {
            let s = shared.clone();
            std::thread::Builder::new().name("riskgrad-lane".into()).spawn(move || helper_loop(&s)).ok()
        });
        Lanes { shared, helper: helper.flatten() }
    }

    pub fn two(&self) -> bool {
        self.helper.is_some()
    }

    /// Keeps the helper spinning while `f` runs (one run of a plan).
    pub fn active<R>(&self, f: impl FnOnce() -> R) -> R {
        if self.helper.is_none() {
            return f();
        }
        /// Lets the helper sleep again however `f` ends.
        struct Inactive<'a>(&'a AtomicBool);
        impl Drop for Inactive<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        self.shared.active.store(true, Ordering::Release);
        let _inactive = Inactive(&self.shared.active);
        {
            let _guard = self.shared.sleep.lock().unwrap_or_else(|p| p.into_inner());
            self.shared.wake.notify_one();
        }
        f()
    }

    /// Runs `a` here and `b` on the helper if it is free to, else here after `a`. Call it
    /// from the thread that runs the plan, not from inside `a` or `b` (one job at a time).
    pub fn both(&self, a: impl FnOnce(), b: impl FnOnce() + Send) {
        if self.helper.is_none() || !self.shared.active.load(Ordering::Acquire) {
            a();
            b();
            return;
        }
        let mut b = Some(b);
        let mut call_b = || (b.take().expect("run once"))();
        let dyn_b: &mut (dyn FnMut() + Send) = &mut call_b;
        // SAFETY: the lifetime is erased to post the job; it is used only until this
        // function has seen it finished or taken it back, below, before `call_b` drops.
        let job = Job(unsafe { std::mem::transmute::<*mut (dyn FnMut() + Send + '_), *mut (dyn FnMut() + Send + 'static)>(dyn_b) });
        *self.shared.job.lock().unwrap_or_else(|p| p.into_inner()) = Some(job);
        self.shared.state.store(POSTED, Ordering::Release);
        // `b` must be finished or taken back before this frame unwinds: catch `a`'s panic.
        let ran_a = catch_unwind(AssertUnwindSafe(a));
        if self.shared.state.compare_exchange(POSTED, IDLE, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            // The helper never started it.
            self.shared.job.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Err(p) = ran_a {
                resume_unwind(p);
            }
            call_b();
            return;
        }
        let mut spins = 0u32;
        while self.shared.state.load(Ordering::Acquire) != DONE {
            spins += 1;
            if spins < 4096 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        self.shared.state.store(IDLE, Ordering::Release);
        if let Err(p) = ran_a {
            resume_unwind(p);
        }
        if let Some(p) = self.shared.panic.lock().unwrap_or_else(|p| p.into_inner()).take() {
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
                let _ = s.wake.wait_timeout(guard, std::time::Duration::from_millis(50));
            }
            continue;
        }
        if s.state.compare_exchange(POSTED, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_ok() {
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
        if spins < 1 << 14 {
            std::hint::spin_loop();
        } else {
            // A long wait (a serial stretch of the step): let others have the core.
            std::thread::yield_now();
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
        lanes.active(|| {
            for _ in 0..1000 {
                let (l, r) = hits.split_at_mut(1);
                lanes.both(|| l[0] += 1, || r[0] += 1);
            }
        });
        assert_eq!(hits, [1001, 1001]);
    }

    #[test]
    fn a_panic_in_the_helper_reaches_the_caller() {
        let lanes = Lanes::new();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            lanes.active(|| {
                for _ in 0..100 {
                    lanes.both(|| std::thread::sleep(std::time::Duration::from_micros(50)), || panic!("boom"));
                }
            })
        }));
        assert!(caught.is_err());
        // Still usable afterwards.
        let mut x = 0;
        lanes.active(|| lanes.both(|| (), || x += 1));
        assert_eq!(x, 1);
    }
}
