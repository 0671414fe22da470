//! Choosing the next token from logits: greedy, or llama.cpp's usual chain (repetition, frequency
//! and presence penalties, top-k, top-p, min-p, temperature) followed by a seeded draw. The random generator is our own
//! small one so that a seed gives the same tokens natively and in wasm.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::forward::Logits;
pub use crate::forward::TOP_CANDIDATES;

/// How the next token is chosen; missing fields deserialize to llama.cpp's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// 0 means greedy (always the most likely token).
    pub temperature: f32,
    /// Keep only the k most likely tokens (0: no limit).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probabilities add up to `top_p` (1: no limit).
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one (0: off).
    pub min_p: f32,
    /// Divide positive logits (multiply negative ones) of recently seen tokens by this (1: off).
    pub repetition_penalty: f32,
    /// Subtract this times its count in the recent tokens from a token's logit (OpenAI's
    /// `frequency_penalty`, -2 to 2; 0: off).
    pub frequency_penalty: f32,
    /// Subtract this from the logit of every token among the recent ones (OpenAI's
    /// `presence_penalty`, -2 to 2; 0: off).
    pub presence_penalty: f32,
    /// How many recent tokens the penalties look at.
    pub repeat_last_n: usize,
    /// The same seed gives the same output for the same model, prompt and parameters.
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    /// llama.cpp's defaults.
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repetition_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            repeat_last_n: 64,
            seed: None,
        }
    }
}

impl SamplingParams {
    /// Always the most likely token (temperature 0): deterministic without a seed.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// Rejects values that make no sense before any work starts.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidParameter(what));
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return bad(format!(
                "temperature must be a number >= 0, got {}",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad(format!("min_p must be in [0, 1], got {}", self.min_p));
        }
        if !self.repetition_penalty.is_finite() || self.repetition_penalty <= 0.0 {
            return bad(format!(
                "repetition_penalty must be > 0, got {}",
                self.repetition_penalty
            ));
        }
        for (name, v) in [
            ("frequency_penalty", self.frequency_penalty),
            ("presence_penalty", self.presence_penalty),
        ] {
            if !(-2.0..=2.0).contains(&v) {
                return bad(format!("{name} must be in [-2, 2], got {v}"));
            }
        }
        Ok(())
    }

    /// Whether any penalty changes logits of recent tokens.
    fn penalizes(&self) -> bool {
        self.repeat_last_n > 0
            && (self.repetition_penalty != 1.0
                || self.frequency_penalty != 0.0
                || self.presence_penalty != 0.0)
    }
}

/// Picks tokens from logits with fixed [`SamplingParams`] and its own random generator; one per
/// request.
pub struct Sampler {
    params: SamplingParams,
    rng: Rng,
    candidates: Vec<(u32, f32)>,
    /// Scratch reused token after token: penalized ids, then probabilities, then draw weights.
    seen: Vec<u32>,
    weights: Vec<f32>,
}

impl Sampler {
    /// Fails with [`Error::InvalidParameter`] when `params` do not validate; without a seed the
    /// seed differs from one sampler to the next.
    pub fn new(params: SamplingParams) -> Result<Self> {
        params.validate()?;
        let seed = params.seed.unwrap_or_else(entropy_seed);
        Ok(Self {
            params,
            rng: Rng::new(seed),
            candidates: Vec::new(),
            seen: Vec::new(),
            weights: Vec::new(),
        })
    }

    /// Whether sampling needs whole logits rows: the repetition penalty can lift any token
    /// into the head, and without top-k (or past the GPU's [`TOP_CANDIDATES`]) the head is
    /// unbounded. Greedy and top-k sampling work from the best candidates alone.
    pub fn wants_full(&self) -> bool {
        let p = &self.params;
        p.penalizes() || (p.temperature > 0.0 && (p.top_k == 0 || p.top_k > TOP_CANDIDATES))
    }

