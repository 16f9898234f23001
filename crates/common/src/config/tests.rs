//! One test per validation rule: it fires on a bad value, at the right place,
//! and stays quiet on the nearest good value.

use super::*;

const PROXY: &str = r#"
[proxy]
listen = ["127.0.0.1:8000"]
admin = "127.0.0.1:9090"

[[proxy.upstream]]
name = "tomcats"
servers = [
  { addr = "127.0.0.1:8081", weight = 2, node_id = "n1" },
  { addr = "127.0.0.1:8082", weight = 1, node_id = "n2" },
]

[[proxy.route]]
path = "/"
upstream = "tomcats"
"#;

const HA: &str = r#"
[ha]
[[ha.instance]]
name = "VI_1"
interface = "eth0"
virtual_router_id = 51
priority = 100
advert_int = "1s"
auth_pass = "1111"
virtual_ipaddress = ["192.0.2.88/24"]
"#;

const DEMO: &str = r#"
[demo_backend]
node_id = "137server1"
redis = "redis://127.0.0.1:6379/"
"#;

fn parse(text: &str) -> Result<Config, Vec<String>> {
    Config::from_toml_str(text, Path::new("t.toml"))
        .map_err(|e| e.problems().iter().map(ToString::to_string).collect())
}

/// `base` with `from` replaced by `to` (which must occur exactly once).
fn edit(base: &str, from: &str, to: &str) -> String {
    assert_eq!(base.matches(from).count(), 1, "{from:?} must occur once");
    base.replacen(from, to, 1)
}

#[track_caller]
fn assert_ok(text: &str) {
    if let Err(p) = parse(text) {
        panic!("expected a valid config, got:\n{}", p.join("\n"));
    }
}

/// Asserts exactly one problem, on `line`, mentioning `key` and `needle`.
#[track_caller]
fn assert_one(text: &str, line: usize, key: &str, needle: &str) {
    let problems = parse(text).expect_err("expected problems");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    let p = &problems[0];
    assert!(p.starts_with(&format!("t.toml:{line}:")), "wrong line: {p}");
    assert!(p.contains(key), "no key {key} in: {p}");
    assert!(p.contains(needle), "no {needle:?} in: {p}");
}

#[test]
fn shipped_shapes_are_valid() {
    assert_ok(PROXY);
    assert_ok(HA);
    assert_ok(DEMO);
    assert_ok(&format!("{PROXY}{HA}"));
}

#[test]
fn empty_file_names_the_tables() {
    let p = parse("").unwrap_err();
    assert!(p[0].contains("[proxy], [ha], [demo_backend]"), "{p:?}");
}

#[test]
fn syntax_and_type_errors_are_located() {
    assert_one(
        &edit(PROXY, "admin = ", "admim = "),
        4,
        "proxy.admim",
        "unknown field",
    );
    assert_one(
        &edit(PROXY, "\"127.0.0.1:8082\"", "\"127.0.0.1\""),
        10,
        "servers[1].addr",
        "socket address",
    );
    assert_one(&edit(HA, "\"1s\"", "1"), 8, "advert_int", "has no unit");
    assert_one(
        &edit(HA, "priority = 100", "priority = -1"),
        7,
        "priority",
        "",
    );
    assert_one(
        &edit(HA, "\"192.0.2.88/24\"", "\"192.0.2.88\""),
        10,
        "virtual_ipaddress[0]",
        "",
    );
    assert_one(&edit(HA, "name = \"VI_1\"", "name = \"VI_1"), 4, "", "");
}

#[test]
fn all_findings_are_reported_together() {
    let text = edit(
        &edit(HA, "priority = 100", "priority = 300"),
        "virtual_router_id = 51",
        "virtual_router_id = 0",
    );
    let p = parse(&text).unwrap_err();
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].starts_with("t.toml:6:") && p[1].starts_with("t.toml:7:"),
        "{p:#?}"
    );
}

// === [proxy] ===

