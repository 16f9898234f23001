use proptest::prelude::*;

use http::header::{self, HeaderName};
use http::HeaderMap;

use super::*;
use crate::request::test_heads::{mixed_case, HOP};

static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

fn peer<'a>(ip: &str, trusted: &'a [IpNet]) -> Peer<'a> {
    let ip: IpAddr = ip.parse().unwrap();
    Peer {
        ip,
        // Leaked: a test peer lives as long as the test.
        text: Box::leak(Box::new(ip_text(ip))),
        tls: false,
        trusted,
    }
}

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn host(v: &str) -> HeaderValue {
    HeaderValue::from_str(v).unwrap()
}

fn fields(pairs: &[(&str, &str)]) -> Fields {
    let lines: String = pairs.iter().map(|(n, v)| format!("{n}: {v}\r\n")).collect();
    Fields::parse_lines(format!("{lines}\r\n").as_bytes())
}

/// The fields that go upstream for a request with `f`, as a map.
fn upstream(
    f: &Fields,
    p: &Peer<'_>,
    client: IpAddr,
    host: &HeaderValue,
    upgrade: bool,
) -> HeaderMap {
    let fwd = Forwarding::new(f, p, client, host, upgrade);
    let mut out = HeaderMap::new();
    for (n, v) in fwd.fields(f) {
        out.append(
            HeaderName::from_bytes(n).unwrap(),
            HeaderValue::from_bytes(v).unwrap(),
        );
    }
    out
}

/// The fields the proxy sets itself.
const OURS: [&str; 6] = [
    "host",
    "x-real-ip",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
];

#[test]
fn untrusted_peer_replaces_forwarding_headers() {
    let f = fields(&[
        ("host", "test.example.com:8080"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-prefix", "/evil"),
        ("x-real-ip", "6.6.6.6"),
        ("X-Forwarded-Host", "evil"),
        ("forwarded", "for=6.6.6.6"),
    ]);
    let p = peer("192.0.2.10", &[]);
    let client = client_ip(&f, &p);
    assert_eq!(client.to_string(), "192.0.2.10");
    let h = upstream(&f, &p, client, &host("test.example.com:8080"), false);
    assert_eq!(h["x-forwarded-for"], "192.0.2.10");
    assert_eq!(h["x-real-ip"], "192.0.2.10");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "test.example.com:8080");
    assert!(!h.contains_key("x-forwarded-prefix"));
    assert_eq!(
        h["forwarded"],
        "for=192.0.2.10;host=\"test.example.com:8080\";proto=http"
    );
    assert_eq!(h["host"], "test.example.com:8080", "Host is kept exactly");
    for name in OURS {
        assert_eq!(h.get_all(name).iter().count(), 1, "{name}");
    }
}

#[test]
fn trusted_peer_appends_whatever_the_length() {
    let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
    let long: String = (0..100).map(|i| format!("198.51.100.{i}, ")).collect();
    let long = long.trim_end_matches(", ").to_owned();
    let f = fields(&[
        ("x-forwarded-for", &long),
        ("x-forwarded-for", "10.1.1.1"),
        ("forwarded", "for=198.51.100.7"),
        ("x-forwarded-proto", "https"),
    ]);
    let p = peer("10.0.0.5", &trusted);
    let client = client_ip(&f, &p);
    assert_eq!(client.to_string(), "198.51.100.99");
    let h = upstream(&f, &p, client, &host("x"), false);
    assert_eq!(h["x-forwarded-for"], format!("{long}, 10.1.1.1, 10.0.0.5"));
    assert_eq!(h["x-real-ip"], "198.51.100.99");
    assert_eq!(
        h["x-forwarded-proto"], "https",
        "a trusted proxy's scheme is kept"
    );
    assert_eq!(
        h["forwarded"],
        "for=198.51.100.7, for=10.0.0.5;host=\"x\";proto=http"
    );
}

/// A trusted peer's X-Forwarded-Proto passes and its X-Forwarded-For is
/// appended to, unless its Connection names them: then they stop at this
/// hop and ours take their place.
#[test]
fn a_trusted_scheme_named_by_connection_is_replaced() {
    let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
    let p = peer("10.0.0.5", &trusted);
    let f = fields(&[("X-Forwarded-Proto", "https")]);
    assert_eq!(
        upstream(&f, &p, p.ip, &host("a"), false)["x-forwarded-proto"],
        "https"
    );
    let f = fields(&[
        ("X-Forwarded-Proto", "https"),
        ("Connection", "x-forwarded-proto"),
    ]);
    let h = upstream(&f, &p, p.ip, &host("a"), false);
    let all: Vec<_> = h.get_all("x-forwarded-proto").iter().collect();
    assert_eq!(all, ["http"]);
    let f = fields(&[
        ("X-Forwarded-For", "198.51.100.7"),
        ("Connection", "X-Forwarded-For"),
    ]);
    let h = upstream(&f, &p, p.ip, &host("a"), false);
    assert_eq!(
        h["x-forwarded-for"], "10.0.0.5",
        "the named chain stops here"
    );
}

