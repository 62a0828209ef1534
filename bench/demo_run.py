"""Time the sandbox demo end to end and print one JSON object.

    python bench/demo_run.py --customers 500 --days 40 --seed 7 [--database-url URL]

Runs ``run_demo`` (renewals, charges, retries and steps through the real
worker) on a fresh database and reports its figures with the throughput:
renewal invoices and charge attempts per second of wall time.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
from pathlib import Path

from dunwell.bootstrap import bootstrap
from dunwell.services.demo import run_demo
from dunwell.settings import Settings
from dunwell.store.migrate import upgrade


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=500)
    parser.add_argument("--days", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        app = bootstrap(Settings(database_url=url))
        upgrade(app.engine)
        result = run_demo(app, args.customers, args.days, args.seed)
        app.close()
    figures = result.figures
    seconds = figures["elapsed_s"]
    print(
        json.dumps(
            {
                "customers": args.customers,
                "days": args.days,
                "seed": args.seed,
                "backend": url.split(":", 1)[0],
                **figures,
                "attempts_per_s": round(figures["attempts"] / seconds, 1) if seconds else None,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