#[test]
fn proxy_listen_rules() {
    assert_one(
        &edit(PROXY, "listen = [\"127.0.0.1:8000\"]", "listen = []"),
        3,
        "proxy.listen",
        "at least one",
    );
    assert_one(
        &edit(
            PROXY,
            "listen = [\"127.0.0.1:8000\"]",
            "listen = [\"127.0.0.1:8000\", \"127.0.0.1:8000\"]",
        ),
        3,
        "listen[1]",
        "twice",
    );
    assert_one(
        &edit(
            PROXY,
            "admin = \"127.0.0.1:9090\"",
            "admin = \"127.0.0.1:8000\"",
        ),
        4,
        "proxy.admin",
        "own port",
    );
    let tls = edit(
        PROXY,
        "listen = [\"127.0.0.1:8000\"]",
        "listen = [{ addr = \"127.0.0.1:8443\", tls = true }]",
    );
    assert_one(&tls, 3, "listen[0]", "[[proxy.tls]]");
    assert_ok(&edit(
        &tls,
        "[[proxy.upstream]]",
        "[[proxy.tls]]\ncert = \"c.pem\"\nkey = \"k.pem\"\n\n[[proxy.upstream]]",
    ));
}

#[test]
fn proxy_limits_and_timeouts() {
    let with = |k: &str| {
        edit(
            PROXY,
            "admin = \"127.0.0.1:9090\"",
            &format!("admin = \"127.0.0.1:9090\"\n{k}"),
        )
    };
    assert_one(
        &with("max_connections = 0"),
        5,
        "max_connections",
        "at least 1",
    );
    assert_ok(&with("max_connections = 1"));
    assert_one(
        &with("max_header_size = \"512\""),
        5,
        "max_header_size",
        "at least 1k",
    );
    assert_ok(&with("max_header_size = \"1k\""));
    assert_one(
        &with("read_timeout = \"0s\""),
        5,
        "read_timeout",
        "greater than 0s",
    );
    assert_ok(&with("read_timeout = \"1ms\""));
    assert_one(
        &with("client_max_body_size = \"1x\""),
        5,
        "client_max_body_size",
        "suffix",
    );
    assert_ok(&with("client_max_body_size = 0"));
}

#[test]
fn proxy_upstream_names_must_be_unique_and_known() {
    let dup = format!("{PROXY}\n[[proxy.upstream]]\nname = \"tomcats\"\nservers = [{{ addr = \"127.0.0.1:9\" }}]\n");
    assert_one(
        &dup,
        18,
        "proxy.upstream[1].name",
        "duplicate upstream name",
    );
    let other = dup.replace(
        "name = \"tomcats\"\nservers = [{",
        "name = \"static\"\nservers = [{",
    );
    assert_ok(&other);
    assert_one(
        &edit(PROXY, "upstream = \"tomcats\"", "upstream = \"tomcat\""),
        15,
        "route[0].upstream",
        "unknown upstream \"tomcat\"",
    );
    let unnamed = format!(
        "{PROXY}\n[[proxy.upstream]]\nname = \"\"\nservers = [{{ addr = \"127.0.0.1:9\" }}]\n"
    );
    assert_one(&unnamed, 18, "upstream[1].name", "empty");
}

#[test]
fn proxy_server_rules() {
    assert_one(
        &edit(PROXY, "weight = 2", "weight = 0"),
        9,
        "servers[0].weight",
        "1..=1000",
    );
    assert_ok(&edit(PROXY, "weight = 2", "weight = 1000"));
    assert_one(
        &edit(PROXY, "\"127.0.0.1:8082\"", "\"127.0.0.1:8081\""),
        10,
        "servers[1].addr",
        "twice",
    );
    assert_one(
        &edit(PROXY, "\"127.0.0.1:8082\"", "\"127.0.0.1:0\""),
        10,
        "servers[1].addr",
        "port 0",
    );
    assert_one(
        &edit(PROXY, "node_id = \"n1\"", "node_id = \"n.1\""),
        9,
        "node_id",
        "without '.'",
    );
    let all_backup = edit(
        &edit(PROXY, "weight = 2,", "weight = 2, backup = true,"),
        "weight = 1,",
        "weight = 1, backup = true,",
    );
    assert_one(&all_backup, 8, "servers", "every server is a backup");
    assert_ok(&edit(PROXY, "weight = 2,", "weight = 2, backup = true,"));
    assert_one(&edit(PROXY, "servers = [\n  { addr = \"127.0.0.1:8081\", weight = 2, node_id = \"n1\" },\n  { addr = \"127.0.0.1:8082\", weight = 1, node_id = \"n2\" },\n]", "servers = []"), 8, "servers", "at least one server");
}

#[test]
fn proxy_sticky_needs_node_ids() {
    let sticky = edit(
        PROXY,
        "name = \"tomcats\"",
        "name = \"tomcats\"\nbalance = \"sticky\"",
    );
    assert_ok(&sticky);
    let no_ids = sticky
        .replace(", node_id = \"n1\"", "")
        .replace(", node_id = \"n2\"", "");
    assert_one(&no_ids, 8, "upstream[0].balance", "node_id");
    assert_one(
        &edit(
            PROXY,
            "name = \"tomcats\"",
            "name = \"tomcats\"\nbalance = \"random\"",
        ),
        8,
        "balance",
        "unknown variant",
    );
}

