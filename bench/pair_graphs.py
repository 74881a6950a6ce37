"""Two HNSW graphs of one kept gallery, timed alternately: which one reaches a recall for less time.

    .venv/bin/python bench/pair_graphs.py --out /tmp/m1m bench_matching_1000000_m24 bench_matching_1000000 \
        --ef 80,90,120,130 --queries 2000 --query-seed 3

The databases are galleries that bench/matching.py --keep left in --out, the same vectors each
with its own index: a first --keep run, its database renamed aside (ALTER DATABASE
bench_matching_1000000 RENAME TO bench_matching_1000000_m24), then a second --keep run with other
--m / --ef-construction, which loads the same seeded vectors again. Each round times every
ef_search on each database in turn, the order flipped every other round, so that this VM's drift
from minute to minute falls on both. Give the server a shared_buffers that holds both indexes
(ALTER SYSTEM, then restart), else each evicts the other.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.matching import ExactSearch, Gallery, kept_gallery_url, parse_sizes, time_ours


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("databases", nargs=2, help="two kept gallery databases of the same size")
    parser.add_argument("--out", type=Path, required=True, help="bench/matching.py's --out of the kept galleries")
    parser.add_argument("--size", type=lambda s: parse_sizes(s)[0], default=1_000_000)
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--look-alikes", type=int, default=100)
    parser.add_argument("--ef", type=lambda s: [int(v) for v in s.split(",")], default=[80, 100, 130])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--query-seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the timings here")
    args = parser.parse_args()
    urls = {name: kept_gallery_url(args.out, name, args.size) for name in args.databases}
    gallery = Gallery(args.size, args.photos, args.look_alikes)
    _, queries = gallery.queries(args.queries, salt=args.query_seed)
    _, warm_up = gallery.queries(1000, salt=2)
    exact = ExactSearch(queries)
    for identity, vectors in gallery.chunks():
        exact.update(identity, vectors)
    truth = exact.ids()
    rows = []
    for round_ in range(args.rounds):
        for ef in args.ef:
            for name in args.databases if round_ % 2 == 0 else reversed(args.databases):
                first = round_ == 0 and ef == args.ef[0]
                timing = time_ours(
                    urls[name], name, f"SET hnsw.ef_search = {ef}", queries, truth, warm_up if first else warm_up[:100]
                )
                rows.append({"round": round_, "database": name, "ef_search": ef, **vars(timing)})
                print(
                    f"round {round_}  {name:<32} ef_search {ef:>4}  p50 {timing.p50_ms:6.2f} ms  "
                    f"p95 {timing.p95_ms:6.2f} ms  recall@1 {timing.recall_at_1:.3f}",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
