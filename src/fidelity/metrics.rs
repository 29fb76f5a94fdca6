//! The numbers of fidelity, computed as llama-perplexity's `--kl-divergence` computes them:
//! per scored token the KL divergence of the quant's next-token distribution from the
//! base's, whether their most likely tokens agree, and both models' negative log-likelihood
//! of the actual next token; over a text their means with standard errors, percentiles of
//! the KL divergence, and the perplexities with their ratio.

use serde::{Deserialize, Serialize};

use super::base::BaseRecord;

/// The argmax of a row of logits and its log-sum-exp (log p(i) = logits[i] − lse): single
/// precision exponentials summed in double, as llama-perplexity.
pub fn log_norm(logits: &[f32]) -> (usize, f64) {
    let mut imax = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[imax] {
            imax = i;
        }
    }
    let max = logits[imax];
    let sum: f64 = logits.iter().map(|&l| (l - max).exp() as f64).sum();
    (imax, max as f64 + sum.ln())
}

/// Width (nats) and number of the log-probability bins that find where a record can stop.
const BIN_WIDTH: f32 = 0.125;
const BINS: usize = 400;

/// The base's record of one position: −log p(next) and its most likely tokens, as many as
/// it takes for the rest to hold at most `tail` of the probability (all when `tail` is 0).
///
/// One pass bins every token's probability by log-probability; the bins whose tokens all
/// fit in the tail are left out unsorted, and only the tokens above them are sorted.
pub fn base_record(logits: &[f32], next: usize, tail: f64) -> BaseRecord {
    let (_, lse) = log_norm(logits);
    let lse32 = lse as f32;
    let bin = |l: f32| ((lse32 - l) / BIN_WIDTH).max(0.0).min((BINS - 1) as f32) as usize;
    let mut candidates: Vec<u32> = if tail > 0.0 {
        let mut mass = vec![0f64; BINS];
        for &l in logits {
            mass[bin(l)] += (l - lse32).exp() as f64;
        }
        // The shallowest bin from which everything deeper fits in the tail.
        let (mut cut, mut deeper) = (BINS, 0.0);
        while cut > 1 && deeper + mass[cut - 1] <= tail {
            cut -= 1;
            deeper += mass[cut];
        }
        (0..logits.len() as u32)
            .filter(|&i| bin(logits[i as usize]) < cut)
            .collect()
    } else {
        (0..logits.len() as u32).collect()
    };
    candidates.sort_unstable_by(|a, b| {
        logits[*b as usize]
            .total_cmp(&logits[*a as usize])
            .then(a.cmp(b))
    });
    let mut top = Vec::with_capacity(candidates.len());
    let mut mass = 0.0;
    for &i in &candidates {
        let lp = logits[i as usize] as f64 - lse;
        top.push((i, lp as f32));
        mass += lp.exp();
        if tail > 0.0 && 1.0 - mass <= tail {
            break;
        }
    }
    BaseRecord {
        nll: (lse - logits[next] as f64) as f32,
        top,
    }
}

/// One scored token compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenCompare {
    pub kld: f64,
    pub same_top: bool,
    pub nll: f64,
}

/// KL(base ‖ quant) at one position from the base's top tokens plus one bucket for the rest
/// of the vocabulary: Σ_top p (log p − log q) + p_rest (log p_rest − log q_rest). Merging
/// tokens into a bucket never raises a KL divergence (the log-sum inequality), so this is a
/// lower bound of the exact value, short by the divergence inside the bucket.
pub fn compare(base: &BaseRecord, logits: &[f32], next: usize) -> TokenCompare {
    let (imax, lse) = log_norm(logits);
    let (mut kld, mut p_top, mut q_top) = (0.0f64, 0.0f64, 0.0f64);
    for &(id, lp) in &base.top {
        let lp = lp as f64;
        let lq = logits[id as usize] as f64 - lse;
        let p = lp.exp();
        kld += p * (lp - lq);
        p_top += p;
        q_top += lq.exp();
    }
    // With the whole vocabulary kept there is no bucket (1 − Σp is rounding, not mass).
    if base.top.len() < logits.len() {
        let p_rest = (1.0 - p_top).max(0.0);
        let q_rest = (1.0 - q_top).max(f64::MIN_POSITIVE);
        if p_rest > 1e-9 {
            kld += p_rest * (p_rest / q_rest).ln();
        }
    }
    TokenCompare {
        kld: kld.max(0.0),
        same_top: base.top.first().is_some_and(|&(id, _)| id as usize == imax),
        nll: lse - logits[next] as f64,
    }
}

