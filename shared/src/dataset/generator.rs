//! The built-in data generator: the seed's data_insertion step without its files.
//!
//! Each row draws its label from the seed's class balance, then every feature from that
//! class's empirical frequency table (naive-Bayes style), so features carry real signal about
//! the label while rows stay independent of each other. The tables are derived from the 1,000
//! distinct rows of german_credit_resampled.csv by scripts/derive_generator_tables.py and
//! embedded as generator_tables.json. Shifted rows are drawn the same way from another random
//! stream and then altered as [`SHIFTS`] declares.

use crate::progress::{Step, Unit};
use std::collections::BTreeMap;
use std::sync::LazyLock;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::SourceRow;
use crate::schema::{feature_index, Applicant, Domain, LabeledRecord, FEATURES, FEATURE_COUNT};

/// How one shift alters a drawn value. Results always stay inside the feature's domain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ShiftOp {
    /// Multiply, round to the nearest integer, clamp to the domain (range features only).
    Scale(f64),
    /// Add, clamp to the domain (range features only).
    Add(i64),
    /// With this probability, replace the value by one of these codes (chosen uniformly).
    Replace {
        /// Share of rows altered.
        probability: f64,
        /// The codes altered rows take.
        codes: &'static [i64],
    },
    /// With this probability, move the value one code down the feature's ordered codes
    /// (values already at the lowest code stay).
    StepDown {
        /// Share of rows altered.
        probability: f64,
    },
}

/// One documented difference between shifted and reference data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shift {
    /// The schema name of the shifted feature.
    pub feature: &'static str,
    /// What the generator does to it.
    pub op: ShiftOp,
    /// The shift in words, for the README and `fraudctl`.
    pub description: &'static str,
}

/// The shifts applied to every shifted row, in this order; one or more per feature kind.
/// Each is large enough that the drift tests flag it at 10,000 reference vs 2,000 shifted rows.
pub const SHIFTS: &[Shift] = &[
    Shift {
        feature: "credit_amount",
        op: ShiftOp::Scale(1.3),
        description: "credit amounts 30 % higher (x1.3, rounded)",
    },
    Shift {
        feature: "duration_of_credit_month",
        op: ShiftOp::Add(6),
        description: "credits 6 months longer (capped at the domain maximum, 120)",
    },
    Shift {
        feature: "age_years",
        op: ShiftOp::Add(-5),
        description: "applicants 5 years younger (floored at 18)",
    },
    Shift {
        feature: "purpose",
        op: ShiftOp::Replace {
            probability: 0.2,
            codes: &[1, 10],
        },
        description: "purpose mix moves toward new car (1) and business (10): 20 % of rows redrawn as one of the two",
    },
    Shift {
        feature: "account_balance",
        op: ShiftOp::Replace {
            probability: 0.2,
            codes: &[1],
        },
        description: "20 % of rows moved to account balance 1 (no running account)",
    },
    Shift {
        feature: "length_of_current_employment",
        op: ShiftOp::StepDown { probability: 0.4 },
        description: "employment shorter: 40 % of rows one band lower",
    },
    Shift {
        feature: "telephone",
        op: ShiftOp::Replace {
            probability: 0.2,
            codes: &[1],
        },
        description: "telephone share up: 20 % of rows set to 1 (registered)",
    },
];

/// Which generated set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GeneratedKind {
    /// Training data, as german_credit_resampled.csv.
    Reference,
    /// New data with the [`SHIFTS`] applied, as shifted_data.csv.
    Shifted,
}

impl GeneratedKind {
    /// "reference" or "shifted".
    pub fn as_str(self) -> &'static str {
        match self {
            GeneratedKind::Reference => "reference",
            GeneratedKind::Shifted => "shifted",
        }
    }

    /// The start of this set's row keys.
    fn key_prefix(self) -> &'static str {
        match self {
            GeneratedKind::Reference => "gen-ref",
            GeneratedKind::Shifted => "gen-shift",
        }
    }
}

/// What [`generated_rows`] generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// The random seed; the same seed always gives the same rows.
    pub seed: u64,
    /// Number of reference rows.
    pub reference_rows: usize,
    /// Number of shifted rows.
    pub shifted_rows: usize,
}

impl Default for GeneratorConfig {
    /// The seed's sizes: 10,000 reference and 2,000 shifted rows, seed 42.
    fn default() -> Self {
        GeneratorConfig {
            seed: 42,
            reference_rows: 10_000,
            shifted_rows: 2_000,
        }
    }
}

