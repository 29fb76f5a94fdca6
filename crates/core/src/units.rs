//! Units in names and in print: bytes and durations for people, parsing of sizes.

use anyhow::{bail, Result};

pub type Bytes = u64;
pub type Millis = f64;
pub type TokensPerSecond = f64;

/// `1.50 GiB`, `512.0 MiB`, `900 B`.
pub fn bytes(n: Bytes) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else if v >= 100.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// `4GiB`, `200MiB`, `1.5GiB`: a size as a name part (column headers).
pub fn bytes_compact(n: Bytes) -> String {
    bytes(n).replace(".00 ", "").replace(' ', "")
}

/// Parses `4GiB`, `4 GB`, `512MiB`, `1.5G`, `1000000`. Binary units (KiB/MiB/GiB and the
/// bare K/M/G) are powers of 1024; KB/MB/GB are powers of 1000.
pub fn parse_bytes(s: &str) -> Result<Bytes> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = match num.parse() {
        Ok(v) => v,
        Err(_) => bail!("'{s}' is not a size (try 4GiB, 512MiB or a number of bytes)"),
    };
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tib" => 1024f64.powi(4),
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        other => bail!("'{s}': unknown size unit '{other}' (use KiB, MiB, GiB, KB, MB, GB)"),
    };
    let bytes = (value * mult).round();
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        bail!("'{s}' is too large a size");
    }
    Ok(bytes as Bytes)
}

/// A size given on the command line (`4GiB`, `512MB`, `1000000`): parsed once with
/// [`parse_bytes`], carried as bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub Bytes);

impl std::str::FromStr for ByteSize {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<ByteSize> {
        parse_bytes(s).map(ByteSize)
    }
}

impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&bytes(self.0))
    }
}

/// Parameter counts as people write them: `134.5M`, `1.71B`.
pub fn params_short(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2}B", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1}M", n / 1e6)
    } else {
        format!("{:.0}K", n / 1e3)
    }
}

/// A duration for people: `45s`, `4m 05s`, `1h 07m`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(900), "900 B");
        assert_eq!(bytes(1536), "1.50 KiB");
        assert_eq!(bytes(4 << 30), "4.00 GiB");
        assert_eq!(duration(45.2), "45s");
        assert_eq!(duration(245.0), "4m 05s");
        assert_eq!(duration(4020.0), "1h 07m");
    }

    #[test]
    fn parses() {
        assert_eq!(parse_bytes("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_bytes("4 GB").unwrap(), 4_000_000_000);
        assert_eq!(parse_bytes("200MiB").unwrap(), 200 << 20);
        assert_eq!(parse_bytes("1.5G").unwrap(), 3 << 29);
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("4 XB").is_err());
    }
}

/// `2026-11-27T13:45:00Z` for seconds since the Unix epoch (UTC, no time zone database).
pub fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod time_tests {
    #[test]
    fn timestamps() {
        assert_eq!(super::utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc_timestamp(1_795_786_200), "2026-11-27T13:30:00Z");
    }
}