/// One chunk's comparison, as stored (resuming skips stored chunks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ChunkStats {
    pub chunk: u32,
    /// KL divergence of every scored token.
    pub kld: Vec<f32>,
    pub same_top: u32,
    pub nll: f64,
    pub nll2: f64,
    pub nll_base: f64,
    pub nll_base2: f64,
    pub nll_nll_base: f64,
    /// Milliseconds of the chunk's decode and comparison, and of the decode alone.
    pub ms: f64,
    #[serde(default)]
    pub decode_ms: f64,
}

impl ChunkStats {
    pub fn add(&mut self, base: &BaseRecord, t: &TokenCompare) {
        let b = base.nll as f64;
        self.kld.push(t.kld as f32);
        self.same_top += u32::from(t.same_top);
        self.nll += t.nll;
        self.nll2 += t.nll * t.nll;
        self.nll_base += b;
        self.nll_base2 += b * b;
        self.nll_nll_base += t.nll * b;
    }
}

/// A value and its standard error.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Est {
    pub value: f64,
    pub se: f64,
}

impl Est {
    /// The 95% interval.
    pub fn ci95(&self) -> (f64, f64) {
        let h = frontier_core::stats::Z95 * self.se;
        (self.value - h, self.value + h)
    }
}

/// A quant's fidelity to its base over a text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Fidelity {
    /// Scored tokens.
    pub n: usize,
    pub kld: Est,
    pub kld_median: f64,
    pub kld_p90: f64,
    pub kld_p99: f64,
    pub kld_max: f64,
    /// Share of tokens whose most likely next token is the base's.
    pub same_top: Est,
    pub ppl: Est,
    pub ppl_base: Est,
    /// ln(PPL(quant) / PPL(base)), and PPL(quant) / PPL(base), PPL(quant) − PPL(base).
    pub ln_ppl_ratio: Est,
    pub ppl_ratio: Est,
    pub ppl_diff: Est,
}