#[test]
fn garbage_in_x_forwarded_for_stops_the_walk() {
    let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
    let h = map(&[("x-forwarded-for", "not-an-ip, 10.2.2.2")]);
    assert_eq!(
        client_ip(&h, &peer("10.0.0.5", &trusted)).to_string(),
        "10.2.2.2"
    );
}

#[test]
fn ipv6_forwarded_is_quoted() {
    let p = peer("2001:db8::1", &[]);
    let h = upstream(&fields(&[]), &p, p.ip, &host("[2001:db8::1]:80"), false);
    assert_eq!(
        h["forwarded"],
        "for=\"[2001:db8::1]\";host=\"[2001:db8::1]:80\";proto=http"
    );
}

#[test]
fn hop_by_hop_headers_are_stripped() {
    let f = fields(&[
        ("connection", "keep-alive, X-Secret"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "1"),
        ("te", "trailers"),
        ("trailer", "x-t"),
        ("transfer-encoding", "chunked"),
        ("proxy-connection", "keep-alive"),
        ("proxy-authorization", "Basic c2VjcmV0"),
        ("upgrade", "h2c"),
        ("Content-Length", "0"),
        ("Expect", "100-continue"),
        ("X-Keep", "yes"),
    ]);
    let p = peer("192.0.2.1", &[]);
    let h = upstream(&f, &p, p.ip, &host("a"), false);
    let theirs: Vec<_> = h
        .keys()
        .map(|k| k.as_str())
        .filter(|k| !OURS.contains(k))
        .collect();
    assert_eq!(theirs, vec!["x-keep"]);
}

#[test]
fn hop_by_hop_tags_are_the_hop_by_hop_names() {
    use crate::codec::fields::tag;
    let names = HOP.iter().filter(|n| **n != "content-length");
    let tags = names.fold(0, |set, n| set | tag::bit(tag::of(n.as_bytes())));
    assert_eq!(tags, HOP_BY_HOP_TAGS);
    assert_eq!(tags.count_ones() as usize, HOP.len() - 1);
}

#[test]
fn upgrade_survives_only_for_websocket() {
    let f = fields(&[
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-key", "k"),
    ]);
    assert!(is_upgrade(&f));
    let p = peer("192.0.2.1", &[]);
    let h = upstream(&f, &p, p.ip, &host("a"), true);
    assert_eq!(h["upgrade"], "websocket");
    assert!(
        !h.contains_key("connection"),
        "the writer says Connection: upgrade"
    );
    assert_eq!(h["sec-websocket-key"], "k");
    assert!(!upstream(&f, &p, p.ip, &host("a"), false).contains_key("upgrade"));
    assert!(!is_upgrade(&map(&[("upgrade", "websocket")])));
    assert!(!is_upgrade(&map(&[
        ("connection", "upgrade"),
        ("upgrade", "h2c")
    ])));
}

#[test]
fn location_pointing_at_the_server_is_rewritten() {
    let relocated = |loc: &str, host| {
        relocate(loc.as_bytes(), "10.0.0.7:8080", "https", host)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        relocated("http://10.0.0.7:8080/login?x=1", Some("www.example.com")).as_deref(),
        Some("https://www.example.com/login?x=1")
    );
    assert_eq!(
        relocated("http://10.0.0.7:8080", Some("a:81")).as_deref(),
        Some("https://a:81/")
    );
    for other in ["http://elsewhere/x", "/relative", "http://10.0.0.7:80801/x"] {
        assert_eq!(relocated(other, Some("a")), None, "{other}");
    }
    assert_eq!(
        relocated("http://10.0.0.7:8080/x", None),
        None,
        "no Host: as it is"
    );
}

// --- properties -----------------------------------------------------------------

