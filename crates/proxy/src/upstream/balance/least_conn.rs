//! `least_conn`: the server with the fewest requests in flight per unit of weight.
//!
//! Loads are compared by cross-multiplication (`a.active * b.weight <
//! b.active * a.weight`) so there is no division and no float. Ties are
//! broken by scanning from a rotating start, so equally loaded servers take
//! turns instead of the first one taking everything (nginx breaks ties with
//! weighted round robin to the same effect).

use super::Candidates;

/// Index of the least loaded usable server; the scan begins at `start % len`.
pub(crate) fn pick<C: Candidates + ?Sized>(c: &C, start: usize) -> Option<usize> {
    let n = c.len();
    if n == 0 {
        return None;
    }
    let mut best: Option<usize> = None;
    for k in 0..n {
        let i = start.wrapping_add(k) % n;
        if !c.usable(i) {
            continue;
        }
        best = match best {
            Some(b) if !less_loaded(c, i, b) => Some(b),
            _ => Some(i),
        };
    }
    best
}

/// Whether `i` carries strictly less load per weight than `j`.
fn less_loaded<C: Candidates + ?Sized>(c: &C, i: usize, j: usize) -> bool {
    let li = u128::from(c.active(i)) * u128::from(c.weight(j).max(1));
    let lj = u128::from(c.active(j)) * u128::from(c.weight(i).max(1));
    li < lj
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn picks_the_least_loaded() {
        let mut t = tier(&[1, 1, 1]);
        t[0].active = 5;
        t[1].active = 2;
        t[2].active = 3;
        for start in 0..6 {
            assert_eq!(pick(&t, start), Some(1));
        }
        t[1].up = false;
        assert_eq!(pick(&t, 0), Some(2));
    }

    #[test]
    fn weight_scales_the_load() {
        let mut t = tier(&[3, 1]);
        t[0].active = 5; // 5/3 per weight
        t[1].active = 2; // 2/1
        assert_eq!(pick(&t, 1), Some(0));
    }

    #[test]
    fn ties_rotate() {
        let t = tier(&[1, 1, 1]);
        let p: Vec<_> = (0..6).map(|s| pick(&t, s).unwrap()).collect();
        assert_eq!(p, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn simulated_load_stays_balanced() {
        // Each pick adds one request; no request finishes: loads must stay within one.
        let mut t = tier(&[1, 1, 1, 1]);
        for s in 0..400 {
            let i = pick(&t, s).unwrap();
            t[i].active += 1;
        }
        assert!(t.iter().all(|x| x.active == 100), "{t:?}");
    }
}