#[test]
fn proxy_health_rules() {
    let with = |h: &str| {
        edit(
            PROXY,
            "name = \"tomcats\"",
            &format!("name = \"tomcats\"\nhealth = {h}"),
        )
    };
    assert_ok(&with(
        "{ path = \"/healthz\", interval = \"1s\", fall = 2, rise = 2 }",
    ));
    assert_one(
        &with("{ path = \"healthz\" }"),
        8,
        "health.path",
        "start with '/'",
    );
    assert_one(
        &with("{ interval = \"5ms\" }"),
        8,
        "health.interval",
        "at least 10ms",
    );
    assert_one(&with("{ fall = 0 }"), 8, "health.fall", "at least 1");
    assert_one(&with("{ rise = 0 }"), 8, "health.rise", "at least 1");
    assert_one(
        &with("{ timeout = \"0s\" }"),
        8,
        "health.timeout",
        "greater than 0s",
    );
    assert_one(
        &edit(
            PROXY,
            "name = \"tomcats\"",
            "name = \"tomcats\"\nfail_timeout = \"0s\"",
        ),
        8,
        "fail_timeout",
        "max_fails",
    );
    assert_ok(&edit(
        PROXY,
        "name = \"tomcats\"",
        "name = \"tomcats\"\nfail_timeout = \"0s\"\nmax_fails = 0",
    ));
}

#[test]
fn proxy_route_rules() {
    assert_one(
        &edit(PROXY, "path = \"/\"", "path = \"api\""),
        14,
        "route[0].path",
        "start with '/'",
    );
    assert_one(
        &edit(PROXY, "path = \"/\"", "path = \"/\"\nhost = \"a b\""),
        15,
        "route[0].host",
        "not a host name",
    );
    assert_ok(&edit(
        PROXY,
        "path = \"/\"",
        "path = \"/\"\nhost = \"*.example.com\"",
    ));
    let twice = format!("{PROXY}\n[[proxy.route]]\npath = \"/\"\nupstream = \"tomcats\"\n");
    assert_one(&twice, 17, "route[1]", "same host and path");
    assert_ok(
        &twice
            .replacen(
                "path = \"/\"\nupstream = \"tomcats\"\n",
                "path = \"/\"\nhost = \"a.example\"\nupstream = \"tomcats\"\n",
                2,
            )
            .replacen("host = \"a.example\"\n", "", 1),
    );
    assert_one(
        &edit(
            PROXY,
            "path = \"/\"",
            "path = \"/\"\nadd_headers = { \"Bad Name\" = \"*\" }",
        ),
        15,
        "add_headers",
        "not a valid header name",
    );
    assert_ok(&edit(
        PROXY,
        "path = \"/\"",
        "path = \"/\"\nadd_headers = { \"Access-Control-Allow-Origin\" = \"*\" }",
    ));
    let no_route = PROXY.split("[[proxy.route]]").next().unwrap_or_default();
    let p = parse(no_route).unwrap_err();
    assert!(p[0].contains("no [[proxy.route]]"), "{p:?}");
}

// === [ha] ===

#[test]
fn ha_priority_and_vrid_ranges() {
    assert_one(
        &edit(HA, "priority = 100", "priority = 0"),
        7,
        "priority",
        "reserved",
    );
    assert_one(
        &edit(HA, "priority = 100", "priority = 256"),
        7,
        "priority",
        "1..=254",
    );
    assert_ok(&edit(HA, "priority = 100", "priority = 255"));
    assert_ok(&edit(HA, "priority = 100", "priority = 1"));
    assert_one(
        &edit(HA, "virtual_router_id = 51", "virtual_router_id = 0"),
        6,
        "virtual_router_id",
        "1..=255",
    );
    assert_one(
        &edit(HA, "virtual_router_id = 51", "virtual_router_id = 256"),
        6,
        "virtual_router_id",
        "1..=255",
    );
    assert_ok(&edit(
        HA,
        "virtual_router_id = 51",
        "virtual_router_id = 255",
    ));
}

