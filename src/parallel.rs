//! Fork/join for the forward pass: a *team* of the thread pool's threads held for one call.
//!
//! A decode step is a few hundred small parallel products (SmolLM2: ~150 matmuls of 70-550 KB
//! per token), each a few tens of microseconds of work. Handing each one to rayon means waking
//! sleeping threads every time; in the browser a wake is an `Atomics.notify` to a Web Worker
//! blocked in `Atomics.wait`, which costs more than the product itself (measured: 2 threads
//! decoded only 6% faster than 1). So [`with_team`] takes every pool thread once per forward
//! call (one `rayon::broadcast`), the calling thread drives the model, and the others spin on
//! an epoch counter, claiming chunks of each product as the driver posts it ([`for_each`]).
//! This is how llama.cpp's own thread pool works, with one difference: the driver never waits
//! for a helper to *arrive*. It claims chunks itself and waits only for chunks already claimed,
//! so a helper that starts late (its thread busy elsewhere) costs speed, never a deadlock.
//!
//! Outside a team (tests calling a kernel directly, or a caller that did not wrap its work),
//! [`for_each`] falls back to rayon.

use std::cell::Cell;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::*};
use std::sync::Mutex;

use rayon::prelude::*;

/// A posted product: the task and how many chunks it has.
type Task<'a> = &'a (dyn Fn(usize) + Sync);

/// The state a team's threads share. The job fields are written by the driver only while no
/// helper is inside the job (`busy == 0` with the epoch even), so helpers may read them freely
/// once they have entered (`busy` incremented, then the epoch re-checked: a Dekker handshake
/// with the driver's close, both sequentially consistent).
struct Team {
    threads: usize,
    /// Odd while a job is open for helpers to join; even otherwise.
    epoch: AtomicUsize,
    /// Points at the driver's `Task` (a fat reference on its stack) while a job is open.
    task: AtomicPtr<()>,
    chunks: AtomicUsize,
    next: AtomicUsize,
    done: AtomicUsize,
    /// Helpers inside the current job.
    busy: AtomicUsize,
    panicked: AtomicBool,
    quit: AtomicBool,
}

thread_local! {
    /// The team this thread drives, if any.
    static CURRENT: Cell<*const Team> = const { Cell::new(std::ptr::null()) };
}

/// Threads a parallel product can use here: the team's, or rayon's pool size.
pub fn threads() -> usize {
    let team = CURRENT.get();
    if team.is_null() {
        rayon::current_num_threads()
    } else {
        // SAFETY: CURRENT is set only while `with_team`'s team is alive on this thread.
        unsafe { (*team).threads }
    }
}

