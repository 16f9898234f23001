//! What the head tests of this module share: the names that stop at
//! this hop, and names in the mixed case a peer may send.

/// RFC 9110 §7.6.1's hop-by-hop fields, `Proxy-Connection`, and
/// `Content-Length` (the writers add their own framing).
pub(crate) const HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// `name` with the letters `mask`'s bits pick in upper case.
pub(crate) fn mixed_case(name: &str, mask: u32) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 32) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}
