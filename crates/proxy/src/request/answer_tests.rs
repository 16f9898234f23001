use bytes::BytesMut;
use http::Method;
use proptest::prelude::*;

use super::*;
use crate::request::test_heads::{mixed_case, HOP};
use crate::codec::response::{parse, Parsed};

/// The fields of an upstream head given as its field lines.
fn upstream(lines: &str) -> Fields {
    let wire = format!("HTTP/1.1 200 OK\r\n{lines}\r\n");
    match parse(
        &mut BytesMut::from(wire.as_bytes()),
        64 * 1024,
        &Method::GET,
    ) {
        Ok(Parsed::Head(h)) => h.fields,
        other => panic!("{other:?} from {wire:?}"),
    }
}

fn answer<'r>(status: u16, fields: Fields, added: &'r [(HeaderName, HeaderValue)]) -> Answer<'r> {
    let status = StatusCode::from_u16(status).unwrap();
    Answer::new(status, fields, None, added, None, true)
}

fn sent(a: &Answer<'_>) -> Vec<(String, String)> {
    a.fields()
        .map(|(n, v)| {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (text(n), text(v))
        })
        .collect()
}

#[test]
fn hop_by_hop_and_framing_fields_stop_here() {
    let f = upstream(
        "Connection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\nX-Secret: 1\r\n\
         TE: trailers\r\nTrailer: x-t\r\nProxy-Connection: keep-alive\r\n\
         Upgrade: h2c\r\nContent-Length: 3\r\nContent-Type: text/plain\r\nx-keep: yes\r\n",
    );
    let a = answer(200, f, &[]);
    assert_eq!(
        sent(&a),
        [
            ("Content-Type".into(), "text/plain".into()),
            ("x-keep".into(), "yes".into())
        ],
        "names keep their case; order is the server's"
    );
}

#[test]
fn upgrade_survives_only_in_a_101() {
    let lines = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: k\r\n";
    let a = answer(101, upstream(lines), &[]);
    assert_eq!(
        sent(&a),
        [
            ("Upgrade".into(), "websocket".into()),
            ("Sec-WebSocket-Accept".into(), "k".into())
        ],
        "the writer says Connection: upgrade"
    );
    let a = answer(200, upstream(lines), &[]);
    assert_eq!(sent(&a), [("Sec-WebSocket-Accept".into(), "k".into())]);
}

#[test]
fn location_and_added_fields_replace_the_upstreams() {
    let added = [(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    )];
    let f =
        upstream("Location: http://10.0.0.7:8080/a\r\nX-Frame-Options: SAMEORIGIN\r\nDate: x\r\n");
    let loc = Some(HeaderValue::from_static("https://www.example.com/a"));
    let a = Answer::new(StatusCode::FOUND, f, loc, &added, Some(0), false);
    assert_eq!(
        sent(&a),
        [
            ("Location".into(), "https://www.example.com/a".into()),
            ("Date".into(), "x".into()),
            ("x-frame-options".into(), "DENY".into())
        ]
    );
    assert!(a.has_date());
    assert!(!answer(200, upstream("X-Date: x\r\n"), &[]).has_date());
}

#[test]
fn the_map_for_http2_has_lowercase_names() {
    let a = answer(
        200,
        upstream("X-A: 1\r\nConnection: close\r\nx-a: 2\r\n"),
        &[],
    );
    let m = a.map();
    assert_eq!(m.len(), 2);
    let all: Vec<_> = m.get_all("x-a").iter().collect();
    assert_eq!(all, ["1", "2"]);
}

// --- properties -----------------------------------------------------------------

/// Names a server might send, hop-by-hop ones among them, in any case.
fn name() -> impl Strategy<Value = String> {
    let base = prop_oneof![
        Just("connection".to_owned()),
        Just("keep-alive".to_owned()),
        Just("proxy-connection".to_owned()),
        Just("proxy-authorization".to_owned()),
        Just("te".to_owned()),
        Just("trailer".to_owned()),
        Just("upgrade".to_owned()),
        Just("date".to_owned()),
        Just("set-cookie".to_owned()),
        "x-[a-z]{1,3}",
    ];
    (base, any::<u32>()).prop_map(|(n, mask)| mixed_case(&n, mask))
}

/// Values, including `Connection` lists that name other fields.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[!-~]([ -~]{0,40}[!-~])?",
        "(close|upgrade|keep-alive|x-[a-z]{1,3}|te|date)(, ?(close|Upgrade|X-[a-z]{1,3}|set-cookie)){0,3}",
    ]
}

/// RFC 9110 §7.6.1 stated plainly, names lowercased: the hop-by-hop
/// fields, those `Connection` names, and `Content-Length` stop here.
fn model(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let named: Vec<String> = pairs
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    pairs
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .filter(|(n, _)| !HOP.contains(&n.as_str()) && !named.contains(n))
        .collect()
}

proptest! {
    /// The fields an answer passes on are the model's, whatever the case
    /// of the names, and the HTTP/2 map holds the same.
    #[test]
    fn hop_by_hop_rules_hold(pairs in proptest::collection::vec((name(), value()), 0..16)) {
        let lines: String = pairs.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
        let a = answer(200, upstream(&lines), &[]);
        let mut want = model(&pairs);
        want.sort();
        let mut got: Vec<(String, String)> = sent(&a)
            .into_iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v))
            .collect();
        got.sort();
        prop_assert_eq!(&got, &want);
        let mut mapped: Vec<(String, String)> = a
            .map()
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap().to_owned()))
            .collect();
        mapped.sort();
        prop_assert_eq!(&mapped, &want);
    }
}
