"""Run every benchmark of issue 8 (P1..P6) with its defaults, print one table and write bench/results/latest.json.

Why a runner: `make bench` must show all six figures with their targets and peer ratios side by side. Each script
runs as its own process with `--json` (its last stdout line is one JSON object); a missing script, a crash, a
timeout or a line that is not JSON is reported as such in the table and the run goes on with the next one.

Run: .venv/bin/python bench/run_all.py [--only P1,P3] [--timeout 900]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
SCRIPTS = {
    "P1": "scheduler.py",
    "P2": "deploy.py",
    "P3": "api_load.py",
    "P4": "agent_rss.py",
    "P5": "failover.py",
    "P6": "sql_per_start.py",
    "N1": "overlay_crypto.py",
    "TLS": "tls_handshake.py",
    "C1M": "c1m.py",  # its small default (200 agents, 50 x 100); the size is a long mode (bench/README.md)
}


def run_one(benchmark: str, script: str, timeout: float) -> dict[str, Any]:
    """The script's JSON result, or a result with `error` saying what went wrong."""
    path = BENCH / script
    if not path.exists():
        return {"benchmark": benchmark, "script": script, "error": f"missing: bench/{script} does not exist"}
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, str(path), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGINT first: Python raises KeyboardInterrupt, so the script's cleanup stops the servers and hosts it
        # started; SIGKILL would leave them running
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        return {"benchmark": benchmark, "script": script, "error": f"timed out after {timeout:g} s"}
    done = subprocess.CompletedProcess(
        process.args, process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace")
    )
    elapsed = round(time.monotonic() - started, 1)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    result: dict[str, Any] | None = None
    if lines:
        try:
            parsed = json.loads(lines[-1])
            result = parsed if isinstance(parsed, dict) else None
        except ValueError:
            result = None
    if done.returncode != 0 or result is None:
        tail = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or [""])[-1]
        why = f"exit code {done.returncode}" if done.returncode != 0 else "last line of output is not a JSON object"
        return {"benchmark": benchmark, "script": script, "error": f"failed ({why}): {tail[:200]}", "elapsed": elapsed}
    result.setdefault("benchmark", benchmark)
    result["script"] = script
    result["elapsed"] = elapsed
    return result


def figure_text(result: dict[str, Any]) -> str:
    figure, unit = result.get("figure"), result.get("unit", "")
    if isinstance(figure, int | float):
        return f"{figure:g} {unit}".strip()
    return str(figure)


def table(results: list[dict[str, Any]]) -> str:
    rows = [("bench", "title", "figure", "target", "met", "peer ratios")]
    for r in results:
        if "error" in r:
            rows.append((r["benchmark"], r["script"], "-", "-", "ERROR", r["error"]))
            continue
        ratios = ", ".join(f"{name} {value:g}x" for name, value in (r.get("ratios") or {}).items())
        met = "yes" if r.get("met") else "NO"
        rows.append(
            (r["benchmark"], str(r.get("title", "")), figure_text(r), str(r.get("target_text", "")), met, ratios)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5] for row in rows]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated benchmarks to run, e.g. P1,P3 (default: all)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds each script may take")
    args = parser.parse_args(argv)
    wanted = [b.strip().upper() for b in args.only.split(",") if b.strip()] or list(SCRIPTS)
    unknown = [b for b in wanted if b not in SCRIPTS]
    if unknown:
        parser.error(f"--only: unknown benchmark(s) {', '.join(unknown)} (known: {', '.join(SCRIPTS)})")
    results = []
    for benchmark in wanted:
        print(f"running {benchmark} (bench/{SCRIPTS[benchmark]}) ...", flush=True)
        result = run_one(benchmark, SCRIPTS[benchmark], args.timeout)
        print(f"  {benchmark}: {result.get('error') or figure_text(result)}", flush=True)
        results.append(result)
    print()
    print(table(results))
    RESULTS.mkdir(exist_ok=True)
    record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "results": results}
    (RESULTS / "latest.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nwrote {RESULTS / 'latest.json'}")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