#[test]
fn ha_advert_int_depends_on_version() {
    assert_one(
        &edit(HA, "\"1s\"", "\"1500ms\""),
        8,
        "advert_int",
        "whole seconds",
    );
    assert_one(
        &edit(HA, "\"1s\"", "\"256s\""),
        8,
        "advert_int",
        "whole seconds",
    );
    assert_ok(&edit(HA, "\"1s\"", "\"3s\""));
    let v3 = edit(HA, "auth_pass = \"1111\"", "version = 3");
    assert_ok(&edit(&v3, "\"1s\"", "\"100ms\""));
    assert_one(
        &edit(&v3, "\"1s\"", "\"5ms\""),
        8,
        "advert_int",
        "multiple of 10ms",
    );
    assert_one(
        &edit(&v3, "\"1s\"", "\"105ms\""),
        8,
        "advert_int",
        "multiple of 10ms",
    );
    assert_one(&edit(&v3, "\"1s\"", "\"41s\""), 8, "advert_int", "40950ms");
    assert_one(
        &edit(HA, "auth_pass = \"1111\"", "version = 4"),
        9,
        "version",
        "use 2 or 3",
    );
}

#[test]
fn ha_auth_rules() {
    assert_one(
        &edit(HA, "auth_pass = \"1111\"", "auth_pass = \"123456789\""),
        9,
        "auth_pass",
        "1 to 8",
    );
    assert_ok(&edit(
        HA,
        "auth_pass = \"1111\"",
        "auth_pass = \"12345678\"",
    ));
    assert_one(
        &edit(
            HA,
            "advert_int = \"1s\"",
            "advert_int = \"1s\"\nversion = 3",
        ),
        10,
        "auth_pass",
        "VRRPv3 has no authentication",
    );
}

#[test]
fn ha_vip_rules() {
    assert_one(
        &edit(HA, "[\"192.0.2.88/24\"]", "[]"),
        10,
        "virtual_ipaddress",
        "at least one",
    );
    assert_one(
        &edit(
            HA,
            "[\"192.0.2.88/24\"]",
            "[\"192.0.2.88/24\", \"192.0.2.88/32\"]",
        ),
        10,
        "virtual_ipaddress[1]",
        "twice",
    );
    assert_one(
        &edit(HA, "[\"192.0.2.88/24\"]", "[\"224.0.0.18/32\"]"),
        10,
        "virtual_ipaddress[0]",
        "cannot be a virtual address",
    );
    assert_one(
        &edit(
            HA,
            "[\"192.0.2.88/24\"]",
            "[\"192.0.2.88/24\", \"2001:db8::1/64\"]",
        ),
        10,
        "virtual_ipaddress",
        "either IPv4 or IPv6",
    );
    let v6 = edit(HA, "[\"192.0.2.88/24\"]", "[\"2001:db8::1/64\"]");
    assert_one(
        &v6,
        10,
        "virtual_ipaddress",
        "IPv6 virtual addresses need version = 3",
    );
    assert_ok(&edit(&v6, "auth_pass = \"1111\"", "version = 3"));
}

#[test]
fn ha_instance_names_and_vrids_unique() {
    let second = |name: &str, vrid: u32, iface: &str| {
        format!("{HA}\n[[ha.instance]]\nname = \"{name}\"\ninterface = \"{iface}\"\nvirtual_router_id = {vrid}\npriority = 100\nvirtual_ipaddress = [\"192.0.2.89/24\"]\n")
    };
    assert_one(
        &second("VI_1", 52, "eth0"),
        13,
        "instance[1].name",
        "duplicate instance name",
    );
    assert_one(
        &second("VI_2", 51, "eth0"),
        15,
        "virtual_router_id",
        "already uses VRID 51",
    );
    assert_ok(&second("VI_2", 52, "eth0"));
    assert_ok(&second("VI_2", 51, "eth1"));
    assert_one(
        &edit(
            HA,
            "interface = \"eth0\"",
            "interface = \"a-very-long-interface\"",
        ),
        5,
        "interface",
        "1 to 15",
    );
    assert_one("[ha]\ninstance = []\n", 2, "ha.instance", "at least one");
}