    /// Picks the next token. `history` is the sequence so far (for the repetition penalty).
    pub fn sample(&mut self, logits: &Logits, history: &[u32]) -> u32 {
        match logits {
            Logits::Full(l) => self.sample_full(l, history),
            Logits::Top(top) => {
                // Sorted best first: greedy is the first; top-k (k <= its length, see
                // `wants_full`) is its head.
                if self.params.temperature <= 0.0 || top.len() == 1 {
                    return top.first().map_or(0, |c| c.0);
                }
                let k = self.params.top_k.min(top.len());
                self.candidates.clear();
                self.candidates.extend_from_slice(&top[..k]);
                self.draw()
            }
        }
    }

    fn sample_full(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let p = &self.params;
        let penalize = p.penalizes();
        if p.temperature <= 0.0 && !penalize {
            return argmax(logits);
        }
        let c = &mut self.candidates;
        c.clear();
        c.extend(logits.iter().enumerate().map(|(i, &l)| (i as u32, l)));
        if penalize {
            let recent = &history[history.len().saturating_sub(p.repeat_last_n)..];
            let seen = &mut self.seen;
            seen.clear();
            seen.extend_from_slice(recent);
            seen.sort_unstable();
            // As llama.cpp's penalties sampler: per distinct token, the repetition penalty
            // scales its logit, then `count * frequency + presence` is subtracted.
            for run in seen.chunk_by(|a, b| a == b) {
                if let Some(e) = c.get_mut(run[0] as usize) {
                    e.1 = if e.1 > 0.0 {
                        e.1 / p.repetition_penalty
                    } else {
                        e.1 * p.repetition_penalty
                    };
                    e.1 -= run.len() as f32 * p.frequency_penalty + p.presence_penalty;
                }
            }
        }
        if p.temperature <= 0.0 {
            return c
                .iter()
                .fold(
                    (0u32, f32::NEG_INFINITY),
                    |b, &e| if e.1 > b.1 { e } else { b },
                )
                .0;
        }
        // Sort only the head of the distribution: top-k bounds it, else a generous cut.
        let k = if p.top_k > 0 {
            p.top_k.min(c.len())
        } else {
            c.len()
        };
        if k < c.len() {
            c.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1));
            c.truncate(k);
        }
        c.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        self.draw()
    }

    /// top-p, min-p, temperature and the seeded draw over `candidates` (sorted, best first).
    fn draw(&mut self) -> u32 {
        let p = &self.params;
        let c = &mut self.candidates;
        // Probabilities at temperature 1 for top-p / min-p (as llama.cpp orders its chain).
        let max = c[0].1;
        let probs = &mut self.weights;
        probs.clear();
        probs.extend(c.iter().map(|e| (e.1 - max).exp()));
        let total: f32 = probs.iter().sum();
        probs.iter_mut().for_each(|q| *q /= total);
        let mut keep = c.len();
        if p.top_p < 1.0 {
            let mut acc = 0.0;
            for (i, &q) in probs.iter().enumerate() {
                acc += q;
                if acc >= p.top_p {
                    keep = keep.min(i + 1);
                    break;
                }
            }
        }
        if p.min_p > 0.0 {
            let floor = probs[0] * p.min_p;
            keep = keep.min(probs.iter().take_while(|&&q| q >= floor).count().max(1));
        }
        c.truncate(keep);
        let weights = probs;
        weights.clear();
        weights.extend(c.iter().map(|e| ((e.1 - max) / p.temperature).exp()));
        let sum: f32 = weights.iter().sum();
        let mut r = self.rng.next_f32() * sum;
        for (e, w) in c.iter().zip(weights.iter()) {
            if r < *w {
                return e.0;
            }
            r -= w;
        }
        c[c.len() - 1].0
    }
}

/// [`top2_margin`] of logits in either form.
pub fn margin(logits: &Logits) -> f32 {
    match logits {
        Logits::Full(l) => top2_margin(l),
        Logits::Top(t) if t.len() >= 2 => t[0].1 - t[1].1,
        Logits::Top(_) => f32::INFINITY,
    }
}

