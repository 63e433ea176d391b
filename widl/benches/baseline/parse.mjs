// Baseline for widl/benches/parse.rs: parses (and validates with its own rules) the same
// WIDL file with the published JavaScript parser, @wapc/widl 0.0.12, and prints the
// median time of the timed runs as `baseline-ms <ms>`.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const widl = require("@wapc/widl");
const [file, runsArg] = process.argv.slice(2);
const src = readFileSync(file, "utf8");
const runs = Number(runsArg ?? 15);

const once = () => {
  const doc = widl.parse(src);
  const errors = widl.validate(doc, ...widl.rules.CommonRules);
  if (errors.length) throw new Error(`baseline rejected the file: ${errors[0].message}`);
  return doc;
};
for (let i = 0; i < 5; i++) once(); // warm up the JIT
const times = [];
for (let i = 0; i < runs; i++) {
  const start = process.hrtime.bigint();
  once();
  times.push(Number(process.hrtime.bigint() - start) / 1e6);
}
times.sort((a, b) => a - b);
console.log(`baseline-ms ${times[Math.floor(times.length / 2)].toFixed(3)}`);
