//! Zipf sampling over ranks `0..n`: P(rank k) proportional to 1/(k+1)^s.
//!
//! An inverse-CDF table (one f64 per rank, 8 MB for a million keys) and a
//! binary search per sample. It runs only while the request sequence is
//! built, so exactness and simplicity beat speed here.

use crate::rng::Rng;

#[derive(Debug, Clone)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    /// `n` ranks (> 0), exponent `s` (>= 0; 0 is uniform).
    pub fn new(n: usize, s: f64) -> Zipf {
        assert!(n > 0 && s >= 0.0 && s.is_finite());
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for k in 1..=n {
            total += (k as f64).powf(-s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Zipf { cdf }
    }

    /// A rank in `0..n`; rank 0 is the most frequent.
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }

    /// Probability of rank `k`.
    pub fn probability(&self, k: usize) -> f64 {
        self.cdf[k] - if k == 0 { 0.0 } else { self.cdf[k - 1] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empirical_frequencies_follow_the_law() {
        let zipf = Zipf::new(1000, 1.0);
        let mut rng = Rng::new(1);
        let n = 200_000;
        let mut hits = vec![0u32; 1000];
        for _ in 0..n {
            hits[zipf.sample(&mut rng)] += 1;
        }
        // H(1000) ~ 7.485: rank 0 has ~13.4%, rank 1 half of that, rank 9 a tenth.
        let p0 = hits[0] as f64 / n as f64;
        assert!((p0 - zipf.probability(0)).abs() < 0.005, "p0 = {p0}");
        assert!((zipf.probability(0) - 1.0 / 7.485).abs() < 0.001);
        let ratio = hits[0] as f64 / hits[1] as f64;
        assert!((ratio - 2.0).abs() < 0.1, "rank0/rank1 = {ratio}");
        let ratio = hits[0] as f64 / hits[9] as f64;
        assert!((ratio - 10.0).abs() < 1.0, "rank0/rank9 = {ratio}");
        // Monotone in expectation: the top 10 take far more than the bottom 500.
        let top: u32 = hits[..10].iter().sum();
        let bottom: u32 = hits[500..].iter().sum();
        assert!(top > 3 * bottom, "top {top} bottom {bottom}");
    }

    #[test]
    fn exponent_zero_is_uniform() {
        let zipf = Zipf::new(10, 0.0);
        let mut rng = Rng::new(2);
        let mut hits = [0u32; 10];
        for _ in 0..100_000 {
            hits[zipf.sample(&mut rng)] += 1;
        }
        for h in hits {
            assert!((9_000..11_000).contains(&h), "{hits:?}");
        }
    }
}