#[test]
fn ha_track_rules() {
    let with = |t: &str| {
        edit(
            HA,
            "auth_pass = \"1111\"",
            &format!("auth_pass = \"1111\"\ntrack = [ {t} ]"),
        )
    };
    assert_ok(&with(
        "{ http = \"http://127.0.0.1:9090/healthz\", interval = \"500ms\", weight = 0 }",
    ));
    assert_ok(&with("{ process = \"stackd\", weight = 20 }"));
    assert_one(&with("{ interval = \"1s\" }"), 10, "track[0]", "found none");
    assert_one(
        &with("{ http = \"http://x/\", process = \"p\" }"),
        10,
        "track[0]",
        "found http, process",
    );
    assert_one(
        &with("{ http = \"127.0.0.1:9090\" }"),
        10,
        "track[0].http",
        "https:// URL",
    );
    assert_one(
        &with("{ script = \"/bin/true\", interval = \"1ms\" }"),
        10,
        "track[0].interval",
        "at least 10ms",
    );
    assert_one(
        &with("{ script = \"/bin/true\", fall = 0 }"),
        10,
        "track[0].fall",
        "at least 1",
    );
    assert_one(
        &with("{ script = \"/bin/true\", rise = 0 }"),
        10,
        "track[0].rise",
        "at least 1",
    );
    assert_one(
        &with("{ script = \"/bin/true\", timeout = \"0s\" }"),
        10,
        "track[0].timeout",
        "greater than 0s",
    );
    assert_one(
        &with("{ interface = \"eth0\", weight = 254 }"),
        10,
        "track[0].weight",
        "0..=253",
    );
    assert_ok(&with("{ interface = \"eth0\", weight = 253 }"));
}

#[test]
fn ha_notify_rules() {
    assert_one(
        &edit(
            HA,
            "auth_pass = \"1111\"",
            "auth_pass = \"1111\"\nnotify_webhook = \"ftp://x\"",
        ),
        10,
        "notify_webhook",
        "https:// URL",
    );
    assert_ok(&edit(
        HA,
        "auth_pass = \"1111\"",
        "auth_pass = \"1111\"\nnotify_webhook = \"http://127.0.0.1:1/hook\"",
    ));
    let email = |s: &str, to: &str| {
        HA.replace(
            "[ha]\n",
            &format!("[ha]\nemail = {{ smtp_server = \"{s}\", from = \"a@b\", to = [{to}] }}\n"),
        )
    };
    assert_ok(&email("127.0.0.1:25", "\"ops@example.com\""));
    assert_one(
        &email("127.0.0.1", "\"ops@example.com\""),
        3,
        "email.smtp_server",
        "host:port",
    );
    assert_one(
        &email("127.0.0.1:25", ""),
        3,
        "email.to",
        "at least one recipient",
    );
}

// === [demo_backend] ===

#[test]
fn demo_backend_rules() {
    assert_one(
        &edit(DEMO, "\"137server1\"", "\"137.server1\""),
        3,
        "node_id",
        "letters, digits",
    );
    assert_ok(&edit(DEMO, "\"137server1\"", "\"be-1_a\""));
    assert_one(
        &edit(DEMO, "\"redis://127.0.0.1:6379/\"", "\"127.0.0.1:6379\""),
        4,
        "redis",
        "schemes",
    );
    assert_ok(&edit(
        DEMO,
        "\"redis://127.0.0.1:6379/\"",
        "\"redis+sentinel://127.0.0.1:26379/mymaster\"",
    ));
    assert_ok(&edit(DEMO, "\"redis://127.0.0.1:6379/\"", "\"memory://\""));
    let with = |k: &str| format!("{DEMO}{k}\n");
    assert_one(
        &with("session_ttl = \"1500ms\""),
        5,
        "session_ttl",
        "whole seconds",
    );
    assert_one(
        &with("session_ttl = \"0s\""),
        5,
        "session_ttl",
        "whole seconds",
    );
    assert_one(&with("session_ttl = 1800"), 5, "session_ttl", "has no unit");
    assert_ok(&with("session_ttl = \"30m\""));
    assert_one(
        &with("redis_timeout = \"0s\""),
        5,
        "redis_timeout",
        "greater than 0s",
    );
    assert_one(
        &with("cookie = { name = \"a b\" }"),
        5,
        "cookie.name",
        "cookie name",
    );
    assert_one(
        &with("cookie = { path = \"x\" }"),
        5,
        "cookie.path",
        "start with '/'",
    );
    assert_one(
        &with("cookie = { same_site = \"None\" }"),
        5,
        "cookie.same_site",
        "secure = true",
    );
    assert_ok(&with("cookie = { same_site = \"None\", secure = true }"));
}

#[test]
fn missing_required_key_is_located() {
    let p = parse("[demo_backend]\nnode_id = \"a\"\n").unwrap_err();
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with("t.toml:1:") && p[0].contains("missing field `redis`"),
        "{p:?}"
    );
}

// === bounds on what sizes runtime work ===