/// Header names a hostile client would try, plus ordinary ones.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("connection".to_owned()),
        Just("keep-alive".to_owned()),
        Just("proxy-connection".to_owned()),
        Just("proxy-authorization".to_owned()),
        Just("te".to_owned()),
        Just("trailer".to_owned()),
        Just("transfer-encoding".to_owned()),
        Just("upgrade".to_owned()),
        Just("host".to_owned()),
        Just("content-length".to_owned()),
        Just("expect".to_owned()),
        Just("x-forwarded-for".to_owned()),
        Just("x-forwarded-host".to_owned()),
        Just("x-forwarded-proto".to_owned()),
        Just("x-forwarded-port".to_owned()),
        Just("x-real-ip".to_owned()),
        Just("forwarded".to_owned()),
        "x-[a-z]{1,8}",
        "[a-z][a-z0-9-]{0,12}",
    ]
}

/// Values, including Connection token lists that name other fields.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,600}",
        "(close|upgrade|keep-alive|x-[a-z]{1,3}|te|host)(, ?(close|upgrade|x-[a-z]{1,3}|forwarded)){0,3}",
        "([0-9]{1,3}\\.){3}[0-9]{1,3}(, ([0-9]{1,3}\\.){3}[0-9]{1,3}){0,5}",
    ]
}

/// A head as a map (names lowercased) and as the client sent it (names
/// in any case).
fn head() -> impl Strategy<Value = (HeaderMap, Fields)> {
    let field = (name(), value(), any::<u32>());
    proptest::collection::vec(field, 0..24).prop_map(|pairs| {
        let mut h = HeaderMap::new();
        let mut lines = String::new();
        for (k, v, case) in pairs {
            if let (Ok(n), Ok(val)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                h.append(n, val);
                let k = mixed_case(&k, case);
                lines.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        lines.push_str("\r\n");
        (h, Fields::parse_lines(lines.as_bytes()))
    })
}

proptest! {
    /// For any request head from an untrusted peer: no hop-by-hop field,
    /// exactly one Host (the authority we routed on), and forwarding
    /// fields made only of the peer's address, scheme and that Host.
    #[test]
    fn untrusted_heads_go_upstream_clean((before, f) in head(), last in 0u8..=255) {
        let p = peer(&format!("192.0.2.{last}"), &[]);
        let client = client_ip(&f, &p);
        prop_assert_eq!(client, p.ip);
        let h = upstream(&f, &p, client, &host("app.example:8080"), false);
        for n in HOP {
            prop_assert!(!h.contains_key(n), "{} forwarded", n);
        }
        // Fields named by Connection are gone too.
        for t in tokens(&before, &names::CONNECTION) {
            if let Ok(n) = HeaderName::from_bytes(t) {
                let ours = n == header::HOST || n.as_str().starts_with("x-forwarded-")
                    || n == header::FORWARDED || n == X_REAL_IP;
                prop_assert!(ours || !h.contains_key(&n), "{} named by Connection survived", n);
            }
        }
        prop_assert_eq!(h.get_all(header::HOST).iter().count(), 1);
        prop_assert_eq!(&h["host"], "app.example:8080");
        let ip = p.ip.to_string();
        prop_assert_eq!(h.get_all(names::X_FORWARDED_FOR.text()).iter().count(), 1);
        prop_assert_eq!(&h[names::X_FORWARDED_FOR.text()], ip.as_str());
        prop_assert_eq!(&h[&X_REAL_IP], ip.as_str());
        prop_assert_eq!(
            h[header::FORWARDED].to_str().unwrap(),
            format!("for={ip};host=\"app.example:8080\";proto=http")
        );
        let fwd: Vec<_> = h.keys().filter(|k| k.as_str().starts_with("x-forwarded-")).map(|k| k.as_str().to_owned()).collect();
        prop_assert_eq!(fwd.len(), 3, "{:?}", fwd);
    }

    /// From a trusted peer the incoming chain is kept, whole, and only the
    /// peer is appended.
    #[test]
    fn trusted_chains_are_appended_to((before, f) in head()) {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let incoming = joined(&before, &names::X_FORWARDED_FOR).map(|c| String::from_utf8(c).unwrap());
        prop_assert_eq!(&incoming, &joined(&f, &names::X_FORWARDED_FOR).map(|c| String::from_utf8(c).unwrap()));
        let p = peer("10.0.0.5", &trusted);
        let client = client_ip(&f, &p);
        prop_assert_eq!(client, client_ip(&before, &p));
        let h = upstream(&f, &p, client, &host("a"), false);
        let want = match incoming {
            Some(prev) => format!("{prev}, 10.0.0.5"),
            None => "10.0.0.5".to_owned(),
        };
        prop_assert_eq!(h[names::X_FORWARDED_FOR.text()].to_str().unwrap(), want);
        prop_assert_eq!(h.get_all(header::HOST).iter().count(), 1);
        for n in HOP {
            prop_assert!(!h.contains_key(n));
        }
    }
}
