//! A small seeded generator (SplitMix64). Kept in-house rather than taken from `rand`
//! because runs must be bit-identical across dependency upgrades: a saved seed has to
//! reproduce the same split, initial weights and shuffles forever.

/// The generator; the same seed gives the same numbers on every platform and version.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` (mixed, so nearby seeds give unrelated streams).
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// The next 64 uniformly random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The generator's whole state, to save in a checkpoint; [`from_state`](Self::from_state)
    /// continues the same sequence.
    pub fn state(&self) -> u64 {
        self.0
    }

    /// A generator resumed from a saved [`state`](Self::state).
    pub fn from_state(state: u64) -> Self {
        Rng(state)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn state_round_trip_continues_the_sequence() {
        let mut a = Rng::new(42);
        a.next_u64();
        let mut b = Rng::from_state(a.state());
        let next = |r: &mut Rng| (0..5).map(|_| r.next_u64()).collect::<Vec<_>>();
        assert_eq!(next(&mut a), next(&mut b));
    }
}