#[test]
fn ha_bounds_are_located_errors() {
    let with = |extra: &str| {
        edit(
            HA,
            "auth_pass = \"1111\"",
            &format!("auth_pass = \"1111\"\n{extra}"),
        )
    };
    assert_one(
        &with("garp_master_repeat = 0"),
        10,
        "garp_master_repeat",
        "1..=100",
    );
    assert_one(
        &with("garp_master_repeat = 101"),
        10,
        "garp_master_repeat",
        "1..=100",
    );
    assert_ok(&with("garp_master_repeat = 100"));
    assert_one(
        &with("preempt_delay = \"20years\""),
        10,
        "preempt_delay",
        "at most 1h",
    );
    assert_one(
        &with("garp_master_delay = \"2h\""),
        10,
        "garp_master_delay",
        "at most 1h",
    );
    assert_ok(&with("garp_master_delay = \"0s\""));
    assert_one(
        &with("track = [ { script = \"/bin/true\", interval = \"100000000years\" } ]"),
        10,
        "track[0].interval",
        "at most 1h",
    );
    assert_one(
        &with("track = [ { script = \"/bin/true\", fall = 1001 } ]"),
        10,
        "track[0].fall",
        "1..=1000",
    );
    assert_one(
        &with("track = [ { script = \"\" } ]"),
        10,
        "track[0].script",
        "must not be empty",
    );
    let peers: Vec<String> = (1..=33).map(|i| format!("\"192.0.2.{i}\"")).collect();
    assert_one(
        &with(&format!("unicast_peers = [{}]", peers.join(", "))),
        10,
        "unicast_peers",
        "at most 32",
    );
}

#[test]
fn ha_vip_count_fits_one_advert() {
    let vips = |n: usize, v6: bool| -> Vec<String> {
        (0..n)
            .map(|i| {
                if v6 {
                    format!("\"2001:db8::{:x}/64\"", i + 1)
                } else {
                    format!("\"10.0.{}.{}/8\"", i / 200, i % 200 + 1)
                }
            })
            .collect()
    };
    let with =
        |list: Vec<String>| edit(HA, "[\"192.0.2.88/24\"]", &format!("[{}]", list.join(", ")));
    assert_ok(&with(vips(255, false)));
    assert_one(
        &with(vips(256, false)),
        10,
        "virtual_ipaddress",
        "at most 255",
    );
    let v3 = |text: String| edit(&text, "auth_pass = \"1111\"", "version = 3");
    assert_ok(&v3(with(vips(77, true))));
    assert_one(
        &v3(with(vips(78, true))),
        10,
        "virtual_ipaddress",
        "minimum IPv6 MTU",
    );
}

#[test]
fn https_webhooks_and_checks_are_accepted() {
    let with = |extra: &str| {
        edit(
            HA,
            "auth_pass = \"1111\"",
            &format!("auth_pass = \"1111\"\n{extra}"),
        )
    };
    assert_ok(&with(
        "notify_webhook = \"https://hooks.example.com/stackd\"",
    ));
    assert_ok(&with(
        "track = [ { http = \"https://127.0.0.1:9443/healthz\" } ]",
    ));
}

// === typed spec ===

#[test]
fn ha_spec_is_typed() {
    let text = edit(HA, "auth_pass = \"1111\"", "auth_pass = \"1111\"\ntrack = [ { http = \"http://127.0.0.1:9090/healthz\", weight = 20 }, { process = \"stackd\" } ]");
    let loaded = Config::from_toml_str_for(&text, Path::new("t.toml"), Section::Ha).unwrap();
    let spec = loaded.ha_spec.expect("spec");
    let i = &spec.instances[0];
    assert_eq!(
        (i.vrid.get(), i.priority.get(), i.version),
        (51, 100, ha::Version::V2)
    );
    assert_eq!(i.advert_int.centis(), 100);
    assert_eq!(i.auth.map(|a| a.bytes()), Some(*b"1111\0\0\0\0"));
    assert!(
        !format!("{i:?}").contains("1111"),
        "the password never prints"
    );
    assert_eq!(
        i.garp,
        ha::Garp {
            repeat: 5,
            delay: Some(std::time::Duration::from_secs(5)),
            refresh: Some(std::time::Duration::from_secs(2)),
        }
    );
    assert_eq!(
        i.tracks[0].check,
        ha::Check::Http("http://127.0.0.1:9090/healthz".into())
    );
    assert_eq!(i.tracks[0].on_down.weight(), 20);
    assert_eq!(i.tracks[1].on_down, ha::OnDown::Fault);
}

