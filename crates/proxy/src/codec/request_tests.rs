use super::*;
use crate::codec::Name;

const MAX: usize = 8192;

fn ok(wire: &str) -> RequestHead {
    match parse(&mut BytesMut::from(wire), MAX) {
        Ok(Some(h)) => h,
        other => panic!("{wire:?}: {other:?}"),
    }
}

fn refused(wire: &str) -> u16 {
    match parse(&mut BytesMut::from(wire), MAX) {
        Err(r) => r.status.as_u16(),
        other => panic!("{wire:?} was accepted: {other:?}"),
    }
}

#[test]
fn framing_and_persistence() {
    let mut buf = BytesMut::from("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    let Ok(Some(h)) = parse(&mut buf, MAX) else {
        panic!("refused");
    };
    assert_eq!((h.framing, h.keep_alive), (Framing::Length(5), true));
    assert_eq!(
        &buf[..],
        b"hello",
        "the head, and only the head, is consumed"
    );
    let h = ok("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n");
    assert_eq!(h.framing, Framing::Chunked);
    let h = ok("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n");
    assert_eq!((h.framing, h.keep_alive), (Framing::Empty, false));
    let h = ok("GET / HTTP/1.0\r\n\r\n");
    assert!(!h.keep_alive, "HTTP/1.0 closes by default");
    let h = ok("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert!(h.keep_alive);
    let h = ok("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(h.framing, Framing::Length(0));
    let h = ok("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n");
    assert!(h.expect_continue);
    let h = ok("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
    assert_eq!(
        h.framing,
        Framing::Length(3),
        "identical repeats are one value"
    );
}

/// Values and the target are slices of the head; an empty value (a slice
/// of nothing) is still a value.
#[test]
fn values_and_target_come_from_the_head() {
    let h = ok("GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-A: one two\r\n\r\n");
    assert_eq!(h.parts.uri, "/a?b=c");
    let value = |n: &'static str| {
        let n = Name::new(n);
        let v = h.parts.fields.values(&n).next().map(<[u8]>::to_vec);
        v
    };
    assert_eq!(value("x-empty").as_deref(), Some(&b""[..]));
    assert_eq!(value("x-a").as_deref(), Some(&b"one two"[..]));
}

#[test]
fn ambiguous_framing_is_refused() {
    for wire in [
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        assert_eq!(refused(wire), 400, "{wire:?}");
    }
    assert_eq!(
        refused("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
        501
    );
    assert_eq!(
        refused("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        501
    );
}

#[test]
fn host_rules() {
    assert_eq!(refused("GET / HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
    assert_eq!(refused("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), 400);
    assert_eq!(refused("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
    assert_eq!(refused("GET / HTTP/1.1\r\nHost: \r\n\r\n"), 400);
    let h = ok("GET http://b.example:81/p?q HTTP/1.1\r\nHost: a.example\r\n\r\n");
    assert_eq!(h.parts.uri.authority().unwrap().as_str(), "b.example:81");
    assert_eq!(h.parts.uri.path_and_query().unwrap().as_str(), "/p?q");
    assert_eq!(
        refused("GET http://u@b.example/ HTTP/1.1\r\nHost: a\r\n\r\n"),
        400
    );
    assert_eq!(
        refused("GET ftp://b.example/ HTTP/1.1\r\nHost: a\r\n\r\n"),
        400
    );
    assert_eq!(refused("GET b.example HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(
        refused("CONNECT b.example:443 HTTP/1.1\r\nHost: a\r\n\r\n"),
        405
    );
    assert_eq!(ok("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").parts.uri, "*");
}

#[test]
fn limits_414_431_and_partial() {
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(MAX));
    assert_eq!(refused(&long_target), 414);
    // Still sending the request line when the limit is hit: 414 too.
    assert_eq!(refused(&long_target[..MAX + 10]), 414);
    let long_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nx-a: {}\r\n\r\n",
        "b".repeat(MAX)
    );
    assert_eq!(refused(&long_header), 431);
    assert_eq!(refused(&long_header[..MAX + 10]), 431);
    let many: String = (0..200).map(|i| format!("x-{i}: v\r\n")).collect();
    assert_eq!(
        refused(&format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n")),
        431
    );
    assert!(matches!(
        parse(&mut BytesMut::from(&b"GET / HTTP/1.1\r\nHo"[..]), MAX),
        Ok(None)
    ));
    assert_eq!(refused("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400);
    assert_eq!(refused("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"), 400);
    assert_eq!(
        refused("GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n"),
        417
    );
}

proptest::proptest! {
    /// No input makes the parser panic, and an accepted head never has
    /// both a length and chunking, nor anything but one Host in HTTP/1.1.
    #[test]
    fn arbitrary_heads(lines in proptest::collection::vec("[ -~]{0,40}", 0..12), cl in 0u8..3, te in 0u8..3) {
        let mut wire = String::from("POST / HTTP/1.1\r\n");
        for l in &lines {
            wire.push_str(l);
            wire.push_str("\r\n");
        }
        for _ in 0..cl { wire.push_str("Content-Length: 4\r\n"); }
        for _ in 0..te { wire.push_str("Transfer-Encoding: chunked\r\n"); }
        wire.push_str("\r\n");
        if let Ok(Some(h)) = parse(&mut BytesMut::from(wire.as_str()), MAX) {
            let has_cl = h.parts.fields.contains(&names::CONTENT_LENGTH);
            let has_te = h.parts.fields.contains(&names::TRANSFER_ENCODING);
            proptest::prop_assert!(!(has_cl && has_te));
            proptest::prop_assert_eq!(h.parts.fields.values(&names::HOST).count(), 1);
        }
    }
}
