//! Reason codes: one stable code per feature, in schema order, with the short name a
//! reason's text starts with. Declared once; the README's table lists the same codes.
//!
//! A code never changes meaning: a new feature gets the next free code, a removed feature's
//! code is not reused.

use super::{Domain, FEATURES, FEATURE_COUNT};

/// A feature's reason code and the short name its reasons start with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reason {
    /// The feature's schema name (checked against [`FEATURES`] by the tests).
    pub feature: &'static str,
    /// `R01` … `R20`.
    pub code: &'static str,
    /// Lower-case, as it reads in "checking account: no running account".
    pub name: &'static str,
}

/// The reasons of the 20 features, in schema order.
pub static REASONS: [Reason; FEATURE_COUNT] = [
    reason("account_balance", "R01", "checking account"),
    reason(
        "duration_of_credit_month",
        "R02",
        "credit duration in months",
    ),
    reason(
        "payment_status_of_previous_credit",
        "R03",
        "previous credits",
    ),
    reason("purpose", "R04", "purpose"),
    reason("credit_amount", "R05", "credit amount"),
    reason("value_savings_stocks", "R06", "savings or stocks"),
    reason("length_of_current_employment", "R07", "current employment"),
    reason(
        "instalment_per_cent",
        "R08",
        "instalment rate (1 = highest share of income)",
    ),
    reason("sex_marital_status", "R09", "sex and marital status"),
    reason("guarantors", "R10", "other debtors or guarantors"),
    reason(
        "duration_in_current_address",
        "R11",
        "time at current address",
    ),
    reason(
        "most_valuable_available_asset",
        "R12",
        "most valuable asset",
    ),
    reason("age_years", "R13", "age"),
    reason("concurrent_credits", "R14", "concurrent credits"),
    reason("type_of_apartment", "R15", "apartment"),
    reason(
        "no_of_credits_at_this_bank",
        "R16",
        "credits at this bank (1 = one, 4 = six or more)",
    ),
    reason("occupation", "R17", "occupation"),
    reason("no_of_dependents", "R18", "dependants"),
    reason("telephone", "R19", "telephone"),
    reason("foreign_worker", "R20", "foreign worker"),
];

const fn reason(feature: &'static str, code: &'static str, name: &'static str) -> Reason {
    Reason {
        feature,
        code,
        name,
    }
}

/// The reason text of feature `index` at `value`: the short name, then the meaning of the
/// code (coded features) or the number ("credit amount: 12000"). An index outside the
/// schema gives an empty text.
pub fn reason_text(index: usize, value: f64) -> String {
    let (Some(reason), Some(feature)) = (REASONS.get(index), FEATURES.get(index)) else {
        return String::new();
    };
    let code = value as i64;
    let shown = match feature.domain {
        Domain::Codes(codes) => codes
            .iter()
            .find(|(c, _)| *c == code)
            .map_or_else(|| code.to_string(), |(_, meaning)| (*meaning).to_string()),
        Domain::Range { .. } => code.to_string(),
    };
    format!("{}: {shown}", reason.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_code_per_feature_in_schema_order() {
        for (i, (reason, feature)) in REASONS.iter().zip(FEATURES.iter()).enumerate() {
            assert_eq!(reason.feature, feature.name);
            assert_eq!(reason.code, format!("R{:02}", i + 1));
            assert!(!reason.name.is_empty());
        }
    }

    #[test]
    fn texts_use_the_codebook_or_the_number() {
        assert_eq!(reason_text(0, 1.0), "checking account: no running account");
        assert_eq!(reason_text(4, 12000.0), "credit amount: 12000");
        assert_eq!(reason_text(99, 1.0), "");
    }

    #[test]
    fn a_prediction_gives_its_positive_contributions_as_reasons_largest_first() {
        let records = crate::model::testdata::records(300, 3, 7);
        let config = crate::model::TrainConfig {
            alphas: vec![1.0, 10.0],
            ..crate::model::TrainConfig::default()
        };
        let model = crate::model::fit(&records, &config).unwrap().model;
        for record in records.iter().take(60) {
            let prediction = model.predict(&record.applicant);
            assert_eq!(prediction.threshold, model.threshold());
            let mut positive: Vec<_> = prediction
                .contributions
                .iter()
                .filter(|c| c.contribution > 0.0)
                .collect();
            positive.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
            assert_eq!(prediction.reason_codes.len(), positive.len().min(4));
            for (reason, contribution) in prediction.reason_codes.iter().zip(positive) {
                let i = crate::schema::feature_index(contribution.feature).unwrap();
                assert_eq!(reason.code, REASONS[i].code);
                assert_eq!(reason.text, reason_text(i, record.applicant.0[i]));
            }
        }
    }
}
