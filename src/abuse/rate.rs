use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

/// Longest window of a rate: a day. Longer ones mean nothing for abuse limits, which are counted
/// in memory and forgotten at each restart, and unbounded ones overflow.
const MAX_WINDOW_SECS: u64 = 86_400;

/// A rate like `20/min`: up to `count` requests at once, replenished evenly over `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub window: Duration,
}

impl FromStr for Rate {
    type Err = String;

    /// Accepts `COUNT/UNIT` with an optional number before the unit: `20/min`, `5/10s`, `100/h`.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("{raw:?} is not a rate like 20/min, 5/10s or 100/h");
        let (count, window) = raw.trim().split_once('/').ok_or_else(invalid)?;
        let count: NonZeroU32 = count.trim().parse().map_err(|_| invalid())?;
        let window = window.trim();
        let split = window
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        let (amount, unit) = window.split_at(split);
        let amount: u64 = if amount.is_empty() {
            1
        } else {
            amount.parse().map_err(|_| invalid())?
        };
        let unit_secs = match unit {
            "s" | "sec" => 1,
            "m" | "min" => 60,
            "h" | "hour" => 3600,
            _ => return Err(invalid()),
        };
        let window_secs = amount
            .checked_mul(unit_secs)
            .filter(|secs| (1..=MAX_WINDOW_SECS).contains(secs))
            .ok_or_else(|| format!("{raw:?}: the window must be 1 second to 24 hours"))?;
        Ok(Self {
            count,
            window: Duration::from_secs(window_secs),
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.count, self.window.as_secs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counts_and_windows() {
        let rate: Rate = "20/min".parse().unwrap();
        assert_eq!(
            (rate.count.get(), rate.window),
            (20, Duration::from_secs(60))
        );
        let rate: Rate = "5/10s".parse().unwrap();
        assert_eq!(
            (rate.count.get(), rate.window),
            (5, Duration::from_secs(10))
        );
        let rate: Rate = " 100 / h ".parse().unwrap();
        assert_eq!(rate.window, Duration::from_secs(3600));
    }

    #[test]
    fn rejects_nonsense() {
        for raw in [
            "",
            "20",
            "0/min",
            "x/min",
            "20/",
            "20/0s",
            "20/fortnight",
            "-1/s",
        ] {
            assert!(raw.parse::<Rate>().is_err(), "{raw:?} was accepted");
        }
    }

    /// `amount * unit` overflowed u64 on these: a panic at start in a debug build, and in a
    /// release build a wrapped, tiny window, so a limit far looser than configured.
    #[test]
    fn refuses_windows_longer_than_a_day() {
        assert!("100/24h".parse::<Rate>().is_ok());
        for raw in [
            "100/25h",
            "1/86401s",
            "1/5124095576030432h",
            "1/307445734561825861min",
        ] {
            assert!(raw.parse::<Rate>().is_err(), "{raw:?} was accepted");
        }
    }
}
