//! Parse-speed benchmark: parse + check of a generated ~5,000-line WIDL file.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use nimbus_widl::{MemoryLoader, has_errors, parse_and_check_source};

/// Builds a realistic file: types with descriptions, annotations, lists and maps; enums;
/// a role with function and unary operations. Returns the text and its line count.
fn generate(target_lines: usize) -> (String, usize) {
    let mut s = String::from(
        "namespace \"bench:generated\"\n\ndirective @column(name: string?) on FIELD\n\n",
    );
    let mut i = 0;
    while s.lines().count() < target_lines - 40 {
        s.push_str(&format!(
            "\"Type number {i}\"\ntype Record{i} {{\n  \"identifier\"\n  id: string @column\n  count: u32 = 0\n  ratio: f64?\n  tags: [string]\n  attrs: {{string: string}}\n  kind: Kind{i}\n  next: Record{i}?\n  data: bytes\n}}\n\nenum Kind{i} {{\n  First = 0 as \"FIRST\"\n  Second = 1 \"SECOND\"\n  Third = 2\n}}\n\n"
        ));
        i += 1;
    }
    s.push_str("role Service {\n");
    for j in 0..i {
        s.push_str(&format!(
            "  Get{j}(id: string, limit: u32 = 10): [Record{j}]\n  Put{j}{{record: Record{j}}}\n"
        ));
    }
    s.push_str("}\n");
    let lines = s.lines().count();
    (s, lines)
}

fn run(src: &str) {
    let program = parse_and_check_source("bench.widl", src, &MemoryLoader::new());
    assert!(!has_errors(&program.diagnostics), "{}", program.render());
    black_box(program);
}

fn main() {
    let (src, lines) = generate(5_000);
    run(&src);

    let mut criterion = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = criterion.benchmark_group("widl");
    group.throughput(Throughput::Bytes(src.len() as u64));
    group.bench_function(format!("parse+check {lines} lines"), |b| {
        b.iter(|| run(black_box(&src)))
    });
    group.finish();
    criterion.final_summary();

    // A plain figure for reports: the median of a few timed runs.
    let mut times: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            run(&src);
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "parse+check: {lines} lines ({} bytes) in {:.2} ms = {:.0} lines/second",
        src.len(),
        median * 1e3,
        lines as f64 / median
    );
    match baseline_ms(&src) {
        Ok(baseline) => println!(
            "ours {:.2} ms vs published @wapc/widl 0.0.12 parse+validate {baseline:.2} ms -> ratio {:.2}x",
            median * 1e3,
            median * 1e3 / baseline
        ),
        Err(why) => println!("baseline not measured: {why}"),
    }
}

/// Times the same file with the published JavaScript parser (widl/benches/baseline), in
/// node, installing it with `npm ci` the first time.
fn baseline_ms(src: &str) -> Result<f64, String> {
    use std::process::Command;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/baseline");
    if !dir.join("node_modules").exists() {
        let ok = Command::new("npm")
            .args(["ci", "--silent"])
            .current_dir(&dir)
            .status()
            .map_err(|e| format!("npm not available: {e}"))?;
        if !ok.success() {
            return Err("npm ci failed in widl/benches/baseline".into());
        }
    }
    let file = std::env::temp_dir().join(format!("widl-bench-{}.widl", std::process::id()));
    std::fs::write(&file, src).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    let out = Command::new("node")
        .arg(dir.join("parse.mjs"))
        .arg(&file)
        .output()
        .map_err(|e| format!("node not available: {e}"));
    let _ = std::fs::remove_file(&file);
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("baseline-ms "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("baseline failed: {}", String::from_utf8_lossy(&out.stderr)))
}
