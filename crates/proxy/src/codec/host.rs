//! Whether a `Host` value (or a target's authority) is a valid
//! `uri-host [ ":" port ]` (RFC 9110 §7.2, RFC 3986 §3.2.2).
//!
//! Stricter than the grammar in two places, as nginx is: an empty host and
//! a host containing `..` are refused, so no value that could climb a path
//! or select "no host" reaches routing or the upstream.

/// Whether `v` is `host[:port]` with a valid host and port.
pub(crate) fn valid_authority(v: &[u8]) -> bool {
    let (host, port) = split_port(v);
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.iter().all(u8::is_ascii_digit)
            && p.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')) <= 65_535
    });
    port_ok && valid_host(host)
}

/// Splits off `:port` (the last colon outside an IP literal).
fn split_port(v: &[u8]) -> (&[u8], Option<&[u8]>) {
    if v.first() == Some(&b'[') {
        return match v.iter().position(|&b| b == b']') {
            Some(end) if end + 1 == v.len() => (v, None),
            Some(end) if v.get(end + 1) == Some(&b':') => (&v[..=end], Some(&v[end + 2..])),
            // "[::1]x" or no closing bracket: invalid as a whole.
            _ => (b"", None),
        };
    }
    match v.iter().rposition(|&b| b == b':') {
        Some(i) => (&v[..i], Some(&v[i + 1..])),
        None => (v, None),
    }
}

/// Bytes a reg-name or an IPv4 address holds as they are: unreserved and
/// sub-delims (RFC 3986 §3.2.2); `%` starts an escape. A table, because
/// every request's `Host` passes here.
const HOST_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        b += 1;
    }
    t
};

fn valid_host(h: &[u8]) -> bool {
    if h.is_empty() {
        return false;
    }
    if let Some(inner) = h.strip_prefix(b"[").and_then(|r| r.strip_suffix(b"]")) {
        // IPv6 (IPvFuture is not accepted: no one sends it).
        return std::str::from_utf8(inner).is_ok_and(|s| s.parse::<std::net::Ipv6Addr>().is_ok());
    }
    let (mut i, mut prev) = (0, 0u8);
    while let Some(&b) = h.get(i) {
        if b == b'.' && prev == b'.' {
            return false;
        }
        if !HOST_BYTE[usize::from(b)] {
            let escape = b == b'%'
                && h.get(i + 1..i + 3)
                    .is_some_and(|x| x.iter().all(u8::is_ascii_hexdigit));
            if !escape {
                return false;
            }
            i += 2;
        }
        prev = b;
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        for ok in [
            "example.com",
            "EXAMPLE.com:8080",
            "a-b_c~d.example",
            "192.0.2.1:80",
            "[2001:db8::1]",
            "[::1]:443",
            "xn--bcher-kva.example",
            "a%2Eb",
            "a%2E.b",
            "!$&'()*+,;=",
        ] {
            assert!(valid_authority(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            ":80",
            "example.com:",
            "example.com:99999",
            "example.com:8o",
            "exa mple.com",
            "a/b",
            "a\\b",
            "user@host",
            "host..com",
            "[::1",
            "[::1]x",
            "[zz::1]",
            "a%zz",
            "a%2",
            "a\"b",
            "a.%2E..b",
            "[::1..2]",
            "a\x7fb",
            "a\u{e9}b",
        ] {
            assert!(!valid_authority(bad.as_bytes()), "{bad:?}");
        }
    }

    /// The rules as first written, byte by byte, to hold the table to.
    fn reference(h: &[u8]) -> bool {
        if h.is_empty() || h.windows(2).any(|w| w == b"..") {
            return false;
        }
        if h.first() == Some(&b'[') {
            return valid_host(h);
        }
        let mut i = 0;
        while i < h.len() {
            match h[i] {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {}
                b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => {}
                b'%' if h
                    .get(i + 1..i + 3)
                    .is_some_and(|x| x.iter().all(u8::is_ascii_hexdigit)) =>
                {
                    i += 2;
                }
                _ => return false,
            }
            i += 1;
        }
        true
    }

    proptest::proptest! {
        #[test]
        fn the_table_agrees_with_the_rules(
            h in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(b"a.%2E:[]-~!x/@ \x00\x7f".to_vec()),
                    proptest::num::u8::ANY,
                ],
                0..12,
            )
        ) {
            proptest::prop_assert_eq!(valid_host(&h), reference(&h), "{:?}", String::from_utf8_lossy(&h));
        }
    }
}
