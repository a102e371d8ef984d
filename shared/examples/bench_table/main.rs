//! The benchmark table: the work of issue 2, item 11, timed in one release binary.
//!
//! ```text
//! cargo run --release -p fraudrisk --example bench_table -- [--json] [--task LIST]
//!     [--data-dir DIR] [--train-data CSV] [--samples N] [--breakdown]
//! cargo run --release -p fraudrisk --example bench_table -- --write-data DIR
//! ```
//!
//! Tasks (`--task`, comma-separated; default `predict,train,drift-10k,drift-1m`):
//! - `predict`: one row from a JSON object: validate (`request::applicants_from_json`), encode,
//!   score and explain (`Model::predict`); and score alone (`Model::probability_of_fraud`).
//! - `train`: `model::fit` with `TrainConfig::default()` (5 alphas x 5 grouped stratified
//!   folds, then the refit) on the training file (default: the seed's
//!   `../shared/data/german_credit_resampled.csv`, else 10,000 generated reference rows).
//! - `drift-10k`: `drift::detect_drift` (default config), 10,000 reference vs 2,000 shifted rows.
//! - `drift-1m`: the same on 1,000,000 vs 200,000 rows, with the process's peak memory during
//!   the drift computation (`/proc/self/clear_refs` resets VmHWM once the data are loaded). Run
//!   it alone (`--task drift-1m`) so that no other task's memory counts.
//!
//! Data: `--write-data DIR` writes every input once as CSV (generator seed 42) plus the request
//! row as JSON, for this binary and `scripts/bench_python.py` alike; then `--data-dir DIR` reads
//! them. Without the files, the same rows are generated in memory.
//!
//! `--breakdown` adds, for the drift tasks, the time of parts of the work measured with the
//! crate's public functions (column extraction, Welch t, numeric PSI, one bare pass over the rows).
//!
//! Each figure is the median over samples of the mean time per call within a sample; a sample
//! runs the call often enough to last about 20 ms, after a warm-up. With `--json`, stdout holds
//! one JSON object (the table goes to stderr). `scripts/bench-compare.sh` runs this next to
//! scikit-learn and scipy and prints the ratios.
//!
//! Layout: `data` (inputs), `timing`, `tasks` (what is timed), `table` (the output).

mod data;
mod table;
mod tasks;
mod timing;

use std::error::Error;
use std::path::PathBuf;

use fraudrisk::model::{fit, Model, TrainConfig};
use serde_json::json;

use data::{train_records, write_data};
use table::render_table;
use tasks::{bench_drift, bench_predict, bench_train};

pub(crate) type Result<T> = std::result::Result<T, Box<dyn Error>>;

const USAGE: &str = "usage: bench_table [--json] [--task predict,train,drift-10k,drift-1m] \
[--data-dir DIR] [--train-data CSV] [--samples N] [--breakdown]\n       bench_table --write-data DIR";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Task {
    Predict,
    Train,
    Drift10k,
    Drift1m,
}

impl Task {
    fn parse(name: &str) -> Result<Task> {
        Ok(match name {
            "predict" => Task::Predict,
            "train" => Task::Train,
            "drift-10k" => Task::Drift10k,
            "drift-1m" => Task::Drift1m,
            other => return Err(format!("unknown task {other:?}\n{USAGE}").into()),
        })
    }
}

pub(crate) struct Args {
    pub(crate) json: bool,
    pub(crate) tasks: Vec<Task>,
    pub(crate) write_data: Option<PathBuf>,
    pub(crate) data_dir: Option<PathBuf>,
    pub(crate) train_data: Option<PathBuf>,
    pub(crate) samples: Option<usize>,
    pub(crate) breakdown: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        json: false,
        tasks: vec![Task::Predict, Task::Train, Task::Drift10k, Task::Drift1m],
        write_data: None,
        data_dir: None,
        train_data: None,
        samples: None,
        breakdown: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--json" => args.json = true,
            "--breakdown" => args.breakdown = true,
            "--task" => {
                args.tasks = value("--task")?
                    .split(',')
                    .map(|t| Task::parse(t.trim()))
                    .collect::<Result<_>>()?
            }
            "--write-data" => args.write_data = Some(value("--write-data")?.into()),
            "--data-dir" => args.data_dir = Some(value("--data-dir")?.into()),
            "--train-data" => args.train_data = Some(value("--train-data")?.into()),
            "--samples" => {
                let n: usize = value("--samples")?
                    .parse()
                    .map_err(|e| format!("--samples: {e}"))?;
                args.samples = Some(n.max(1));
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    Ok(args)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench_table: error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args = parse_args()?;
    if let Some(dir) = &args.write_data {
        return write_data(dir);
    }
    let mut results = Vec::new();
    let mut model: Option<Model> = None;
    for task in &args.tasks {
        match task {
            Task::Train => {
                let (result, fitted) = bench_train(&args)?;
                results.push(result);
                model = Some(fitted);
            }
            Task::Predict => {
                let fitted = match model.take() {
                    Some(m) => m,
                    None => fit(&train_records(&args)?.0, &TrainConfig::default())?.model,
                };
                results.extend(bench_predict(&args, &fitted)?);
                model = Some(fitted);
            }
            Task::Drift10k => results.push(bench_drift(&args, 0, 1, "drift_10k")?),
            Task::Drift1m => results.push(bench_drift(&args, 2, 3, "drift_1m")?),
        }
    }
    let table = render_table(&results);
    if args.json {
        eprint!("{table}");
        let out = json!({
            "side": "rust",
            "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "tasks": results,
        });
        println!("{out}");
    } else {
        print!("{table}");
    }
    Ok(())
}
