//! Timer arithmetic of RFC 3768 §6.1 and RFC 5798 §6.1, pure.
//!
//! The skew makes the highest-priority backup time out first, so backups do
//! not all take over at once. VRRPv2 skews by a fraction of one second
//! whatever the interval; VRRPv3 scales the skew with the master's interval
//! (which is what makes 100 ms adverts fail over in ~350 ms). Computed in
//! microseconds, as keepalived does, so both sides agree to the microsecond.

use std::time::Duration;

use crate::packet::Version;

/// Centiseconds (the v3 wire unit) as a duration.
pub fn centis(cs: u16) -> Duration {
    Duration::from_millis(u64::from(cs) * 10)
}

/// Skew_Time for a router of `priority` whose master advertises every
/// `master_adver_int`.
pub fn skew(version: Version, priority: u8, master_adver_int: Duration) -> Duration {
    let weight = 256 - u64::from(priority);
    match version {
        // RFC 3768 §6.1: Skew_Time = (256 - Priority) / 256 seconds.
        Version::V2 => Duration::from_micros(weight * 1_000_000 / 256),
        // RFC 5798 §6.1: Skew_Time = ((256 - priority) * Master_Adver_Interval) / 256.
        Version::V3 => Duration::from_micros(weight * master_adver_int.as_micros() as u64 / 256),
    }
}

/// Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time (both RFCs).
pub fn master_down(version: Version, priority: u8, master_adver_int: Duration) -> Duration {
    master_adver_int * 3 + skew(version, priority, master_adver_int)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_skew_is_a_fraction_of_a_second() {
        let s = Duration::from_secs(1);
        assert_eq!(skew(Version::V2, 99, s), Duration::from_micros(613_281));
        assert_eq!(
            skew(Version::V2, 255, Duration::from_secs(5)),
            Duration::from_micros(3_906)
        );
        assert_eq!(
            master_down(Version::V2, 100, s),
            Duration::from_micros(3_609_375)
        );
    }

    #[test]
    fn v3_skew_scales_with_the_interval() {
        let i = Duration::from_millis(100);
        assert_eq!(skew(Version::V3, 99, i), Duration::from_micros(61_328));
        assert_eq!(
            master_down(Version::V3, 99, i),
            Duration::from_micros(361_328)
        );
        // Priority 0 would give a full interval of skew; a priority-1 backup is slowest.
        assert!(master_down(Version::V3, 1, i) < i * 4);
    }

    #[test]
    fn centiseconds_as_durations() {
        assert_eq!(centis(10), Duration::from_millis(100));
    }
}
