//! The 20 features in the seed's order, with the codebooks of the coded ones.

use super::{Domain, Feature, FeatureKind, FEATURE_COUNT};

const ACCOUNT_BALANCE: &[(i64, &str)] = &[
    (1, "no running account"),
    (2, "no balance or debit"),
    (3, "0 to 200 DM"),
    (4, "200 DM or more, or salary account for a year"),
];
const PAYMENT_STATUS: &[(i64, &str)] = &[
    (0, "hesitant payment of previous credits"),
    (1, "problematic running account"),
    (2, "no previous credits or all paid back"),
    (3, "no problems with current credits at this bank"),
    (4, "previous credits at this bank paid back"),
];
const PURPOSE: &[(i64, &str)] = &[
    (0, "other"),
    (1, "new car"),
    (2, "used car"),
    (3, "furniture"),
    (4, "radio or television"),
    (5, "household appliances"),
    (6, "repair"),
    (7, "education"),
    (8, "vacation"),
    (9, "retraining"),
    (10, "business"),
];
const SAVINGS: &[(i64, &str)] = &[
    (1, "none or not available"),
    (2, "below 100 DM"),
    (3, "100 to 500 DM"),
    (4, "500 to 1000 DM"),
    (5, "1000 DM or more"),
];
const EMPLOYMENT: &[(i64, &str)] = &[
    (1, "unemployed"),
    (2, "under 1 year"),
    (3, "1 to 4 years"),
    (4, "4 to 7 years"),
    (5, "7 years or more"),
];
const SEX_MARITAL: &[(i64, &str)] = &[
    (1, "male, divorced or separated"),
    (2, "male, single"),
    (3, "male, married or widowed"),
    (4, "female"),
];
const GUARANTORS: &[(i64, &str)] = &[(1, "none"), (2, "co-applicant"), (3, "guarantor")];
const ADDRESS_DURATION: &[(i64, &str)] = &[
    (1, "under 1 year"),
    (2, "1 to 4 years"),
    (3, "4 to 7 years"),
    (4, "7 years or more"),
];
const ASSET: &[(i64, &str)] = &[
    (1, "none or not available"),
    (2, "car or other"),
    (3, "savings contract or life insurance"),
    (4, "house or land"),
];
const CONCURRENT: &[(i64, &str)] = &[
    (1, "at other banks"),
    (2, "at department stores"),
    (3, "none"),
];
const APARTMENT: &[(i64, &str)] = &[(1, "rented"), (2, "owner-occupied"), (3, "free")];
const OCCUPATION: &[(i64, &str)] = &[
    (1, "unemployed or unskilled non-resident"),
    (2, "unskilled resident"),
    (3, "skilled employee or official"),
    (4, "executive, self-employed or highly qualified"),
];
const DEPENDENTS: &[(i64, &str)] = &[(0, "fewer (code 0)"), (1, "more (code 1)")];
const TELEPHONE: &[(i64, &str)] = &[(0, "none"), (1, "yes, registered")];
const FOREIGN_WORKER: &[(i64, &str)] = &[(0, "yes (code 0)"), (1, "no (code 1)")];

/// The 20 features in the seed's order.
pub static FEATURES: [Feature; FEATURE_COUNT] = [
    Feature {
        name: "account_balance",
        kind: FeatureKind::Nominal,
        domain: Domain::Codes(ACCOUNT_BALANCE),
        label: "Balance of current account",
    },
    Feature {
        name: "duration_of_credit_month",
        kind: FeatureKind::Numeric,
        domain: Domain::Range { min: 1, max: 120 },
        label: "Duration of credit (months)",
    },
    Feature {
        name: "payment_status_of_previous_credit",
        kind: FeatureKind::Nominal,
        domain: Domain::Codes(PAYMENT_STATUS),
        label: "Payment status of previous credit",
    },
    Feature {
        name: "purpose",
        kind: FeatureKind::Nominal,
        domain: Domain::Codes(PURPOSE),
        label: "Purpose of the credit",
    },
    Feature {
        name: "credit_amount",
        kind: FeatureKind::Numeric,
        domain: Domain::Range {
            min: 1,
            max: 1_000_000,
        },
        label: "Credit amount (DM)",
    },
    Feature {
        name: "value_savings_stocks",
        kind: FeatureKind::Nominal,
        domain: Domain::Codes(SAVINGS),
        label: "Value of savings or stocks",
    },
    Feature {
        name: "length_of_current_employment",
        kind: FeatureKind::Ordinal,
        domain: Domain::Codes(EMPLOYMENT),
        label: "Length of current employment",
    },
    Feature {
        name: "instalment_per_cent",
        kind: FeatureKind::Numeric,
        domain: Domain::Range { min: 1, max: 4 },
        label: "Instalment rate (1 = highest share of income, 4 = lowest)",
    },
    Feature {
        name: "sex_marital_status",
        kind: FeatureKind::Nominal,
        domain: Domain::Codes(SEX_MARITAL),
        label: "Sex and marital status",
    },
    Feature {
        name: "guarantors",
        kind: FeatureKind::Nominal,
        domain: Domain::Codes(GUARANTORS),
        label: "Other debtors or guarantors",
    },
    Feature {
        name: "duration_in_current_address",
        kind: FeatureKind::Ordinal,
        domain: Domain::Codes(ADDRESS_DURATION),
        label: "Time at current address",
    },
    Feature {
        name: "most_valuable_available_asset",
        kind: FeatureKind::Nominal,
        domain: Domain::Codes(ASSET),
        label: "Most valuable available asset",
    },
    Feature {
        name: "age_years",
        kind: FeatureKind::Numeric,
        domain: Domain::Range { min: 18, max: 120 },
        label: "Age (years)",
    },
    Feature {
        name: "concurrent_credits",
        kind: FeatureKind::Nominal,
        domain: Domain::Codes(CONCURRENT),
        label: "Concurrent credits",
    },
    Feature {
        name: "type_of_apartment",
        kind: FeatureKind::Nominal,
        domain: Domain::Codes(APARTMENT),
        label: "Type of apartment",
    },
    Feature {
        name: "no_of_credits_at_this_bank",
        kind: FeatureKind::Numeric,
        domain: Domain::Range { min: 1, max: 4 },
        label:
            "Credits at this bank (1 = one, 2 = two or three, 3 = four or five, 4 = six or more)",
    },
    Feature {
        name: "occupation",
        kind: FeatureKind::Ordinal,
        domain: Domain::Codes(OCCUPATION),
        label: "Occupation",
    },
    Feature {
        name: "no_of_dependents",
        kind: FeatureKind::Binary,
        domain: Domain::Codes(DEPENDENTS),
        label: "Number of dependants (binary code, 0 or 1)",
    },
    Feature {
        name: "telephone",
        kind: FeatureKind::Binary,
        domain: Domain::Codes(TELEPHONE),
        label: "Telephone",
    },
    Feature {
        name: "foreign_worker",
        kind: FeatureKind::Binary,
        domain: Domain::Codes(FOREIGN_WORKER),
        label: "Foreign worker",
    },
];
