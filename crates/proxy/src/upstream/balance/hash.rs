//! `ip_hash`: the same client address goes to the same server while it is up.
//!
//! nginx hashes the client into its peer list and rehashes on a down peer. We
//! use weighted rendezvous hashing instead: every (client, server) pair gets a
//! score and the best usable server wins. When a server goes down only its
//! own clients move (deterministically, to their second-best server), and
//! they come back when it returns; other clients never move. Weights scale
//! the share of clients each server gets.
//!
//! Unlike nginx (which hashes the first three octets of IPv4), the whole
//! address is the key, so clients behind one /24 still spread out.

use std::net::IpAddr;

use super::Candidates;

/// Index of the usable server with the best weighted score for `client`.
pub(crate) fn pick<C: Candidates + ?Sized>(c: &C, client: IpAddr) -> Option<usize> {
    let ck = client_key(client);
    let mut best: Option<(usize, f64)> = None;
    for i in 0..c.len() {
        if !c.usable(i) {
            continue;
        }
        let score = weighted_score(mix(ck ^ c.hash_key(i)), c.weight(i));
        if best.is_none_or(|(_, b)| score > b) {
            best = Some((i, score));
        }
    }
    best.map(|(i, _)| i)
}

/// A stable 64-bit key for an address (FNV-1a over its octets; no random seed,
/// so every proxy instance and every restart agrees).
pub(crate) fn client_key(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => fnv1a(&v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => fnv1a(&v4.octets()),
            None => fnv1a(&v6.octets()),
        },
    }
}

/// FNV-1a, 64 bit.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// splitmix64's finalizer: spreads nearby keys over the whole range.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `-w / ln(u)` with `u` in (0, 1): the weighted rendezvous score (higher wins).
fn weighted_score(h: u64, weight: u32) -> f64 {
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -f64::from(weight.max(1)) / u.ln()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn ip(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0xc000_0200 + i))
    }

    #[test]
    fn same_client_same_server() {
        let t = tier(&[1, 1, 1]);
        for i in 0..50 {
            let first = pick(&t, ip(i));
            assert!(first.is_some());
            assert!((0..5).all(|_| pick(&t, ip(i)) == first));
        }
    }

    #[test]
    fn down_server_moves_only_its_clients_and_they_return() {
        let mut t = tier(&[1, 1, 1]);
        let before: Vec<_> = (0..300).map(|i| pick(&t, ip(i)).unwrap()).collect();
        t[1].up = false;
        let during: Vec<_> = (0..300).map(|i| pick(&t, ip(i)).unwrap()).collect();
        for (b, d) in before.iter().zip(&during) {
            assert_ne!(*d, 1);
            if *b != 1 {
                assert_eq!(b, d, "a client of a healthy server moved");
            }
        }
        // Deterministic: the same fallback every time.
        let again: Vec<_> = (0..300).map(|i| pick(&t, ip(i)).unwrap()).collect();
        assert_eq!(during, again);
        t[1].up = true;
        let after: Vec<_> = (0..300).map(|i| pick(&t, ip(i)).unwrap()).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn spreads_by_weight() {
        let t = tier(&[2, 1]);
        let n = 3000;
        let zero = (0..n).filter(|&i| pick(&t, ip(i)) == Some(0)).count();
        // Expected 2000; hashing is not exact, allow a few percent.
        assert!((1850..2150).contains(&zero), "server 0 got {zero} of {n}");
    }

    #[test]
    fn v4_mapped_v6_is_the_same_client() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let v6: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(v4), client_key(v6));
    }
}