/// How far the most likely token's logit is ahead of the second's: below ~0.1, two correct
/// engines (different float summation orders) may pick different tokens.
pub fn top2_margin(logits: &[f32]) -> f32 {
    let (mut a, mut b) = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    for &x in logits {
        if x > a {
            b = a;
            a = x;
        } else if x > b {
            b = x;
        }
    }
    a - b
}

/// Index of the largest logit (the lowest index on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// xoshiro256** seeded through splitmix64: tiny, fast, and identical on every target (also the
/// tool-call ids of `tools`, reproducible from the request's seed).
pub(crate) struct Rng([u64; 4]);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        };
        Self([next(), next(), next(), next()])
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let out = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform in [0, 1).
    fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// A seed for callers that gave none. The browser glue always passes one (from
/// crypto.getRandomValues), so only native builds need a clock here.
fn entropy_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    #[cfg(not(target_arch = "wasm32"))]
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    #[cfg(target_arch = "wasm32")]
    let t = 0u64;
    t ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (&n as *const u64 as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(l: &[f32]) -> Logits {
        Logits::Full(l.to_vec())
    }

    /// The best `k` of `l` as a backend's top candidates (sorted, best first).
    fn top(l: &[f32], k: usize) -> Logits {
        let mut c: Vec<(u32, f32)> = l.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect();
        c.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        c.truncate(k);
        Logits::Top(c)
    }

    /// Greedy and top-k sampling from the GPU's top-64 candidates pick exactly what they pick
    /// from the whole row, seed for seed; the penalty and an unbounded top-k ask for whole rows.
    #[test]
    fn top_candidates_sample_like_whole_rows() {
        let l = logits();
        for params in [
            SamplingParams::greedy(),
            SamplingParams {
                seed: Some(5),
                ..SamplingParams::default()
            },
            SamplingParams {
                seed: Some(9),
                top_k: 64,
                top_p: 1.0,
                min_p: 0.0,
                temperature: 1.5,
                ..SamplingParams::default()
            },
        ] {
            let (mut a, mut b) = (
                Sampler::new(params.clone()).unwrap(),
                Sampler::new(params).unwrap(),
            );
            assert!(!a.wants_full());
            for _ in 0..50 {
                assert_eq!(a.sample(&full(&l), &[]), b.sample(&top(&l, 64), &[]));
            }
        }
        for params in [
            SamplingParams {
                repetition_penalty: 1.1,
                ..SamplingParams::default()
            },
            SamplingParams {
                top_k: 0,
                ..SamplingParams::default()
            },
            SamplingParams {
                top_k: 65,
                ..SamplingParams::default()
            },
        ] {
            assert!(Sampler::new(params).unwrap().wants_full());
        }
        assert_eq!(margin(&top(&l, 64)), top2_margin(&l));
    }

    fn logits() -> Vec<f32> {
        (0..100).map(|i| ((i * 37) % 100) as f32 / 10.0).collect()
    }

    #[test]
    fn greedy_is_argmax() {
        let l = logits();
        let mut s = Sampler::new(SamplingParams::greedy()).unwrap();
        assert_eq!(s.sample(&full(&l), &[]), argmax(&l));
        assert_eq!(l[argmax(&l) as usize], 9.9);
    }

    #[test]
    fn same_seed_same_tokens_and_different_seeds_differ() {
        let l: Vec<f32> = (0..50).map(|i| (i as f32 * 0.1).sin()).collect();
        let run = |seed| {
            let params = SamplingParams {
                temperature: 1.5,
                top_k: 0,
                top_p: 1.0,
                min_p: 0.0,
                seed: Some(seed),
                ..Default::default()
            };
            let mut s = Sampler::new(params).unwrap();
            (0..64)
                .map(|_| s.sample(&full(&l), &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn top_k_one_and_min_p_one_are_greedy() {
        let l = logits();
        for params in [
            SamplingParams {
                temperature: 2.0,
                top_k: 1,
                seed: Some(1),
                ..Default::default()
            },
            SamplingParams {
                temperature: 2.0,
                top_k: 0,
                top_p: 1.0,
                min_p: 1.0,
                seed: Some(1),
                ..Default::default()
            },
        ] {
            let mut s = Sampler::new(params).unwrap();
            for _ in 0..20 {
                assert_eq!(s.sample(&full(&l), &[]), argmax(&l));
            }
        }
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        // Token 3 has ~88% of the mass: top_p 0.5 must always pick it.
        let l = vec![0.0, 0.0, 0.0, 5.0, 1.0];
        let params = SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.5,
            min_p: 0.0,
            seed: Some(3),
            ..Default::default()
        };
        let mut s = Sampler::new(params).unwrap();
        assert!((0..50).all(|_| s.sample(&full(&l), &[]) == 3));
    }

    #[test]
    fn repetition_penalty_moves_greedy_off_a_repeated_token() {
        let l = vec![1.0, 2.0, 1.9];
        let params = SamplingParams {
            temperature: 0.0,
            repetition_penalty: 1.5,
            ..Default::default()
        };
        let mut s = Sampler::new(params).unwrap();
        assert_eq!(s.sample(&full(&l), &[]), 1);
        assert_eq!(s.sample(&full(&l), &[1]), 2);
    }

    #[test]
    fn frequency_and_presence_penalties_subtract_as_llama_cpp_does() {
        // Token 1 leads by 0.5; seen twice, frequency 0.2 takes 0.4 (still ahead), presence
        // 0.2 more takes it behind token 2.
        let l = vec![0.0, 2.0, 1.5];
        let greedy = |frequency_penalty, presence_penalty| {
            Sampler::new(SamplingParams {
                temperature: 0.0,
                frequency_penalty,
                presence_penalty,
                ..Default::default()
            })
            .unwrap()
        };
        assert_eq!(greedy(0.2, 0.0).sample(&full(&l), &[1, 1]), 1);
        assert_eq!(greedy(0.2, 0.2).sample(&full(&l), &[1, 1]), 2);
        assert_eq!(greedy(0.0, 0.6).sample(&full(&l), &[1]), 2);
        // Only the last `repeat_last_n` tokens count.
        let mut s = Sampler::new(SamplingParams {
            temperature: 0.0,
            frequency_penalty: 0.2,
            repeat_last_n: 2,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.sample(&full(&l), &[1, 1, 1, 0, 0]), 1);
        assert_eq!(s.sample(&full(&l), &[0, 1, 1, 1]), 1);
        // Negative values reward repetition.
        assert_eq!(greedy(-0.5, 0.0).sample(&full(&l), &[2, 2]), 2);
        assert!(Sampler::new(SamplingParams {
            presence_penalty: 0.1,
            ..SamplingParams::greedy()
        })
        .unwrap()
        .wants_full());
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        for params in [
            SamplingParams {
                temperature: -1.0,
                ..Default::default()
            },
            SamplingParams {
                top_p: 0.0,
                ..Default::default()
            },
            SamplingParams {
                frequency_penalty: 2.5,
                ..Default::default()
            },
            SamplingParams {
                presence_penalty: f32::NAN,
                ..Default::default()
            },
            SamplingParams {
                top_p: 1.5,
                ..Default::default()
            },
            SamplingParams {
                min_p: -0.1,
                ..Default::default()
            },
            SamplingParams {
                repetition_penalty: 0.0,
                ..Default::default()
            },
            SamplingParams {
                temperature: f32::NAN,
                ..Default::default()
            },
        ] {
            assert!(matches!(
                Sampler::new(params),
                Err(Error::InvalidParameter(_))
            ));
        }
    }
}
