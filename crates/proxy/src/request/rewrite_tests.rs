use super::*;

fn peer<'a>(ip: &str, trusted: &'a [IpNet]) -> Peer<'a> {
    Peer {
        ip: ip.parse().unwrap(),
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

#[test]
fn untrusted_peer_replaces_forwarding_headers() {
    let mut h = map(&[
        ("host", "test.example.com:8080"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=6.6.6.6"),
    ]);
    let p = peer("192.0.2.10", &[]);
    let client = client_ip(&h, &p);
    assert_eq!(client.to_string(), "192.0.2.10");
    let host = h.get("host").cloned();
    add_forwarding(&mut h, &p, client, host.as_ref());
    assert_eq!(h["x-forwarded-for"], "192.0.2.10");
    assert_eq!(h["x-real-ip"], "192.0.2.10");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "test.example.com:8080");
    assert_eq!(
        h["forwarded"],
        "for=192.0.2.10;host=\"test.example.com:8080\";proto=http"
    );
    assert_eq!(h["host"], "test.example.com:8080", "Host is kept exactly");
}

#[test]
fn trusted_peer_appends_and_real_ip_is_rightmost_untrusted() {
    let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
    let mut h = map(&[
        ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
        ("x-forwarded-for", "10.1.1.1"),
        ("forwarded", "for=198.51.100.7"),
    ]);
    let p = peer("10.0.0.5", &trusted);
    let client = client_ip(&h, &p);
    assert_eq!(client.to_string(), "198.51.100.7");
    add_forwarding(&mut h, &p, client, None);
    assert_eq!(h["x-forwarded-for"], "6.6.6.6, 198.51.100.7, 10.0.0.5");
    assert_eq!(h["x-real-ip"], "198.51.100.7");
    assert_eq!(h["forwarded"], "for=198.51.100.7, for=10.0.0.5;proto=http");
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
    add_forwarding(&mut h, &p, p.ip, None);
    assert_eq!(h["forwarded"], "for=\"[2001:db8::1]\";proto=http");
}

#[test]
fn hop_by_hop_headers_are_stripped() {
    let mut h = map(&[
        ("connection", "keep-alive, X-Secret"),
        ("keep-alive", "timeout=5"),
        ("x-secret", "1"),
        ("te", "trailers"),
        ("transfer-encoding", "chunked"),
        ("proxy-connection", "keep-alive"),
        ("upgrade", "websocket"),
        ("x-keep", "yes"),
    ]);
    strip_hop_by_hop(&mut h, false);
    let names: Vec<_> = h.keys().map(|k| k.as_str()).collect();
    assert_eq!(names, vec!["x-keep"]);
}

#[test]
fn upgrade_survives_when_asked() {
    let mut h = map(&[
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
        ("sec-websocket-key", "k"),
    ]);
    assert!(is_upgrade(&h));
    strip_hop_by_hop(&mut h, true);
    assert_eq!(h["upgrade"], "websocket");
    assert_eq!(h["connection"], "upgrade");
    assert_eq!(h["sec-websocket-key"], "k");
    assert!(!is_upgrade(&map(&[("upgrade", "websocket")])));
}

#[test]
fn location_pointing_at_the_server_is_rewritten() {
    let mut h = map(&[("location", "http://10.0.0.7:8080/login?x=1")]);
    rewrite_location(&mut h, "10.0.0.7:8080", "https", Some("www.example.com"));
    assert_eq!(h["location"], "https://www.example.com/login?x=1");
    let mut h = map(&[("location", "http://10.0.0.7:8080")]);
    rewrite_location(&mut h, "10.0.0.7:8080", "http", Some("a:81"));
    assert_eq!(h["location"], "http://a:81/");
    for other in ["http://elsewhere/x", "/relative", "http://10.0.0.7:80801/x"] {
        let mut h = map(&[("location", other)]);
        rewrite_location(&mut h, "10.0.0.7:8080", "http", Some("a"));
        assert_eq!(h["location"], other);
    }
}
