use proptest::prelude::*;

use super::*;

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

#[test]
fn untrusted_peer_replaces_forwarding_headers() {
    let mut h = map(&[
        ("host", "test.example.com:8080"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-prefix", "/evil"),
        ("x-real-ip", "6.6.6.6"),
        ("forwarded", "for=6.6.6.6"),
    ]);
    let p = peer("192.0.2.10", &[]);
    let client = client_ip(&h, &p);
    assert_eq!(client.to_string(), "192.0.2.10");
    request_headers(&mut h, &p, client, &host("test.example.com:8080"), false);
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
}

#[test]
fn trusted_peer_appends_whatever_the_length() {
    let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
    let long: String = (0..100).map(|i| format!("198.51.100.{i}, ")).collect();
    let long = long.trim_end_matches(", ").to_owned();
    let mut h = map(&[
        ("x-forwarded-for", &long),
        ("x-forwarded-for", "10.1.1.1"),
        ("forwarded", "for=198.51.100.7"),
        ("x-forwarded-proto", "https"),
    ]);
    let p = peer("10.0.0.5", &trusted);
    let client = client_ip(&h, &p);
    assert_eq!(client.to_string(), "198.51.100.99");
    request_headers(&mut h, &p, client, &host("x"), false);
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
    let mut h = HeaderMap::new();
    let p = peer("2001:db8::1", &[]);
    forwarding(&mut h, &p, p.ip, &host("[2001:db8::1]:80"));
    assert_eq!(
        h["forwarded"],
        "for=\"[2001:db8::1]\";host=\"[2001:db8::1]:80\";proto=http"
    );
}

#[test]
fn hop_by_hop_headers_are_stripped() {
    let mut h = map(&[
        ("connection", "keep-alive, X-Secret"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "1"),
        ("te", "trailers"),
        ("trailer", "x-t"),
        ("transfer-encoding", "chunked"),
        ("proxy-connection", "keep-alive"),
        ("proxy-authorization", "Basic c2VjcmV0"),
        ("upgrade", "h2c"),
        ("x-keep", "yes"),
    ]);
    strip_hop_by_hop(&mut h, false);
    let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
    assert_eq!(names, vec!["x-keep"]);
}

#[test]
fn hop_by_hop_tags_are_the_hop_by_hop_names() {
    use crate::codec::fields::tag;
    let tags = HOP_BY_HOP
        .iter()
        .fold(0, |set, n| set | tag::bit(tag::of(n.as_str().as_bytes())));
    assert_eq!(tags, HOP_BY_HOP_TAGS);
    assert_eq!(tags.count_ones() as usize, HOP_BY_HOP.len());
}

#[test]
fn upgrade_survives_only_for_websocket() {
    let mut h = map(&[
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-key", "k"),
    ]);
    assert!(is_upgrade(&h));
    strip_hop_by_hop(&mut h, true);
    assert_eq!(h["upgrade"], "websocket");
    assert!(
        !h.contains_key("connection"),
        "the writer says Connection: upgrade"
    );
    assert_eq!(h["sec-websocket-key"], "k");
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

fn head() -> impl Strategy<Value = HeaderMap> {
    proptest::collection::vec((name(), value()), 0..24).prop_map(|pairs| {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                h.append(k, v);
            }
        }
        h
    })
}

const HOP: [&str; 9] = [
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

proptest! {
    /// For any request head from an untrusted peer: no hop-by-hop field,
    /// exactly one Host (the authority we routed on), and forwarding
    /// fields made only of the peer's address, scheme and that Host.
    #[test]
    fn untrusted_heads_go_upstream_clean(mut h in head(), last in 0u8..=255) {
        let before = h.clone();
        let p = peer(&format!("192.0.2.{last}"), &[]);
        let client = client_ip(&h, &p);
        prop_assert_eq!(client, p.ip);
        request_headers(&mut h, &p, client, &host("app.example:8080"), false);
        for n in HOP {
            prop_assert!(!h.contains_key(n), "{} forwarded", n);
        }
        // Fields named by Connection are gone too.
        for t in tokens(&before, &header::CONNECTION) {
            if let Ok(n) = HeaderName::from_bytes(t.as_bytes()) {
                let ours = n == header::HOST || n.as_str().starts_with("x-forwarded-")
                    || n == header::FORWARDED || n == X_REAL_IP;
                prop_assert!(ours || !h.contains_key(&n), "{} named by Connection survived", n);
            }
        }
        prop_assert_eq!(h.get_all(header::HOST).iter().count(), 1);
        prop_assert_eq!(&h["host"], "app.example:8080");
        let ip = p.ip.to_string();
        prop_assert_eq!(h.get_all(&X_FORWARDED_FOR).iter().count(), 1);
        prop_assert_eq!(&h[&X_FORWARDED_FOR], ip.as_str());
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
    fn trusted_chains_are_appended_to(mut h in head()) {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let incoming = joined(&h, &X_FORWARDED_FOR);
        let p = peer("10.0.0.5", &trusted);
        let client = client_ip(&h, &p);
        request_headers(&mut h, &p, client, &host("a"), false);
        let want = match incoming {
            Some(prev) => format!("{prev}, 10.0.0.5"),
            None => "10.0.0.5".to_owned(),
        };
        prop_assert_eq!(h[&X_FORWARDED_FOR].to_str().unwrap(), want);
        prop_assert_eq!(h.get_all(header::HOST).iter().count(), 1);
        for n in HOP {
            prop_assert!(!h.contains_key(n));
        }
    }
}
