//! Log-softmax over a row of logits, in f64 so long sums of log-probabilities stay exact.

/// `log p(token)` for the distribution `softmax(logits)`.
pub fn log_softmax_at(logits: &[f32], token: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    logits[token] as f64 - max - sum.ln()
}

/// Index of the largest logit (the first one on ties, as llama.cpp's greedy sampler).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_definition() {
        let logits = [1.0f32, 2.0, 3.0];
        let z: f64 = logits.iter().map(|&l| (l as f64).exp()).sum();
        for (i, &l) in logits.iter().enumerate() {
            assert!((log_softmax_at(&logits, i) - ((l as f64).exp() / z).ln()).abs() < 1e-12);
        }
        assert_eq!(argmax(&logits), 2);
    }

    #[test]
    fn stable_for_large_logits() {
        let logits = [1000.0f32, 1000.0];
        assert!((log_softmax_at(&logits, 0) - 0.5f64.ln()).abs() < 1e-12);
    }
}
