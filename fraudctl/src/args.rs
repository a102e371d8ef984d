//! Value parsers for numeric options: clap refuses a bad value with exit code 2 and a
//! message naming the option and the rule, before any work starts.

/// The most rows a generating option accepts: far above any real use, and low enough that
/// the rows fit in memory instead of aborting the process.
pub const MAX_ROWS: usize = 10_000_000;

fn finite(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("must be a number (got {text:?})"))?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(format!(
            "must be a finite number, not NaN or infinity (got {text:?})"
        ))
    }
}

/// A probability strictly between 0 and 1 (`--alpha`).
pub fn probability(text: &str) -> Result<f64, String> {
    let value = finite(text)?;
    if value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(format!(
            "must be between 0 and 1, both excluded (got {text:?})"
        ))
    }
}

/// A finite number, 0 or more (`--min-psi`).
pub fn non_negative(text: &str) -> Result<f64, String> {
    let value = finite(text)?;
    if value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("must be 0 or more (got {text:?})"))
    }
}

/// A finite number above 0 (a cost).
pub fn positive(text: &str) -> Result<f64, String> {
    let value = finite(text)?;
    if value > 0.0 {
        Ok(value)
    } else {
        Err(format!("must be above 0 (got {text:?})"))
    }
}

/// A row count from 0 to [`MAX_ROWS`].
pub fn row_count(text: &str) -> Result<usize, String> {
    let rule = || format!("must be a whole number from 0 to {MAX_ROWS} (got {text:?})");
    let value: u64 = text.trim().parse().map_err(|_| rule())?;
    usize::try_from(value)
        .ok()
        .filter(|v| *v <= MAX_ROWS)
        .ok_or_else(rule)
}

/// A time in RFC 3339 (`2026-11-01T00:00:00Z`, any offset), as UTC (`--since`, `--until`).
pub fn timestamp(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| {
            format!("must be an RFC 3339 time such as 2026-11-01T00:00:00Z (got {text:?})")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_and_out_of_range_values_are_refused() {
        for bad in ["NaN", "nan", "inf", "-inf", "infinity", "1e400"] {
            assert!(non_negative(bad).is_err(), "{bad}");
            assert!(probability(bad).is_err(), "{bad}");
        }
        assert!(non_negative("-0.1").is_err());
        assert_eq!(non_negative("0.2"), Ok(0.2));
        assert!(probability("0").is_err() && probability("1").is_err());
        assert_eq!(probability("0.01"), Ok(0.01));
        assert_eq!(row_count("10000000"), Ok(MAX_ROWS));
        assert!(row_count("10000001").is_err());
        assert!(row_count("18446744073709551615").is_err());
        assert!(row_count("-1").is_err());
        assert!(timestamp("2026-11-01").is_err());
        assert_eq!(
            timestamp("2026-11-01T01:00:00+01:00").map(|t| t.to_rfc3339()),
            Ok("2026-11-01T00:00:00+00:00".to_string())
        );
    }
}
