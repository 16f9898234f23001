//! nginx's smooth weighted round robin, precomputed.
//!
//! nginx keeps a `current_weight` per peer and, per request, adds each peer's
//! weight, picks the largest, and subtracts the total from the winner. That
//! needs a lock per upstream. The sequence it produces is periodic with
//! period `sum(weights)` (after dividing by their gcd), so we run the
//! algorithm once at config load and walk the resulting table with an atomic
//! cursor: the same interleaving (`5,1,1` gives `a a b a c a a`) without a lock.
//!
//! Down servers are skipped and the cursor advances past them, so the
//! remaining servers keep their relative shares.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::Candidates;

/// Above this period, weights are scaled down to keep the table small.
const MAX_PERIOD: u64 = 1 << 16;

/// One period of the smooth weighted round-robin sequence (server indexes).
#[derive(Clone, Debug, Default)]
pub(crate) struct Table(Box<[u32]>);

// === impl Table ===

impl Table {
    pub(crate) fn new(weights: &[u32]) -> Table {
        let g = weights.iter().copied().fold(0, gcd).max(1);
        let mut w: Vec<u64> = weights.iter().map(|&x| u64::from(x / g)).collect();
        let mut total: u64 = w.iter().sum();
        if total > MAX_PERIOD {
            // Keep proportions approximately; every server keeps a weight of at least 1.
            let scale = total.div_ceil(MAX_PERIOD);
            w.iter_mut().for_each(|x| *x = (*x / scale).max(1));
            total = w.iter().sum();
        }
        let mut current = vec![0i64; w.len()];
        let mut seq = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for _ in 0..total {
            let mut best = 0;
            for i in 0..w.len() {
                current[i] += w[i] as i64;
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total as i64;
            seq.push(best as u32);
        }
        Table(seq.into_boxed_slice())
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Next usable server in the sequence, skipping (and stepping past) unusable ones.
    pub(crate) fn pick<C: Candidates + ?Sized>(
        &self,
        cursor: &AtomicUsize,
        c: &C,
    ) -> Option<usize> {
        let n = self.0.len();
        if n == 0 {
            return None;
        }
        let start = cursor.fetch_add(1, Ordering::Relaxed);
        for k in 0..n {
            let i = self.0[start.wrapping_add(k) % n] as usize;
            if i < c.len() && c.usable(i) {
                if k > 0 {
                    cursor.fetch_add(k, Ordering::Relaxed);
                }
                return Some(i);
            }
        }
        None
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn picks(weights: &[u32], t: &Vec<Srv>, n: usize) -> Vec<usize> {
        let table = Table::new(weights);
        let cursor = AtomicUsize::new(0);
        (0..n).map(|_| table.pick(&cursor, t).unwrap()).collect()
    }

    #[test]
    fn nginx_documented_sequence() {
        // nginx commit 52327e0627f4 ("smooth weighted round-robin"): 5,1,1 -> a a b a c a a.
        assert_eq!(
            picks(&[5, 1, 1], &tier(&[5, 1, 1]), 7),
            vec![0, 0, 1, 0, 2, 0, 0]
        );
    }

    #[test]
    fn two_to_one_is_exact_and_interleaved() {
        let p = picks(&[2, 1], &tier(&[2, 1]), 300);
        assert_eq!(p.iter().filter(|&&i| i == 0).count(), 200);
        assert_eq!(p.iter().filter(|&&i| i == 1).count(), 100);
        // Never two picks of the lighter server in a row, never three of the heavier.
        assert!(p.windows(2).all(|w| w != [1, 1]));
        assert!(p.windows(3).all(|w| w != [0, 0, 0]));
        assert_eq!(&p[..3], &[0, 1, 0]);
    }

    #[test]
    fn equal_weights_alternate() {
        assert_eq!(picks(&[1, 1], &tier(&[1, 1]), 4), vec![0, 1, 0, 1]);
        assert_eq!(picks(&[3, 3], &tier(&[3, 3]), 4), vec![0, 1, 0, 1]);
    }

    #[test]
    fn down_servers_are_skipped_and_shares_kept() {
        let mut t = tier(&[1, 1, 1]);
        t[1].up = false;
        assert_eq!(picks(&[1, 1, 1], &t, 6), vec![0, 2, 0, 2, 0, 2]);
    }

    #[test]
    fn huge_weights_keep_a_small_table() {
        let t = Table::new(&[1000; 200]);
        assert_eq!(t.len(), 200);
        let t = Table::new(&[999, 1000, 7]);
        assert!(t.len() as u64 <= MAX_PERIOD);
    }

    proptest::proptest! {
        #[test]
        fn each_period_matches_weights(ws in proptest::collection::vec(1u32..20, 1..8)) {
            let t = tier(&ws);
            let total: u32 = ws.iter().sum();
            let p = picks(&ws, &t, total as usize * 3);
            for (i, w) in ws.iter().enumerate() {
                let got = p.iter().filter(|&&x| x == i).count() as u32;
                proptest::prop_assert_eq!(got, w * 3);
            }
        }
    }
}