/// Runs `f` on one pool thread with the pool's other threads spinning as its team, so that every
/// [`for_each`] inside `f` starts in about a microsecond. With one thread, or inside a team
/// already, `f` just runs.
pub fn with_team<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let threads = rayon::current_num_threads();
    if threads < 2 || !CURRENT.get().is_null() {
        return f();
    }
    let team = Team {
        threads,
        epoch: AtomicUsize::new(0),
        task: AtomicPtr::new(std::ptr::null_mut()),
        chunks: AtomicUsize::new(0),
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        busy: AtomicUsize::new(0),
        panicked: AtomicBool::new(false),
        quit: AtomicBool::new(false),
    };
    let f = Mutex::new(Some(f));
    let result = Mutex::new(None);
    rayon::broadcast(|ctx| {
        if ctx.index() != 0 {
            team.help();
            return;
        }
        // Helpers leave when the driver is done, even if `f` panics.
        struct Quit<'a>(&'a AtomicBool);
        impl Drop for Quit<'_> {
            fn drop(&mut self) {
                self.0.store(true, Release);
            }
        }
        let _quit = Quit(&team.quit);
        let f = f.lock().unwrap().take().expect("the driver runs once");
        CURRENT.set(&team);
        let r = catch_unwind(AssertUnwindSafe(f));
        CURRENT.set(std::ptr::null());
        *result.lock().unwrap() = Some(r);
    });
    match result.into_inner().unwrap().expect("the driver ran") {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs `task(i)` for every `i < chunks`, in parallel on the current team (or rayon's pool when
/// there is none), and returns when all have finished.
pub fn for_each(chunks: usize, task: impl Fn(usize) + Sync) {
    if chunks == 0 {
        return;
    }
    if chunks == 1 {
        return task(0);
    }
    let team = CURRENT.get();
    if team.is_null() {
        if rayon::current_num_threads() < 2 {
            (0..chunks).for_each(task);
        } else {
            (0..chunks).into_par_iter().for_each(&task);
        }
        return;
    }
    // SAFETY: CURRENT is set only while `with_team`'s team is alive on this thread.
    unsafe { (*team).run(chunks, &task) }
}

impl Team {
    /// The driver's side of one job.
    fn run(&self, chunks: usize, task: Task) {
        let fat: *const Task = &task;
        self.task.store(fat as *mut (), Relaxed);
        self.chunks.store(chunks, Relaxed);
        self.next.store(0, Relaxed);
        self.done.store(0, Relaxed);
        let open = self.epoch.load(Relaxed) + 1;
        self.epoch.store(open, SeqCst);

        // Closes the job and waits until no helper holds `task` any more, also on unwind.
        struct Close<'a> {
            team: &'a Team,
            open: usize,
            chunks: usize,
        }
        impl Drop for Close<'_> {
            fn drop(&mut self) {
                let team = self.team;
                if !std::thread::panicking() {
                    while team.done.load(Acquire) < self.chunks {
                        std::hint::spin_loop();
                    }
                }
                team.epoch.store(self.open + 1, SeqCst);
                while team.busy.load(SeqCst) != 0 {
                    std::hint::spin_loop();
                }
            }
        }
        let close = Close {
            team: self,
            open,
            chunks,
        };
        loop {
            let i = self.next.fetch_add(1, Relaxed);
            if i >= chunks {
                break;
            }
            task(i);
            self.done.fetch_add(1, Release);
        }
        drop(close);
        if self.panicked.swap(false, Relaxed) {
            panic!("a parallel task panicked on a helper thread");
        }
    }

    /// A helper's loop: join each job as it opens, until the driver quits.
    fn help(&self) {
        let mut seen = 0;
        let mut idle = 0u32;
        loop {
            let e = self.epoch.load(SeqCst);
            if e == seen || e % 2 == 0 {
                if self.quit.load(Acquire) {
                    return;
                }
                // Spin hot for a while (the next product is usually microseconds away), then
                // give the core away between checks in case the machine is oversubscribed.
                idle = idle.saturating_add(1);
                if idle < 1 << 16 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
                continue;
            }
            self.busy.fetch_add(1, SeqCst);
            if self.epoch.load(SeqCst) != e {
                self.busy.fetch_sub(1, SeqCst);
                continue;
            }
            // SAFETY: the job is open and we are counted in `busy`, so the driver keeps `task`
            // (and what it borrows) alive and unchanged until we leave.
            let task = unsafe { *(self.task.load(Relaxed) as *const Task) };
            let chunks = self.chunks.load(Relaxed);
            loop {
                let i = self.next.fetch_add(1, Relaxed);
                if i >= chunks {
                    break;
                }
                if catch_unwind(AssertUnwindSafe(|| task(i))).is_err() {
                    self.panicked.store(true, Relaxed);
                }
                self.done.fetch_add(1, Release);
            }
            self.busy.fetch_sub(1, SeqCst);
            seen = e;
            idle = 0;
        }
    }
}

/// A mutable buffer shared by parallel tasks that each write their own part of it. It borrows
/// the buffer mutably for its whole life, so nothing else can touch it meanwhile.
pub(crate) struct SharedMut<'a, T> {
    ptr: *mut T,
    len: usize,
    _buf: PhantomData<&'a mut [T]>,
}

// SAFETY: tasks access disjoint ranges only (the callers' contract below).
unsafe impl<T: Send> Sync for SharedMut<'_, T> {}

impl<'a, T> SharedMut<'a, T> {
    pub(crate) fn new(buf: &'a mut [T]) -> Self {
        Self {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
            _buf: PhantomData,
        }
    }

    /// `buf[at..at + len]`. The caller guarantees that no other task touches that range while
    /// the slice lives (bounds are checked).
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice(&self, at: usize, len: usize) -> &mut [T] {
        assert!(at + len <= self.len, "parallel: shared slice out of bounds");
        std::slice::from_raw_parts_mut(self.ptr.add(at), len)
    }

    /// Copies `src` to `buf[at..]`, under the same contract as [`slice`](Self::slice).
    pub(crate) unsafe fn write(&self, at: usize, src: &[T])
    where
        T: Copy,
    {
        self.slice(at, src.len()).copy_from_slice(src);
    }
}
