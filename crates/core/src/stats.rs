//! Small statistics: mean and sample standard deviation.

/// Arithmetic mean; 0 for an empty slice.
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (n − 1 in the denominator, as llama-bench); 0 below 2 samples.
pub fn stddev(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
    var.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sd() {
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert_eq!(mean(&xs), 5.0);
        assert!((stddev(&xs) - 2.138089935).abs() < 1e-6);
        assert_eq!(stddev(&[1.0]), 0.0);
    }
}

/// A proportion k/n with lm-eval's standard error and a Wilson 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Proportion {
    pub n: u64,
    pub k: f64,
    pub value: f64,
    /// Sample standard error of the mean, as lm-eval: sqrt(p(1-p)/(n-1)).
    pub stderr: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

pub fn proportion(k: f64, n: u64) -> Proportion {
    if n == 0 {
        return Proportion {
            n,
            k,
            value: 0.0,
            stderr: 0.0,
            ci_low: 0.0,
            ci_high: 0.0,
        };
    }
    let nf = n as f64;
    let p = k / nf;
    let stderr = if n > 1 {
        (p * (1.0 - p) / (nf - 1.0)).sqrt()
    } else {
        0.0
    };
    let (low, high) = wilson(p, nf, Z95);
    Proportion {
        n,
        k,
        value: p,
        stderr,
        ci_low: low,
        ci_high: high,
    }
}

/// The Wilson score interval for a proportion `p` of `n` trials.
pub fn wilson(p: f64, n: f64, z: f64) -> (f64, f64) {
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((center - half).max(0.0), (center + half).min(1.0))
}

#[cfg(test)]
mod proportion_tests {
    use super::*;

    #[test]
    fn wilson_matches_reference_values() {
        // statsmodels proportion_confint(50, 100, method="wilson") = (0.4038, 0.5962)
        let p = proportion(50.0, 100);
        assert!((p.ci_low - 0.403_831).abs() < 1e-5 && (p.ci_high - 0.596_169).abs() < 1e-5);
        // Edge: 0 of 10 → (0, 0.2775)
        let p = proportion(0.0, 10);
        assert_eq!(p.ci_low, 0.0);
        assert!((p.ci_high - 0.277_532).abs() < 1e-5);
        assert!((proportion(3.0, 4).stderr - (0.75f64 * 0.25 / 3.0).sqrt()).abs() < 1e-12);
    }
}

/// McNemar's exact test for paired binary outcomes: `b` items right only in the first
/// condition, `c` right only in the second. Two-sided p = min(1, 2·P[X ≤ min(b, c)]) with
/// X ~ Binomial(b + c, 1/2); 1 when there are no discordant pairs.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // Sum the binomial pmf in log space (n can be in the thousands).
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut cdf = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        cdf += (ln_choose + ln_half_n).exp();
    }
    (2.0 * cdf).min(1.0)
}

#[cfg(test)]
mod mcnemar_tests {
    use super::mcnemar_exact;

    #[test]
    fn matches_reference_values() {
        // scipy.stats.binomtest(1, 10, 0.5).pvalue = 0.021484375
        assert!((mcnemar_exact(1, 9) - 0.021_484_375).abs() < 1e-12);
        assert!((mcnemar_exact(9, 1) - 0.021_484_375).abs() < 1e-12);
        // b = c gives p = 1
        assert_eq!(mcnemar_exact(5, 5), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // binomtest(40, 100).pvalue = 0.056887933640980784
        assert!((mcnemar_exact(40, 60) - 0.056_887_933_640_980_78).abs() < 1e-9);
    }
}
