//! The decode loop allocates nothing per token: a counting global allocator watches
//! `Model::forward_into` on the real models, with one thread and with a team of two. (With a
//! team, the one allocation per call is rayon's: `broadcast` lists its jobs in a `Vec` when the
//! team forms. It is counted, and must stay the only one.)
//!
//! Memory that follows use still grows (the KV cache, the attention scratch as the context
//! lengthens), so the first pass over positions may allocate a few times, geometrically; a second
//! pass over the same positions (the cache rewound) must allocate nothing at all.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use common::*;
use wick::Engine;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The counts are process-wide: one model at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const PROMPT: &str = "The history of the printing press begins";
const DECODE: usize = 48;

/// Allocations of each decode step: a first pass, then the same positions again.
fn decode_allocations(file: &str, threads: usize) -> (Vec<usize>, Vec<usize>) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let engine = Engine::open(&model_path(file)).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let model = &engine.model;
        let prompt = engine.encode(PROMPT).unwrap();
        let mut cache = model.new_cache(512);
        let mut logits = Vec::new();
        model
            .forward_into(&prompt, &mut cache, false, &mut logits)
            .unwrap();
        let pass = |cache: &mut wick::model::KvCache, logits: &mut Vec<f32>| {
            let mut counts = Vec::new();
            for _ in 0..DECODE {
                let next = argmax(logits);
                let before = ALLOCATIONS.load(Relaxed);
                model.forward_into(&[next], cache, false, logits).unwrap();
                counts.push(ALLOCATIONS.load(Relaxed) - before);
            }
            counts
        };
        let first = pass(&mut cache, &mut logits);
        // Back before the prompt's last token: the same tokens again, in buffers already grown.
        cache.rewind(prompt.len() - 1);
        model
            .forward_into(&prompt[prompt.len() - 1..], &mut cache, false, &mut logits)
            .unwrap();
        let second = pass(&mut cache, &mut logits);
        (first, second)
    })
}

fn argmax(l: &[f32]) -> u32 {
    (0..l.len()).fold(0, |b, i| if l[i] > l[b] { i } else { b }) as u32
}

fn check(file: &str, threads: usize) {
    let (first, second) = decode_allocations(file, threads);
    eprintln!("{file}, {threads} thread(s): first pass {first:?}, second {second:?}");
    let fork = usize::from(threads > 1);
    assert!(
        second.iter().all(|&c| c == fork),
        "{file}, {threads} thread(s): decode steps over positions already seen allocated \
         (beyond the team's fork, {fork}): {second:?}"
    );
    // Growth is geometric: a handful of steps of the first pass grow a buffer.
    let growing = first.iter().filter(|&&c| c > fork).count();
    assert!(
        growing <= DECODE / 4,
        "{file}, {threads} thread(s): {growing} of {DECODE} steps allocated: {first:?}"
    );
}

#[test]
fn smollm2_decodes_without_allocating() {
    check(SMOLLM2, 1);
    check(SMOLLM2, 2);
}

#[test]
fn gemma3_decodes_without_allocating() {
    check(GEMMA3, 1);
    check(GEMMA3, 2);
}
