//! Pure parsers for the few `/proc` files behind the standard `process_*`
//! metrics (the names Prometheus' client libraries use, so existing
//! dashboards work). No crate was a fit: `prometheus-client` has no process
//! collector and `procfs` parses far more than these seven numbers need.
//!
//! Each parser takes the file's text and returns `None` when the text is not
//! what the kernel writes, so a surprise never panics the admin page.

/// What `/proc/self/stat` tells (proc(5)); times in clock ticks, sizes as the kernel gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    pub threads: u64,
    /// Ticks after boot at which the process started.
    pub start_ticks: u64,
    pub vsize_bytes: u64,
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses
/// and may itself hold spaces and `)`, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // After ")": field 3 (state) is index 0 here, so field N is index N - 3.
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |field: usize| f.get(field - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime_ticks: num(14)?,
        stime_ticks: num(15)?,
        threads: num(20)?,
        start_ticks: num(22)?,
        vsize_bytes: num(23)?,
        rss_pages: num(24)?,
    })
}

/// The soft "Max open files" limit from `/proc/<pid>/limits`; `None` when unlimited or absent.
pub fn parse_max_fds(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Boot time (Unix seconds) from the `btime` line of `/proc/stat`.
pub fn parse_btime(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real line from this kernel, with a command name that has a space and ')'.
    const STAT: &str = "4242 (stackd) x) S 1 4242 4242 0 -1 4194560 2210 0 0 0 150 37 0 0 20 0 9 0 123456 987654321 2048 18446744073709551615 1 1 0 0 0 0 0 4096 17987 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn stat_fields_are_counted_from_the_last_paren() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(
            s,
            Stat {
                utime_ticks: 150,
                stime_ticks: 37,
                threads: 9,
                start_ticks: 123456,
                vsize_bytes: 987654321,
                rss_pages: 2048,
            }
        );
    }

    #[test]
    fn truncated_or_garbled_stat_is_none() {
        assert_eq!(parse_stat("4242 (stackd) S 1 2"), None);
        assert_eq!(parse_stat("no parens"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn limits_and_btime() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \nMax open files            65536                524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(65536));
        assert_eq!(
            parse_max_fds("Max open files            unlimited  unlimited files"),
            None
        );
        assert_eq!(
            parse_btime("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_btime("cpu 1\n"), None);
    }

    #[test]
    fn this_process_parses() {
        let s = parse_stat(&std::fs::read_to_string("/proc/self/stat").unwrap()).unwrap();
        assert!(s.threads >= 1 && s.rss_pages > 0, "{s:?}");
        let l = std::fs::read_to_string("/proc/self/limits").unwrap();
        assert!(parse_max_fds(&l).is_some_and(|n| n > 0));
        let b = std::fs::read_to_string("/proc/stat").unwrap();
        assert!(parse_btime(&b).is_some_and(|t| t > 1_500_000_000));
    }
}
