"""``dunwell concierge parse`` over N request lines in one process; prints JSON.

    python bench/concierge_parse.py [--lines 20000] [--json]

Builds N request lines by cycling the requests of
``tests/data/concierge_cases.jsonl``, starts the real command as a
subprocess (rules only: ``--no-llm``), and times it:

- ``startup_seconds``: from starting the process to reading the answer to
  the first line, sent alone (interpreter, imports, first parse);
- ``seconds``: from starting the process to the last answer, with the
  remaining lines streamed in by a writer thread while answers are read;
- ``messages_per_second``: lines answered per second after the first one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from itertools import cycle, islice
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "tests" / "data" / "concierge_cases.jsonl"
DUNWELL = str(Path(sys.executable).parent / "dunwell")


def request_lines(count: int) -> list[str]:
    cases = [json.loads(line) for line in CASES.read_text(encoding="utf-8").splitlines() if line]
    requests = (json.dumps(case["request"], ensure_ascii=False) + "\n" for case in cases)
    return list(islice(cycle(list(requests)), count))


def feed(stdin: IO[str], lines: list[str]) -> None:
    for line in lines:
        stdin.write(line)
    stdin.close()


def run(count: int) -> dict[str, Any]:
    lines = request_lines(count)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNWELL_")}
    started = time.perf_counter()
    process = subprocess.Popen(
        [DUNWELL, "concierge", "parse", "--no-llm"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
        encoding="utf-8",
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(lines[0])
    process.stdin.flush()
    first = process.stdout.readline()
    first_answered = time.perf_counter()
    writer = threading.Thread(target=feed, args=(process.stdin, lines[1:]))
    writer.start()
    answered = 1 + sum(1 for _ in process.stdout)
    finished = time.perf_counter()
    writer.join()
    process.stdout.close()
    if process.wait() != 0 or answered != count or "error" in json.loads(first):
        raise SystemExit(f"answered {answered} of {count} lines, exit {process.returncode}")
    return {
        "lines": count,
        "seconds": round(finished - started, 3),
        "messages_per_second": round((count - 1) / (finished - first_answered)),
        "startup_seconds": round(first_answered - started, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--json", action="store_true", help="print JSON only (the default)")
    args = parser.parse_args()
    print(json.dumps(run(args.lines)))


if __name__ == "__main__":
    main()
