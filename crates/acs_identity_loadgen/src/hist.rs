//! A latency histogram in the style of HdrHistogram: log-linear buckets with a fixed
//! relative precision, constant-time recording and exact counts.
//!
//! A value below 2^11 ns gets its own bucket; above that, each power of two is split into
//! 1 024 equal buckets, so a reported value is at most 0.1 % above the true one (values
//! are reported as the highest value of their bucket, as HdrHistogram does).

/// Significant bits kept per value.
const BITS: u32 = 11;
/// Buckets per power of two above `2^BITS`.
const HALF: u64 = 1 << (BITS - 1);
/// Largest value recorded exactly enough: 2^40 ns (about 18 minutes); larger ones are clamped.
const MAX_VALUE: u64 = (1 << 40) - 1;
const BUCKETS: usize = ((40 - BITS + 2) as usize) * HALF as usize;

/// Counts of values (nanoseconds) with about three significant digits.
#[derive(Clone, Debug)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; BUCKETS], count: 0, sum: 0, min: u64::MAX, max: 0 }
    }
}

fn index_of(value: u64) -> usize {
    let v = value.min(MAX_VALUE);
    if v < (1 << BITS) {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb + 1 - BITS;
    let mantissa = v >> shift; // in [HALF, 2 * HALF)
    (u64::from(shift) * HALF + mantissa) as usize
}

/// The highest value that lands in bucket `index`.
fn highest_of(index: usize) -> u64 {
    let i = index as u64;
    if i < (1 << BITS) {
        return i;
    }
    let shift = i / HALF - 1;
    let mantissa = i - shift * HALF;
    ((mantissa + 1) << shift) - 1
}

impl Histogram {
    /// Records one value.
    pub(crate) fn record(&mut self, value: u64) {
        self.counts[index_of(value)] += 1;
        self.count += 1;
        self.sum += u128::from(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds every value of `other`.
    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// How many values were recorded.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The exact largest value (0 when empty).
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// The exact smallest value (0 when empty).
    pub(crate) fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    /// The exact mean (0 when empty).
    pub(crate) fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }

    /// The value at quantile `q` (0 < q ≤ 1): the smallest bucket value such that at least
    /// `ceil(q * count)` values are at or below it, capped at the exact maximum.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return highest_of(i).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_monotonic() {
        let mut values: Vec<u64> = (0..5_000u64).chain((1..40).map(|p| 1u64 << p)).collect();
        values.push(MAX_VALUE);
        values.sort_unstable();
        let mut last = 0;
        for v in values {
            let i = index_of(v);
            assert!(i < BUCKETS && i >= last, "{v} -> {i}");
            assert!(highest_of(i) >= v, "bucket of {v} ends at {}", highest_of(i));
            last = i;
        }
        for i in 1..BUCKETS {
            assert_eq!(index_of(highest_of(i - 1) + 1), i, "bucket {i}");
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        for v in 1..=1000 {
            h.record(v);
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.quantile(0.5), 500);
        assert_eq!(h.quantile(0.99), 990);
        assert_eq!(h.quantile(0.999), 999);
        assert_eq!(h.quantile(1.0), 1000);
        assert_eq!(h.min(), 1);
        assert_eq!(h.max(), 1000);
        assert!((h.mean() - 500.5).abs() < 1e-9);
    }

    #[test]
    fn large_values_keep_three_digits() {
        let mut h = Histogram::default();
        // 1 µs .. 100 ms in 1 µs steps.
        for v in 1..=100_000u64 {
            h.record(v * 1_000);
        }
        for (q, want) in [(0.5, 50_000_000u64), (0.99, 99_000_000), (0.999, 99_900_000)] {
            let got = h.quantile(q);
            assert!(got >= want && (got - want) as f64 <= want as f64 * 0.001, "q{q}: {got}");
        }
        assert_eq!(h.quantile(1.0), 100_000_000);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(10);
        b.record(3_000_000);
        b.record(20);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.min(), 10);
        assert_eq!(a.max(), 3_000_000);
        assert_eq!(a.quantile(0.5), 20);
        assert_eq!(Histogram::default().quantile(0.99), 0);
    }
}