/// Mixed into the seed for shifted rows so they come from a stream independent of the
/// reference rows of the same seed (the 64-bit golden-ratio constant; any odd constant would do).
const SHIFTED_STREAM: u64 = 0x9E37_79B9_7F4A_7C15;

/// `rows` reference rows from `seed`.
///
/// # Panics
/// Only if the embedded generator tables are invalid, which the unit tests rule out.
pub fn generate_reference(rows: usize, seed: u64) -> Vec<LabeledRecord> {
    let tables = tables();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let step = Step::start("generate reference rows", Unit::Rows, rows as u64);
    (0..rows)
        .map(|_| {
            step.advance(1);
            tables.draw(&mut rng)
        })
        .collect()
}

/// `rows` shifted rows from `seed`: drawn as reference rows, from another stream, then
/// altered by every entry of [`SHIFTS`] in order.
///
/// # Panics
/// Only if the embedded generator tables are invalid, which the unit tests rule out.
pub fn generate_shifted(rows: usize, seed: u64) -> Vec<LabeledRecord> {
    let tables = tables();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ SHIFTED_STREAM);
    let step = Step::start("generate shifted rows", Unit::Rows, rows as u64);
    (0..rows)
        .map(|_| {
            step.advance(1);
            let mut record = tables.draw(&mut rng);
            for shift in &tables.shifts {
                shift.apply(&mut record.applicant, &mut rng);
            }
            record
        })
        .collect()
}

/// The reference or shifted rows of `config`, keyed `gen-ref-<seed>-000001`,
/// `gen-shift-<seed>-000001`, ..., so loading the same configuration twice adds nothing.
pub fn generated_rows(kind: GeneratedKind, config: GeneratorConfig) -> Vec<SourceRow> {
    let records = match kind {
        GeneratedKind::Reference => generate_reference(config.reference_rows, config.seed),
        GeneratedKind::Shifted => generate_shifted(config.shifted_rows, config.seed),
    };
    records
        .into_iter()
        .enumerate()
        .map(|(i, record)| SourceRow {
            key: format!("{}-{}-{:06}", kind.key_prefix(), config.seed, i + 1),
            record,
        })
        .collect()
}

/// The share of fraud rows (creditability 0) the generator draws with: the class balance of
/// the distinct rows of the seed's reference file.
pub fn table_fraud_share() -> f64 {
    tables().fraud_share
}

static TABLES_JSON: &str = include_str!("generator_tables.json");

static TABLES: LazyLock<Result<Tables, String>> = LazyLock::new(|| Tables::parse(TABLES_JSON));

fn tables() -> &'static Tables {
    match &*TABLES {
        Ok(tables) => tables,
        // A build-time asset, not input: a broken file is a bug the unit tests catch.
        Err(message) => panic!("embedded generator_tables.json is invalid: {message}"),
    }
}

/// The file as scripts/derive_generator_tables.py writes it (provenance fields are skipped).
#[derive(Deserialize)]
struct TablesFile {
    class_counts: BTreeMap<String, u32>,
    features: BTreeMap<String, FeatureTables>,
}

/// One feature's frequency tables, keyed by class ("0", "1"): `[value, count]` pairs.
type FeatureTables = BTreeMap<String, Vec<(i64, u32)>>;

/// Draws from an empirical frequency table by inverting its cumulative counts.
#[derive(Debug)]
struct Sampler {
    values: Vec<f64>,
    /// `cumulative[i]` = sum of counts of `values[..=i]`; the last entry is the total.
    cumulative: Vec<u32>,
}

impl Sampler {
    fn draw(&self, rng: &mut ChaCha8Rng) -> f64 {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let ticket = rng.gen_range(0..total);
        let index = self.cumulative.partition_point(|&c| c <= ticket);
        self.values.get(index).copied().unwrap_or_default()
    }
}

/// A [`Shift`] resolved against the schema.
#[derive(Debug)]
struct ResolvedShift {
    index: usize,
    op: ShiftOp,
    /// Domain bounds, for clamping.
    min: i64,
    max: i64,
    /// Ordered codes, for stepping down.
    codes: Vec<i64>,
}