/// Mean and standard error from a sum and a sum of squares (llama-perplexity's
/// `mean_and_uncertainty`: no uncertainty below 11 values).
fn mean_se(sum: f64, sum2: f64, n: usize) -> Est {
    if n == 0 {
        return Est::default();
    }
    let f = sum / n as f64;
    let var = sum2 / n as f64 - f * f;
    let se = if var > 0.0 && n > 10 {
        (var / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    Est { value: f, se }
}

/// Linear interpolation between the sorted values around `fraction` (as llama-perplexity).
fn percentile(sorted: &[f32], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let p = fraction * (sorted.len() - 1) as f64;
    let i = p as usize;
    let t = p - i as f64;
    (1.0 - t) * sorted[i] as f64 + t * sorted[(i + 1).min(sorted.len() - 1)] as f64
}

pub fn summarize(chunks: &[ChunkStats]) -> Fidelity {
    let mut kld: Vec<f32> = chunks.iter().flat_map(|c| c.kld.iter().copied()).collect();
    let n = kld.len();
    let sum = |f: fn(&ChunkStats) -> f64| chunks.iter().map(f).sum::<f64>();
    let k_sum: f64 = kld.iter().map(|&k| k as f64).sum();
    let k_sum2: f64 = kld.iter().map(|&k| (k as f64) * (k as f64)).sum();
    kld.sort_by(|a, b| a.total_cmp(b));
    let same = sum(|c| c.same_top as f64);
    let top = same / n.max(1) as f64;
    let log_ppl = mean_se(sum(|c| c.nll), sum(|c| c.nll2), n);
    let log_base = mean_se(sum(|c| c.nll_base), sum(|c| c.nll_base2), n);
    let cov = if n < 10 {
        0.0
    } else {
        (sum(|c| c.nll_nll_base) / n as f64 - log_ppl.value * log_base.value) / (n - 1) as f64
    };
    let ln_ratio = Est {
        value: log_ppl.value - log_base.value,
        se: (log_ppl.se * log_ppl.se + log_base.se * log_base.se - 2.0 * cov)
            .max(0.0)
            .sqrt(),
    };
    let ppl = Est {
        value: log_ppl.value.exp(),
        se: log_ppl.value.exp() * log_ppl.se,
    };
    let ppl_base = Est {
        value: log_base.value.exp(),
        se: log_base.value.exp() * log_base.se,
    };
    let ratio = ln_ratio.value.exp();
    let ppl_cov = ppl.value * ppl_base.value * cov;
    Fidelity {
        n,
        kld: mean_se(k_sum, k_sum2, n),
        kld_median: percentile(&kld, 0.5),
        kld_p90: percentile(&kld, 0.9),
        kld_p99: percentile(&kld, 0.99),
        kld_max: kld.last().map_or(0.0, |&k| k as f64),
        same_top: Est {
            value: top,
            se: if n > 1 {
                (top * (1.0 - top) / (n - 1) as f64).sqrt()
            } else {
                0.0
            },
        },
        ppl,
        ppl_base,
        ln_ppl_ratio: ln_ratio,
        ppl_ratio: Est {
            value: ratio,
            se: ratio * ln_ratio.se,
        },
        ppl_diff: Est {
            value: ppl.value - ppl_base.value,
            se: (ppl.se * ppl.se + ppl_base.se * ppl_base.se - 2.0 * ppl_cov)
                .max(0.0)
                .sqrt(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kl_exact(p_logits: &[f32], q_logits: &[f32]) -> f64 {
        let (_, lp) = log_norm(p_logits);
        let (_, lq) = log_norm(q_logits);
        p_logits
            .iter()
            .zip(q_logits)
            .map(|(&a, &b)| {
                let lpa = a as f64 - lp;
                lpa.exp() * (lpa - (b as f64 - lq))
            })
            .sum()
    }

    #[test]
    fn all_tokens_kept_gives_the_exact_divergence_and_fewer_a_lower_bound() {
        let p: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32 * 0.7).collect();
        let q: Vec<f32> = p
            .iter()
            .enumerate()
            .map(|(i, &l)| l + ((i % 5) as f32 - 2.0) * 0.1)
            .collect();
        let exact = kl_exact(&p, &q);
        let whole = base_record(&p, 3, 0.0);
        assert_eq!(whole.top.len(), 50);
        let full = compare(&whole, &q, 3);
        assert!(
            (full.kld - exact).abs() < 1e-5 * exact,
            "{} vs {exact}",
            full.kld
        );
        let part = base_record(&p, 3, 0.05);
        let left_out: f64 = 1.0
            - part
                .top
                .iter()
                .map(|&(_, lp)| (lp as f64).exp())
                .sum::<f64>();
        assert!(
            part.top.len() < 50 && left_out <= 0.05 && left_out > 0.0,
            "{left_out}"
        );
        // One token fewer would leave out more than the tail.
        let last = part.top.last().unwrap().1 as f64;
        assert!(left_out + last.exp() > 0.05);
        let bucket = compare(&part, &q, 3);
        assert!(bucket.kld <= exact + 1e-9 && bucket.kld > 0.5 * exact);
        // The same distribution: no divergence, same top, nll equal to the base's.
        let same = compare(&base_record(&p, 7, 0.05), &p, 7);
        assert!(same.kld.abs() < 1e-9 && same.same_top);
        assert!((same.nll - base_record(&p, 7, 0.05).nll as f64).abs() < 1e-5);
    }

    #[test]
    fn summaries_follow_llama_perplexity() {
        let mut c = ChunkStats::default();
        let base = BaseRecord {
            nll: 2.0,
            top: vec![(0, -0.1)],
        };
        for i in 0..20 {
            c.add(
                &base,
                &TokenCompare {
                    kld: i as f64 / 100.0,
                    same_top: i % 4 != 0,
                    nll: 2.5,
                },
            );
        }
        let f = summarize(&[c]);
        assert_eq!(f.n, 20);
        assert!((f.kld.value - 0.095).abs() < 1e-9);
        assert!((f.kld_median - 0.095).abs() < 1e-6);
        assert!((f.kld_max - 0.19).abs() < 1e-6);
        assert!((f.same_top.value - 0.75).abs() < 1e-12);
        assert!((f.ppl.value - 2.5f64.exp()).abs() < 1e-9);
        assert!((f.ppl_ratio.value - 0.5f64.exp()).abs() < 1e-9);
    }
}
