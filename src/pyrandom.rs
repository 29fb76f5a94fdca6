//! CPython's `random.Random` (MT19937 seeded by `init_by_array`, `getrandbits`,
//! `_randbelow`, `sample`), bit for bit, so few-shot examples drawn the way
//! lm-evaluation-harness draws them (`random.Random(1234)`, `rnd.sample(train, 5)` per test
//! item in order) are the same examples.

const N: usize = 624;
const M: usize = 397;

/// Python's `random.Random(seed)` for a non-negative integer seed.
#[derive(Clone)]
pub struct PyRandom {
    mt: [u32; N],
    index: usize,
}

impl std::fmt::Debug for PyRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyRandom")
            .field("index", &self.index)
            .finish()
    }
}

impl PyRandom {
    pub fn new(seed: u64) -> PyRandom {
        // CPython splits |seed| into 32-bit words, least significant first.
        let key: Vec<u32> = if seed >> 32 == 0 {
            vec![seed as u32]
        } else {
            vec![seed as u32, (seed >> 32) as u32]
        };
        let mut r = PyRandom {
            mt: [0; N],
            index: N,
        };
        r.init_by_array(&key);
        r
    }

    fn init_genrand(&mut self, s: u32) {
        self.mt[0] = s;
        for i in 1..N {
            let prev = self.mt[i - 1];
            self.mt[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        self.index = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
        }
        self.mt[0] = 0x8000_0000;
    }

    fn genrand_u32(&mut self) -> u32 {
        if self.index >= N {
            for k in 0..N {
                let y = (self.mt[k] & 0x8000_0000) | (self.mt[(k + 1) % N] & 0x7fff_ffff);
                let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
                self.mt[k] = self.mt[(k + M) % N] ^ (y >> 1) ^ mag;
            }
            self.index = 0;
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `getrandbits(k)` for 1 <= k <= 32.
    pub fn getrandbits(&mut self, k: u32) -> u32 {
        assert!(
            (1..=32).contains(&k),
            "getrandbits supports 1..=32 bits here"
        );
        self.genrand_u32() >> (32 - k)
    }

    /// `_randbelow(n)`: uniform in `0..n` by rejection on `n.bit_length()` bits.
    pub fn randbelow(&mut self, n: u32) -> u32 {
        assert!(n > 0);
        let k = 32 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `sample(range(n), k)`: `k` distinct indices in selection order.
    pub fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        assert!(k <= n && n <= u32::MAX as usize);
        let mut setsize = 21usize;
        if k > 5 {
            setsize += 4usize.pow(((k * 3) as f64).log(4.0).ceil() as u32);
        }
        let mut out = Vec::with_capacity(k);
        if n <= setsize {
            let mut pool: Vec<usize> = (0..n).collect();
            for i in 0..k {
                let j = self.randbelow((n - i) as u32) as usize;
                out.push(pool[j]);
                pool[j] = pool[n - i - 1];
            }
        } else {
            let mut selected = std::collections::HashSet::new();
            for _ in 0..k {
                let mut j = self.randbelow(n as u32) as usize;
                while selected.contains(&j) {
                    j = self.randbelow(n as u32) as usize;
                }
                selected.insert(j);
                out.push(j);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors computed with CPython 3.11.7 (3.8, 3.12, 3.13 agree).
    #[test]
    fn getrandbits_matches_cpython() {
        let mut r = PyRandom::new(1234);
        let got: Vec<u32> = (0..5).map(|_| r.getrandbits(32)).collect();
        assert_eq!(
            got,
            [4150886329, 3342196574, 1892932127, 501869158, 32175636]
        );
    }

    #[test]
    fn multi_word_seed_matches_cpython() {
        let mut r = PyRandom::new((1u64 << 40) + 5);
        let got: Vec<u32> = (0..3).map(|_| r.getrandbits(32)).collect();
        assert_eq!(got, [2166296868, 2220160828, 1153647273]);
        let mut zero = PyRandom::new(0);
        let got: Vec<u32> = (0..3).map(|_| zero.getrandbits(32)).collect();
        assert_eq!(got, [3626764237, 1654615998, 3255389356]);
    }

    #[test]
    fn sample_matches_lm_eval_gsm8k_draws() {
        let mut r = PyRandom::new(1234);
        let expected: [[usize; 5]; 10] = [
            [6374, 3610, 957, 61, 742],
            [7462, 6610, 4769, 286, 5501],
            [5677, 687, 806, 6279, 2905],
            [1939, 142, 252, 6461, 129],
            [2835, 5311, 5105, 3966, 5044],
            [3797, 1216, 747, 1499, 5844],
            [937, 6925, 119, 4121, 3987],
            [7212, 2046, 528, 5466, 4432],
            [3816, 561, 4927, 5530, 728],
            [4219, 4743, 376, 2208, 6753],
        ];
        for e in expected {
            assert_eq!(r.sample(7473, 5), e);
        }
    }

    #[test]
    fn sample_pool_branch_matches_cpython() {
        let mut r = PyRandom::new(1234);
        assert_eq!(r.sample(20, 5), [14, 3, 0, 2, 1]);
        assert_eq!(r.sample(20, 5), [2, 3, 11, 7, 0]);
        assert_eq!(r.sample(20, 5), [0, 19, 11, 15, 14]);
        let mut r = PyRandom::new(1234);
        assert_eq!(r.sample(8, 8), [7, 0, 6, 5, 4, 2, 3, 1]);
        assert_eq!(r.sample(8, 8), [5, 1, 0, 7, 4, 6, 2, 3]);
        let mut r = PyRandom::new(1234);
        assert_eq!(r.sample(7473, 6), [6374, 3610, 957, 61, 742, 7462]);
    }
}