impl ResolvedShift {
    fn apply(&self, applicant: &mut Applicant, rng: &mut ChaCha8Rng) {
        let value = &mut applicant.0[self.index];
        let current = *value as i64;
        let next = match self.op {
            ShiftOp::Scale(factor) => ((*value * factor).round() as i64).clamp(self.min, self.max),
            ShiftOp::Add(delta) => current.saturating_add(delta).clamp(self.min, self.max),
            ShiftOp::Replace { probability, codes } => {
                if rng.gen_bool(probability) {
                    codes[rng.gen_range(0..codes.len())]
                } else {
                    current
                }
            }
            ShiftOp::StepDown { probability } => {
                let position = self.codes.iter().position(|&c| c == current);
                match position {
                    Some(p) if p > 0 && rng.gen_bool(probability) => self.codes[p - 1],
                    _ => current,
                }
            }
        };
        *value = next as f64;
    }
}

#[derive(Debug)]
struct Tables {
    fraud_share: f64,
    /// Per class (index = creditability), one sampler per feature in schema order.
    classes: [Vec<Sampler>; 2],
    shifts: Vec<ResolvedShift>,
}

impl Tables {
    fn draw(&self, rng: &mut ChaCha8Rng) -> LabeledRecord {
        let creditability: u8 = if rng.gen_bool(self.fraud_share) { 0 } else { 1 };
        let mut values = [0.0; FEATURE_COUNT];
        for (slot, sampler) in values
            .iter_mut()
            .zip(self.classes[usize::from(creditability)].iter())
        {
            *slot = sampler.draw(rng);
        }
        LabeledRecord {
            applicant: Applicant(values),
            creditability,
        }
    }

    /// Parses and checks the tables and [`SHIFTS`] against the schema, so that drawing can
    /// neither panic nor produce a value outside its domain.
    fn parse(json: &str) -> Result<Tables, String> {
        let file: TablesFile = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let count = |class: &str| match file.class_counts.get(class) {
            Some(&n) if n > 0 => Ok(n),
            _ => Err(format!(
                "class_counts has no positive count for class {class}"
            )),
        };
        let counts = [count("0")?, count("1")?];

        let mut per_feature: [Option<&FeatureTables>; FEATURE_COUNT] = [None; FEATURE_COUNT];
        for (name, table) in &file.features {
            let index = feature_index(name).ok_or_else(|| format!("{name} is not a feature"))?;
            if per_feature[index].replace(table).is_some() {
                return Err(format!("{name} is given twice"));
            }
        }
        let mut classes: [Vec<Sampler>; 2] = [Vec::new(), Vec::new()];
        for (feature, table) in FEATURES.iter().zip(per_feature.iter()) {
            let table = table.ok_or_else(|| format!("{} has no table", feature.name))?;
            for (class, samplers) in classes.iter_mut().enumerate() {
                let pairs = table
                    .get(&class.to_string())
                    .ok_or_else(|| format!("{} has no table for class {class}", feature.name))?;
                samplers.push(sampler(feature.name, pairs, counts[class], |v| {
                    feature
                        .check(v as f64)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })?);
            }
        }

        let shifts = SHIFTS.iter().map(resolve_shift).collect::<Result<_, _>>()?;
        Ok(Tables {
            fraud_share: f64::from(counts[0]) / (f64::from(counts[0]) + f64::from(counts[1])),
            classes,
            shifts,
        })
    }
}

fn sampler(
    name: &str,
    pairs: &[(i64, u32)],
    class_count: u32,
    check: impl Fn(i64) -> Result<(), String>,
) -> Result<Sampler, String> {
    let mut values = Vec::with_capacity(pairs.len());
    let mut cumulative = Vec::with_capacity(pairs.len());
    let mut total: u32 = 0;
    for window in pairs.windows(2) {
        if window[0].0 >= window[1].0 {
            return Err(format!("{name}: values not strictly increasing"));
        }
    }
    for &(value, count) in pairs {
        check(value)?;
        if count == 0 {
            return Err(format!("{name}: value {value} has count 0"));
        }
        total = total
            .checked_add(count)
            .ok_or_else(|| format!("{name}: counts overflow"))?;
        values.push(value as f64);
        cumulative.push(total);
    }
    if total != class_count {
        return Err(format!(
            "{name}: counts sum to {total}, the class has {class_count} rows"
        ));
    }
    Ok(Sampler { values, cumulative })
}

