//! The MLP activations' own `exp` (vectorizable arithmetic, not libm) against f64 truth, and SiLU
//! and GELU-tanh at their saturated ends.

use wick::model::ops::{exp, gelu_tanh, silu};

/// Every 97th f32 bit pattern in [lo, hi] (about 10 million values for the full range).
fn sweep(lo: f32, hi: f32) -> impl Iterator<Item = f32> {
    let ordered = |x: f32| {
        let b = x.to_bits() as i32;
        if b < 0 {
            i32::MIN - b
        } else {
            b
        }
    };
    let (a, b) = (ordered(lo), ordered(hi));
    (a..=b).step_by(97).map(|o| {
        f32::from_bits(if o < 0 {
            (i32::MIN - o) as u32
        } else {
            o as u32
        })
    })
}

#[test]
fn exp_is_within_a_few_ulp_of_the_truth() {
    let mut worst = 0f64;
    for x in sweep(-86.0, 88.0) {
        let truth = (x as f64).exp();
        let rel = ((exp(x) as f64 - truth) / truth).abs();
        worst = worst.max(rel);
    }
    // One ulp of a float in [1, 2) is 1.19e-7 relative.
    assert!(
        worst < 4.0 * f32::EPSILON as f64,
        "worst relative error {worst:e}"
    );
    assert_eq!(exp(0.0), 1.0);
}

#[test]
fn exp_saturates_outside_its_range() {
    assert!(exp(-1000.0) > 0.0 && exp(-1000.0) < 1e-37);
    assert!(exp(1000.0).is_finite() && exp(1000.0) > 1e38);
}

#[test]
fn silu_and_gelu_match_their_f64_formulas() {
    let silu64 = |x: f64| x / (1.0 + (-x).exp());
    // 0.5 x (1 + tanh z) written as x sigmoid(2z): the same function, without f64's tanh
    // rounding to -1 (and the result to 0) long before the true value underflows.
    let gelu64 = |x: f64| {
        let z = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
        x / (1.0 + (-2.0 * z).exp())
    };
    for x in sweep(-60.0, 60.0) {
        let z =
            2.0 * (2.0 / std::f64::consts::PI).sqrt() * (x as f64 + 0.044715 * (x as f64).powi(3));
        // (name, got, want, |exp's argument|): the argument is rounded to f32 before `exp`, so
        // the result carries a relative error of about |argument| * eps on top of exp's own.
        for (name, got, want, arg) in [
            ("silu", silu(x) as f64, silu64(x as f64), (x as f64).abs()),
            ("gelu", gelu_tanh(x) as f64, gelu64(x as f64), z.abs()),
        ] {
            // Plus an absolute 1e-30: exp's clamp to [-86, 88] only changes values below that.
            let tol = 4.0 * f32::EPSILON as f64 * (2.0 + arg) * want.abs() + 1e-30;
            assert!(
                (got - want).abs() <= tol,
                "{name}({x}) = {got}, want {want}"
            );
        }
    }
}

#[test]
fn activations_saturate_and_propagate_nan() {
    assert_eq!(silu(100.0), 100.0);
    assert_eq!(gelu_tanh(20.0), 20.0);
    assert!(silu(-100.0).abs() < 1e-30);
    assert!(gelu_tanh(-20.0).abs() < 1e-30);
    assert!(silu(f32::NAN).is_nan() && gelu_tanh(f32::NAN).is_nan());
}
