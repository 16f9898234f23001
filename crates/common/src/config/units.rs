//! Human units in config files: durations (`"250ms"`, `"1s"`, `"30m"`) and
//! byte sizes (`"10m"`, `"128k"`), the way nginx and keepalived users write them.
//!
//! Durations are strings on purpose: a bare `1800` could mean seconds or
//! minutes (the seed's Tomcat session timeout is minutes, Redis TTLs are
//! seconds), and that confusion is what we make impossible.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Parses `"250ms"`, `"1s"`, `"1m30s"`, `"0s"` into a [`Duration`].
///
/// ```
/// use std::time::Duration;
/// assert_eq!(stackd_common::config::parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert!(stackd_common::config::parse_duration("10").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "\"{s}\" has no unit: write \"{t}s\" for seconds or \"{t}ms\" for milliseconds"
        ));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("\"{s}\" is not a duration ({e}); write e.g. \"250ms\", \"1s\", \"30m\"")
    })
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Serde adapter for `Duration` fields: `#[serde(with = "units::duration")]`.
pub mod duration {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"250ms\", \"1s\" or \"30m\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                parse_duration(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                Err(E::custom(format!(
                    "{v} has no unit: write \"{v}s\" for seconds or \"{v}ms\" for milliseconds"
                )))
            }
        }
        d.deserialize_any(V)
    }

    pub fn serialize<S: Serializer>(v: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*v))
    }
}

/// Serde adapter for optional `Duration` fields (absent: `None`).
pub mod opt_duration {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        duration::deserialize(d).map(Some)
    }

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }
}

/// A byte size written like nginx's `client_max_body_size`: `"10m"`, `"128k"`,
/// `"1g"`, or a plain integer of bytes. `0` means "no limit" where a key says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// Parses `"10m"`, `"128k"`, `"1g"`, `"512"` (suffixes are powers of 1024, any case).
    ///
    /// ```
    /// use stackd_common::config::ByteSize;
    /// assert_eq!(ByteSize::parse("10m"), Ok(ByteSize(10 * 1024 * 1024)));
    /// assert!(ByteSize::parse("ten").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (digits, mult) = match t.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => {
                let mult = match c.to_ascii_lowercase() {
                    'k' => 1u64 << 10,
                    'm' => 1 << 20,
                    'g' => 1 << 30,
                    _ => {
                        return Err(format!(
                            "\"{s}\": unknown size suffix '{c}'; use k, m or g (e.g. \"10m\")"
                        ))
                    }
                };
                (&t[..i], mult)
            }
            _ => (t, 1),
        };
        let n: u64 = digits.trim().parse().map_err(|_| {
            format!("\"{s}\" is not a size; write e.g. \"10m\", \"128k\" or a number of bytes")
        })?;
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("\"{s}\" is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n != 0 && n % (1 << 30) == 0 {
            write!(f, "{}g", n >> 30)
        } else if n != 0 && n % (1 << 20) == 0 {
            write!(f, "{}m", n >> 20)
        } else if n != 0 && n % (1 << 10) == 0 {
            write!(f, "{}k", n >> 10)
        } else {
            write!(f, "{n}")
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as \"10m\", \"128k\" or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// A count that stackd sizes itself unless the file gives a number:
/// `"auto"` or a non-negative integer (nginx's `worker_processes auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AutoCount {
    #[default]
    Auto,
    Fixed(usize),
}

impl AutoCount {
    /// The number, with `auto` resolved by `auto`.
    pub fn or_else(self, auto: impl FnOnce() -> usize) -> usize {
        match self {
            AutoCount::Auto => auto(),
            AutoCount::Fixed(n) => n,
        }
    }
}

impl fmt::Display for AutoCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AutoCount::Auto => f.write_str("auto"),
            AutoCount::Fixed(n) => write!(f, "{n}"),
        }
    }
}

impl<'de> Deserialize<'de> for AutoCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AutoCount;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"auto\" or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AutoCount, E> {
                if v.trim().eq_ignore_ascii_case("auto") {
                    return Ok(AutoCount::Auto);
                }
                Err(E::custom(format!(
                    "\"{v}\" is not a count; write \"auto\" or a number"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AutoCount, E> {
                usize::try_from(v)
                    .map(AutoCount::Fixed)
                    .map_err(|_| E::custom("a count cannot be negative"))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for AutoCount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AutoCount::Auto => s.serialize_str("auto"),
            AutoCount::Fixed(n) => s.serialize_u64(*n as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_auto_or_numbers() {
        #[derive(Deserialize, Serialize)]
        struct T {
            n: AutoCount,
        }
        let t: T = toml::from_str("n = \"auto\"").unwrap();
        assert_eq!(t.n, AutoCount::Auto);
        assert_eq!(t.n.or_else(|| 7), 7);
        let t: T = toml::from_str("n = 3").unwrap();
        assert_eq!(t.n.or_else(|| 7), 3);
        let e = toml::from_str::<T>("n = \"many\"")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("write \"auto\" or a number"), "{e}");
        assert!(toml::from_str::<T>("n = -1").is_err());
        assert_eq!(
            toml::to_string(&T { n: AutoCount::Auto }).unwrap().trim(),
            "n = \"auto\""
        );
    }

    #[test]
    fn durations_need_units() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        let e = parse_duration("1800").unwrap_err();
        assert!(e.contains("has no unit"), "{e}");
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn sizes_follow_nginx() {
        assert_eq!(ByteSize::parse("128k"), Ok(ByteSize(128 * 1024)));
        assert_eq!(ByteSize::parse("10M"), Ok(ByteSize(10 << 20)));
        assert_eq!(ByteSize::parse("1g"), Ok(ByteSize(1 << 30)));
        assert_eq!(ByteSize::parse("512"), Ok(ByteSize(512)));
        assert!(ByteSize::parse("10x").is_err());
        assert!(ByteSize::parse("").is_err());
        assert!(ByteSize::parse("99999999999999999g").is_err());
        assert_eq!(ByteSize(10 << 20).to_string(), "10m");
        assert_eq!(ByteSize(1000).to_string(), "1000");
    }
}
