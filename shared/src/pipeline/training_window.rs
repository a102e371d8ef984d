//! The training window: which absorbed rows a retrain trains on besides the waiting ones, so
//! its cost stays bounded as data accumulates (default: all of them).

use chrono::{DateTime, Months, Utc};
use serde::Serialize;

use crate::ports::StoredRecord;

/// Limits on a retrain's training rows; both `None` (the default) trains on every row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TrainingWindow {
    /// At most this many training rows in all, the most recently loaded; the waiting rows
    /// always count, so older rows fill what they leave.
    pub rows: Option<usize>,
    /// Only rows loaded in the last this many calendar months.
    pub months: Option<u32>,
}

impl TrainingWindow {
    pub fn is_unbounded(&self) -> bool {
        self.rows.is_none() && self.months.is_none()
    }

    /// In words, for run descriptions and model cards.
    pub fn describe(&self) -> String {
        match (self.rows, self.months) {
            (None, None) => "all rows".to_string(),
            (Some(rows), None) => format!("the most recent {rows} rows"),
            (None, Some(months)) => format!("rows loaded in the last {months} months"),
            (Some(rows), Some(months)) => {
                format!("the most recent {rows} rows loaded in the last {months} months")
            }
        }
    }
}

/// What the window did to one retrain.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AppliedWindow {
    #[serde(flatten)]
    pub window: TrainingWindow,
    /// Absorbed rows before the window.
    pub absorbed_rows: usize,
    /// Of those, trained on.
    pub absorbed_used: usize,
    /// Left out: older than the months, or beyond the row count.
    pub left_out: usize,
    /// The earliest load time among the absorbed rows trained on.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub oldest_loaded_at: Option<DateTime<Utc>>,
}

/// The absorbed rows to train on beside `waiting_rows` waiting ones, newest first
/// (by load time, then by id), and what was left out.
pub fn select_absorbed<'a>(
    absorbed: &'a [StoredRecord],
    waiting_rows: usize,
    window: &TrainingWindow,
    now: DateTime<Utc>,
) -> (Vec<&'a StoredRecord>, AppliedWindow) {
    let cutoff = window
        .months
        .and_then(|m| now.checked_sub_months(Months::new(m)));
    let mut kept: Vec<&StoredRecord> = absorbed
        .iter()
        .filter(|r| cutoff.is_none_or(|c| r.loaded_at >= c))
        .collect();
    if let Some(rows) = window.rows {
        let room = rows.saturating_sub(waiting_rows);
        if kept.len() > room {
            kept.sort_unstable_by_key(|r| std::cmp::Reverse((r.loaded_at, r.id)));
            kept.truncate(room);
            // Back in id order: the training does not depend on the window's sort.
            kept.sort_unstable_by_key(|r| r.id);
        }
    }
    let applied = AppliedWindow {
        window: *window,
        absorbed_rows: absorbed.len(),
        absorbed_used: kept.len(),
        left_out: absorbed.len() - kept.len(),
        oldest_loaded_at: kept.iter().map(|r| r.loaded_at).min(),
    };
    (kept, applied)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::schema::{Applicant, LabeledRecord, FEATURE_COUNT};

    fn row(id: i64, month: u32) -> StoredRecord {
        StoredRecord {
            id,
            record: LabeledRecord {
                applicant: Applicant([1.0; FEATURE_COUNT]),
                creditability: 1,
            },
            absorbed_by: Some(1),
            loaded_at: Utc
                .with_ymd_and_hms(2026, month, 15, 0, 0, 0)
                .single()
                .unwrap_or_default(),
        }
    }

    fn ids(kept: &[&StoredRecord]) -> Vec<i64> {
        kept.iter().map(|r| r.id).collect()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
            .single()
            .unwrap_or_default()
    }

    /// Rows 1..=6 loaded in months 1, 3, 5, 7, 9, 11 of 2026 (ids out of load order for two).
    fn rows() -> Vec<StoredRecord> {
        vec![
            row(1, 1),
            row(2, 5),
            row(3, 3),
            row(4, 7),
            row(5, 9),
            row(6, 11),
        ]
    }

    #[test]
    fn no_limit_keeps_every_row() {
        let rows = rows();
        let (kept, applied) = select_absorbed(&rows, 10, &TrainingWindow::default(), now());
        assert_eq!(ids(&kept), [1, 2, 3, 4, 5, 6]);
        assert_eq!((applied.absorbed_used, applied.left_out), (6, 0));
        assert_eq!(applied.oldest_loaded_at, Some(rows[0].loaded_at));
    }

    #[test]
    fn months_keep_the_rows_loaded_since_the_cutoff() {
        let rows = rows();
        let window = TrainingWindow {
            rows: None,
            months: Some(6),
        };
        // 2026-06-01 is the cutoff: months 7, 9, 11 stay.
        let (kept, applied) = select_absorbed(&rows, 0, &window, now());
        assert_eq!(ids(&kept), [4, 5, 6]);
        assert_eq!(applied.left_out, 3);
        assert_eq!(applied.oldest_loaded_at, Some(rows[3].loaded_at));
    }

    #[test]
    fn rows_keep_the_most_recently_loaded_and_the_waiting_rows_count() {
        let rows = rows();
        let window = TrainingWindow {
            rows: Some(5),
            months: None,
        };
        // 2 waiting rows leave room for 3 absorbed: loaded in months 11, 9, 7.
        let (kept, applied) = select_absorbed(&rows, 2, &window, now());
        assert_eq!(ids(&kept), [4, 5, 6]);
        assert_eq!((applied.absorbed_used, applied.left_out), (3, 3));
        // More waiting rows than the window: only they are trained on.
        let (kept, _) = select_absorbed(&rows, 9, &window, now());
        assert!(kept.is_empty());
        // Month 5 (id 2) is newer than month 3 (id 3): the load time decides, not the id.
        let window = TrainingWindow {
            rows: Some(4),
            months: None,
        };
        let (kept, _) = select_absorbed(&rows, 0, &window, now());
        assert_eq!(ids(&kept), [2, 4, 5, 6]);
    }

    #[test]
    fn both_limits_apply() {
        let rows = rows();
        let window = TrainingWindow {
            rows: Some(2),
            months: Some(10),
        };
        let (kept, applied) = select_absorbed(&rows, 0, &window, now());
        assert_eq!(ids(&kept), [5, 6]);
        assert_eq!(applied.left_out, 4);
        assert_eq!(
            window.describe(),
            "the most recent 2 rows loaded in the last 10 months"
        );
    }
}