// === secrets in files ===

#[test]
fn auth_pass_file_is_read_checked_and_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("vrrp.pass");
    std::fs::write(&pw, "s3cret\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = edit(
        HA,
        "auth_pass = \"1111\"",
        &format!("auth_pass_file = \"{}\"", pw.display()),
    );
    let loaded = Config::from_toml_str_for(&text, Path::new("t.toml"), Section::Ha).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let spec = loaded.ha_spec.unwrap();
    assert_eq!(
        spec.instances[0].auth.map(|a| a.bytes()),
        Some(*b"s3cret\0\0")
    );

    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loaded = Config::from_toml_str_for(&text, Path::new("t.toml"), Section::Ha).unwrap();
    let w = loaded
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        w.starts_with("t.toml:9:") && w.contains("every user can read it (mode 0644)"),
        "{w}"
    );

    std::fs::write(&pw, "123456789\n").unwrap();
    assert_one(&text, 9, "auth_pass_file", "1 to 8 ASCII");
    let missing = edit(
        HA,
        "auth_pass = \"1111\"",
        "auth_pass_file = \"/nonexistent/pw\"",
    );
    assert_one(&missing, 9, "auth_pass_file", "cannot read /nonexistent/pw");
    let both = edit(
        HA,
        "auth_pass = \"1111\"",
        "auth_pass = \"1111\"\nauth_pass_file = \"/x\"",
    );
    assert_one(&both, 10, "auth_pass_file", "not both");
}

#[test]
fn a_world_readable_config_with_an_inline_password_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stackd.toml");
    std::fs::write(&path, HA).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let loaded = Config::check(&path).unwrap();
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].key.ends_with("auth_pass"),
        "{:?}",
        loaded.warnings
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(Config::check(&path).unwrap().warnings.is_empty());
}

// === each subcommand fails only on its own table ===

#[test]
fn a_proxy_typo_does_not_stop_ha() {
    let text = format!("{}{HA}", edit(PROXY, "admin = ", "admim = "));
    let origin = Path::new("t.toml");
    let ha = Config::from_toml_str_for(&text, origin, Section::Ha).unwrap();
    assert!(
        ha.config.proxy.is_none(),
        "a broken table is handed to nobody"
    );
    assert!(ha.ha_spec.is_some());
    assert_eq!(ha.warnings.len(), 1, "{:?}", ha.warnings);
    assert!(
        ha.warnings[0].to_string().contains("proxy.admim"),
        "{}",
        ha.warnings[0]
    );
    let e = Config::from_toml_str_for(&text, origin, Section::Proxy).unwrap_err();
    assert!(e.to_string().contains("unknown field `admim`"), "{e}");
    assert!(
        Config::from_toml_str(&text, origin).is_err(),
        "check still fails"
    );
    // A semantic error in [proxy] is the same story.
    let text = format!(
        "{}{HA}",
        edit(PROXY, "upstream = \"tomcats\"", "upstream = \"nope\"")
    );
    assert!(Config::from_toml_str_for(&text, origin, Section::Ha).is_ok());
    assert!(Config::from_toml_str_for(&text, origin, Section::Proxy).is_err());
}

#[test]
fn unknown_tables_and_missing_tables() {
    let origin = Path::new("t.toml");
    let text = format!("[proxxy]\nlisten = []\n{HA}");
    let ha = Config::from_toml_str_for(&text, origin, Section::Ha).unwrap();
    assert!(
        ha.warnings[0]
            .to_string()
            .contains("unknown table [proxxy]"),
        "{:?}",
        ha.warnings
    );
    assert!(parse(&text).unwrap_err()[0].contains("unknown table [proxxy]"));
    let e = Config::from_toml_str_for(HA, origin, Section::DemoBackend).unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::MissingSection {
                section: "demo_backend",
                ..
            }
        ),
        "{e}"
    );
    // A syntax error stops everyone: nothing can be read.
    assert!(Config::from_toml_str_for(&format!("{HA}\n[proxy\n"), origin, Section::Ha).is_err());
}

