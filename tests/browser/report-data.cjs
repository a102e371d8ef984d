// Traffic for the monitor's page in the browser test, from a labelled CSV of the seed's shape:
//   node report-data.cjs requests CSV N            prints {"records": [...]} of the first N rows
//   node report-data.cjs outcomes CSV PREDICTIONS  prints prediction_id,fraud lines pairing the
//                                                  predictions (fraudctl predict's JSON, in
//                                                  request order) with the rows' labels
// creditability 0 means fraud, as in the seed.
'use strict';

const fs = require('node:fs');

const FEATURES = [
  'account_balance', 'duration_of_credit_month', 'payment_status_of_previous_credit', 'purpose',
  'credit_amount', 'value_savings_stocks', 'length_of_current_employment', 'instalment_per_cent',
  'sex_marital_status', 'guarantors', 'duration_in_current_address',
  'most_valuable_available_asset', 'age_years', 'concurrent_credits', 'type_of_apartment',
  'no_of_credits_at_this_bank', 'occupation', 'no_of_dependents', 'telephone', 'foreign_worker',
];

function rows(file) {
  const [header, ...lines] = fs.readFileSync(file, 'utf8').trim().split(/\r?\n/);
  const names = header.split(',');
  return lines.map((line) => {
    const cells = line.split(',');
    return Object.fromEntries(names.map((name, i) => [name, cells[i]]));
  });
}

const [command, file, arg] = process.argv.slice(2);
if (command === 'requests') {
  const records = rows(file)
    .slice(0, Number(arg))
    .map((row) => Object.fromEntries(FEATURES.map((f) => [f, Number(row[f])])));
  process.stdout.write(JSON.stringify({ records }) + '\n');
} else if (command === 'outcomes') {
  const predictions = JSON.parse(fs.readFileSync(arg, 'utf8')).predictions;
  const labelled = rows(file);
  const lines = ['prediction_id,fraud'];
  predictions.forEach((p, i) => {
    // Two thirds get an outcome, as outcomes trickle in.
    if (i % 3 !== 2) lines.push(`${p.prediction_id},${labelled[i].creditability === '0'}`);
  });
  process.stdout.write(lines.join('\n') + '\n');
} else {
  process.stderr.write('usage: report-data.cjs requests CSV N | outcomes CSV PREDICTIONS\n');
  process.exit(2);
}