fn resolve_shift(shift: &Shift) -> Result<ResolvedShift, String> {
    let index = feature_index(shift.feature)
        .ok_or_else(|| format!("shift of {}: not a feature", shift.feature))?;
    let feature = &FEATURES[index];
    let mut codes = feature.codes();
    codes.sort_unstable();
    let (min, max) = match feature.domain {
        Domain::Range { min, max } => (min, max),
        Domain::Codes(_) => (
            codes.first().copied().unwrap_or_default(),
            codes.last().copied().unwrap_or_default(),
        ),
    };
    let fail = |why: &str| Err(format!("shift of {}: {why}", shift.feature));
    let probability_ok = |p: f64| (0.0..=1.0).contains(&p);
    match shift.op {
        // Clamping a code list with gaps could land between codes, so arithmetic shifts are
        // for ranges only.
        ShiftOp::Scale(_) | ShiftOp::Add(_) if !matches!(feature.domain, Domain::Range { .. }) => {
            return fail("arithmetic shifts need a range domain")
        }
        ShiftOp::Scale(factor) if !(factor.is_finite() && factor > 0.0) => {
            return fail("factor must be positive")
        }
        ShiftOp::Replace {
            probability,
            codes: targets,
        } => {
            if !probability_ok(probability) || targets.is_empty() {
                return fail("needs a probability in 0..=1 and at least one code");
            }
            if let Some(bad) = targets.iter().find(|c| !feature.domain.contains(**c)) {
                return fail(&format!("code {bad} is outside the domain"));
            }
        }
        ShiftOp::StepDown { probability } if !probability_ok(probability) || codes.len() < 2 => {
            return fail("needs a probability in 0..=1 and ordered codes")
        }
        _ => {}
    }
    Ok(ResolvedShift {
        index,
        op: shift.op,
        min,
        max,
        codes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_tables_and_shifts_are_valid() {
        let tables = Tables::parse(TABLES_JSON).unwrap();
        assert_eq!(tables.classes[0].len(), FEATURE_COUNT);
        assert_eq!(tables.classes[1].len(), FEATURE_COUNT);
        assert_eq!(tables.shifts.len(), SHIFTS.len());
        // The seed's distinct rows: 300 bad of 1,000.
        assert!((tables.fraud_share - 0.3).abs() < 1e-12);
    }

    #[test]
    fn broken_tables_are_rejected_with_a_reason() {
        let drop_feature = TABLES_JSON.replacen("\"telephone\"", "\"telefone\"", 1);
        assert!(Tables::parse(&drop_feature)
            .unwrap_err()
            .contains("telefone is not a feature"));
        let out_of_domain = TABLES_JSON.replacen("[[1,135]", "[[7,135]", 1);
        assert!(Tables::parse(&out_of_domain)
            .unwrap_err()
            .contains("account_balance"));
        let wrong_total = TABLES_JSON.replacen("\"0\":300", "\"0\":301", 1);
        assert!(Tables::parse(&wrong_total)
            .unwrap_err()
            .contains("counts sum to 300"));
    }

    #[test]
    fn a_sampler_draws_in_proportion_to_counts() {
        let s = sampler("x", &[(1, 1), (2, 3)], 4, |_| Ok(())).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let twos = (0..40_000).filter(|_| s.draw(&mut rng) == 2.0).count();
        let share = twos as f64 / 40_000.0;
        assert!((share - 0.75).abs() < 0.01, "{share}");
    }

    #[test]
    fn shifts_clamp_into_the_domain() {
        let add = resolve_shift(&Shift {
            feature: "age_years",
            op: ShiftOp::Add(-5),
            description: "",
        })
        .unwrap();
        let scale = resolve_shift(&Shift {
            feature: "credit_amount",
            op: ShiftOp::Scale(1.3),
            description: "",
        })
        .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut a = Applicant([0.0; FEATURE_COUNT]);
        a.0[12] = 20.0;
        a.0[4] = 999_999.0;
        add.apply(&mut a, &mut rng);
        scale.apply(&mut a, &mut rng);
        assert_eq!(a.0[12], 18.0);
        assert_eq!(a.0[4], 1_000_000.0);
    }

    #[test]
    fn invalid_shifts_are_rejected() {
        let bad = [
            Shift {
                feature: "purpose",
                op: ShiftOp::Add(1),
                description: "",
            },
            Shift {
                feature: "purpose",
                op: ShiftOp::Replace {
                    probability: 0.5,
                    codes: &[11],
                },
                description: "",
            },
            Shift {
                feature: "credit_amount",
                op: ShiftOp::StepDown { probability: 0.5 },
                description: "",
            },
            Shift {
                feature: "colour",
                op: ShiftOp::Add(1),
                description: "",
            },
        ];
        for shift in &bad {
            assert!(resolve_shift(shift).is_err(), "{shift:?}");
        }
    }
}