#[test]
fn a_service_does_not_open_another_services_secret_files() {
    let text = format!(
        "{PROXY}{}",
        edit(
            HA,
            "auth_pass = \"1111\"",
            "auth_pass_file = \"/nonexistent/vrrp.pass\""
        )
    );
    let origin = Path::new("t.toml");
    let proxy = Config::from_toml_str_for(&text, origin, Section::Proxy).unwrap();
    assert!(proxy.warnings.is_empty(), "{:?}", proxy.warnings);
    assert!(proxy.ha_spec.is_none());
    let e = Config::from_toml_str_for(&text, origin, Section::Ha).unwrap_err();
    assert!(
        e.to_string().contains("cannot read /nonexistent/vrrp.pass"),
        "{e}"
    );
    assert!(
        Config::from_toml_str(&text, origin).is_err(),
        "check opens every file"
    );
}

// --- a value that does not parse never hides the others (recover.rs) ---

#[test]
fn a_bad_address_does_not_hide_a_bad_priority() {
    // The README's promise, in the issue's words: `virtual_ipaddress = ["not-an-ip"]`
    // used to hide `priority = 300`.
    let text = edit(
        &edit(HA, "priority = 100", "priority = 300"),
        "\"192.0.2.88/24\"",
        "\"not-an-ip\"",
    );
    let p = parse(&text).unwrap_err();
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(
        p[0].starts_with("t.toml:7:12: ha.instance[0].priority: 300 is outside"),
        "{p:#?}"
    );
    assert!(
        p[1].starts_with("t.toml:10:22: ha.instance[0].virtual_ipaddress[0]:"),
        "{p:#?}"
    );
}

#[test]
fn several_values_that_do_not_parse_are_all_reported() {
    let text = edit(
        &edit(
            &edit(HA, "priority = 100", "priority = \"high\""),
            "advert_int = \"1s\"",
            "advert_int = 1",
        ),
        "virtual_router_id = 51",
        "virtual_router_id = 51\nbogus = true",
    );
    let p = parse(&text).unwrap_err();
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(
        p[0].contains("ha.instance[0].bogus: unknown field"),
        "{p:#?}"
    );
    assert!(p[1].contains("ha.instance[0].priority:"), "{p:#?}");
    assert!(p[2].contains("ha.instance[0].advert_int:"), "{p:#?}");
}

#[test]
fn a_missing_key_does_not_hide_a_bad_value_elsewhere_in_the_array() {
    let text = edit(
        &edit(PROXY, "\"127.0.0.1:8081\"", "\"nowhere\""),
        "weight = 1, node_id",
        "weight = 0, node_id",
    );
    let p = parse(&text).unwrap_err();
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p[0].contains("servers[0].addr"), "{p:#?}");
    assert!(
        p[1].contains("servers[1].weight: weight 0 is outside"),
        "{p:#?}"
    );
    let p = parse("[demo_backend]\nnode_id = \"\"\nsession_ttl = 5\n").unwrap_err();
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(
        p.iter().any(|l| l.contains("missing field `redis`")),
        "{p:#?}"
    );
    assert!(
        p.iter().any(|l| l.contains("demo_backend.session_ttl")),
        "{p:#?}"
    );
    assert!(
        p.iter().any(|l| l.contains("demo_backend.node_id")),
        "{p:#?}"
    );
}

// --- access_log: a format, or a file and a format ---

#[test]
fn access_log_is_a_format_or_a_file() {
    let with = |v: &str| {
        edit(
            PROXY,
            "admin = \"127.0.0.1:9090\"",
            &format!("admin = \"127.0.0.1:9090\"\naccess_log = {v}"),
        )
    };
    let cfg = parse(&with("\"json\"")).unwrap();
    let log = &cfg.proxy.unwrap().access_log;
    assert_eq!(
        (log.format, log.path.as_deref()),
        (proxy::AccessLog::Json, None)
    );
    let cfg = parse(&with("{ path = \"/var/log/stackd/access.log\" }")).unwrap();
    let log = &cfg.proxy.unwrap().access_log;
    assert_eq!(
        (log.format, log.path.as_deref()),
        (
            proxy::AccessLog::Combined,
            Some(std::path::Path::new("/var/log/stackd/access.log"))
        )
    );
    assert_one(
        &with("{ path = \"/var/log/a.log\", format = \"off\" }"),
        5,
        "proxy.access_log.format",
        "access log that is off",
    );
    assert_one(
        &with("{ path = \"a.log\" }"),
        5,
        "proxy.access_log.path",
        "a.log is relative",
    );
    assert_one(
        &with("{ path = \"/a.log\", fromat = \"json\" }"),
        5,
        "proxy.access_log",
        "unknown field `fromat`",
    );
    assert_one(
        &with("\"common\""),
        5,
        "proxy.access_log",
        "unknown variant `common`",
    );
}
