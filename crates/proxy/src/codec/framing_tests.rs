use super::*;

/// Feeds `input` one slice at a time (split at `cuts`), collecting the body.
fn decode_all(
    framing: Framing,
    input: &[u8],
    cut: usize,
) -> Result<(Vec<u8>, Vec<u8>), FramingError> {
    let mut d = Decoder::new(framing);
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    let mut fed = 0;
    loop {
        match d.decode(&mut buf)? {
            Decoded::Data(b) => body.extend_from_slice(&b),
            Decoded::End => return Ok((body, buf.to_vec())),
            Decoded::NeedMore if fed >= input.len() => {
                d.at_eof()?;
                return Ok((body, buf.to_vec()));
            }
            Decoded::NeedMore => {
                let n = cut.max(1).min(input.len() - fed);
                buf.extend_from_slice(&input[fed..fed + n]);
                fed += n;
            }
        }
    }
}

#[test]
fn length_stops_at_the_end_and_leaves_the_rest() {
    for cut in [1, 3, 100] {
        let (body, rest) = decode_all(Framing::Length(5), b"helloGET / HTTP/1.1", cut).unwrap();
        assert_eq!(body, b"hello");
        assert!(b"GET / HTTP/1.1".starts_with(&rest), "{rest:?}");
    }
    assert_eq!(
        decode_all(Framing::Length(10), b"short", 100),
        Err(FramingError::Truncated)
    );
    assert!(Decoder::new(Framing::Length(0)).is_done());
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let wire = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
    for cut in [1, 2, 7, 1000] {
        let (body, rest) = decode_all(Framing::Chunked, wire, cut).unwrap();
        assert_eq!(body, b"hello world", "cut {cut}");
        assert!(b"NEXT".starts_with(&rest), "cut {cut}: {rest:?}");
    }
}

#[test]
fn chunked_framing_errors() {
    let cases: [(&[u8], FramingError); 8] = [
        (b"\r\n", FramingError::BadChunkSize),
        (b";ext\r\n", FramingError::BadChunkSize),
        (b"zz\r\n", FramingError::BadChunkSize),
        (b"5\nhello\r\n", FramingError::BadChunkSize),
        (b"5 x\r\nhello\r\n", FramingError::BadChunkSize),
        (b"11111111111111111\r\n", FramingError::BadChunkSize),
        (b"5\r\nhelloXX0\r\n\r\n", FramingError::BadChunkEnd),
        (b"0\r\nbad\ntrailer\r\n\r\n", FramingError::BadTrailers),
    ];
    for (wire, want) in cases {
        assert_eq!(
            decode_all(Framing::Chunked, wire, 1000),
            Err(want),
            "{}",
            String::from_utf8_lossy(wire)
        );
    }
    assert_eq!(
        decode_all(Framing::Chunked, b"5\r\nhel", 1000),
        Err(FramingError::Truncated)
    );
}

#[test]
fn close_delimited_runs_to_eof() {
    let (body, _) = decode_all(Framing::Close, b"all of it", 4).unwrap();
    assert_eq!(body, b"all of it");
}

#[test]
fn chunk_heads_are_hex_lines() {
    assert_eq!(chunk_head(0).as_bytes(), b"0\r\n");
    assert_eq!(chunk_head(255).as_bytes(), b"ff\r\n");
    assert_eq!(
        chunk_head(usize::MAX).as_bytes().len(),
        usize::BITS as usize / 4 + 2
    );
}

proptest::proptest! {
    /// Whatever the bytes, the decoder never panics, never hands out more
    /// than it was given, and a chunked encoding of any body decodes back.
    #[test]
    fn chunked_round_trip(body in proptest::collection::vec(proptest::num::u8::ANY, 0..2000),
                         sizes in proptest::collection::vec(1usize..300, 1..20),
                         cut in 1usize..64) {
        let mut wire = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < body.len() {
            let n = sizes[i % sizes.len()].min(body.len() - at);
            wire.extend_from_slice(chunk_head(n).as_bytes());
            wire.extend_from_slice(&body[at..at + n]);
            wire.extend_from_slice(b"\r\n");
            at += n;
            i += 1;
        }
        wire.extend_from_slice(LAST_CHUNK);
        let (got, rest) = decode_all(Framing::Chunked, &wire, cut).unwrap();
        proptest::prop_assert_eq!(got, body);
        proptest::prop_assert!(rest.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic(wire in proptest::collection::vec(proptest::num::u8::ANY, 0..512), cut in 1usize..32) {
        if let Ok((body, _)) = decode_all(Framing::Chunked, &wire, cut) {
            proptest::prop_assert!(body.len() <= wire.len());
        }
    }
}
