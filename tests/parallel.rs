//! The forward pass's fork/join (`wick::parallel`): every chunk runs exactly once, results are
//! visible to the driver, concurrent teams share a pool without deadlock, and panics surface.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use wick::parallel::{for_each, threads, with_team};

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
}

#[test]
fn every_chunk_runs_once_per_product() {
    let pool = pool(3);
    let counts: Vec<AtomicUsize> = (0..97).map(|_| AtomicUsize::new(0)).collect();
    let rounds = 2000;
    let seen_threads = pool.install(|| {
        with_team(|| {
            for r in 0..rounds {
                // Products of every size, 1 to 97 chunks, back to back as in a forward pass.
                let n = 1 + r % counts.len();
                for_each(n, |i| {
                    counts[i].fetch_add(1, Relaxed);
                });
            }
            threads()
        })
    });
    assert_eq!(seen_threads, 3);
    for (i, c) in counts.iter().enumerate() {
        let expected = (0..rounds).filter(|r| 1 + r % counts.len() > i).count();
        assert_eq!(c.load(Relaxed), expected, "chunk {i}");
    }
}

#[test]
fn helpers_do_share_the_work() {
    // A helper that never joined would leave every chunk to the driver; with chunks that wait
    // for each other, only two threads running at once can finish.
    let pool = pool(2);
    let arrived = AtomicUsize::new(0);
    pool.install(|| {
        with_team(|| {
            for_each(2, |_| {
                arrived.fetch_add(1, Relaxed);
                let deadline = Instant::now() + Duration::from_secs(20);
                while arrived.load(Relaxed) < 2 {
                    assert!(Instant::now() < deadline, "no helper took the second chunk");
                    std::hint::spin_loop();
                }
            })
        })
    });
    assert_eq!(arrived.load(Relaxed), 2);
}

#[test]
fn writes_of_helpers_are_visible_to_the_driver() {
    let pool = pool(2);
    let total: u64 = pool.install(|| {
        with_team(|| {
            let mut acc = 0u64;
            for round in 0..500u64 {
                let parts: Vec<AtomicUsize> = (0..16).map(|_| AtomicUsize::new(0)).collect();
                for_each(16, |i| parts[i].store(i + round as usize, Relaxed));
                acc += parts.iter().map(|p| p.load(Relaxed) as u64).sum::<u64>();
            }
            acc
        })
    });
    let expected: u64 = (0..500u64)
        .map(|r| (0..16u64).map(|i| i + r).sum::<u64>())
        .sum();
    assert_eq!(total, expected);
}

#[test]
fn concurrent_teams_on_one_pool_all_finish() {
    let pool = pool(2);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|k| {
                let pool = &pool;
                s.spawn(move || {
                    pool.install(|| {
                        with_team(|| {
                            let sum = AtomicUsize::new(0);
                            for _ in 0..300 {
                                for_each(8, |i| {
                                    sum.fetch_add(i + k, Relaxed);
                                });
                            }
                            sum.load(Relaxed)
                        })
                    })
                })
            })
            .collect();
        for (k, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), 300 * (28 + 8 * k));
        }
    });
}

#[test]
fn nested_team_runs_inline_and_returns_its_value() {
    let pool = pool(2);
    let v = pool.install(|| with_team(|| with_team(|| 7) + 1));
    assert_eq!(v, 8);
}

#[test]
fn a_panicking_chunk_panics_the_caller_and_the_pool_still_works() {
    let pool = pool(2);
    for bad in [0, 5] {
        let r = catch_unwind(AssertUnwindSafe(|| {
            pool.install(|| {
                with_team(|| {
                    for_each(6, |i| {
                        if i == bad {
                            panic!("chunk {i} fails");
                        }
                    })
                })
            })
        }));
        assert!(r.is_err(), "chunk {bad}'s panic was lost");
    }
    let n = AtomicUsize::new(0);
    pool.install(|| {
        with_team(|| {
            for_each(10, |_| {
                n.fetch_add(1, Relaxed);
            })
        })
    });
    assert_eq!(n.load(Relaxed), 10);
}
