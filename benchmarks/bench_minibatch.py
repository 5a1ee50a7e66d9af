"""Distributed mini-batch training: feature bytes saved by each cache, and the pipelining speedup.

Run by hand: ``.venv/bin/python benchmarks/bench_minibatch.py [--nodes 20000] [--epochs 3] [--workers 2]``.

(a) **Caches.** The same training (powerlaw graph: a few hubs, a long tail; METIS; GraphSAGE, fanouts 10,5)
    with no cache, the degree cache (PaGraph) and the pre-sampling cache (GNNLab) at several capacities, all in
    one launch (:func:`dgnn_lab.experiments.studies.cache_sweep`). Printed per run: the measured hit rate, feature
    bytes fetched per epoch (counted by the communicator) and their ratio to the no-cache run of this launch.
(b) **Pipelining.** The same training with sampling + fetching of batch ``i + 1`` in a background thread while
    batch ``i`` trains, against the sequential loop, in one launch: the loop's wall time per epoch (slowest
    worker), the overlap measured as stage seconds minus wall seconds, and the speedup off / on.

On a shared 2-core machine the workers, their prefetch threads and other processes compete for the same
cores, so the pipelining speedup is bounded by the idle time (waiting on peers) that the overlap can fill; the
script prints the load average. Bytes are exact whatever the load.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--sizes", default="0.05,0.1,0.25,0.5", help="cache capacities (fractions), comma-separated")
    args = parser.parse_args()

    import pandas as pd

    from dgnn_lab.experiments.studies import cache_sweep, pipeline_comparison

    pd.set_option("display.width", 200)
    base = {"dataset": "powerlaw", "dataset_args": {"num_nodes": args.nodes, "avg_degree": 10},
            "workers": args.workers, "partition": "metis", "mode": "minibatch", "model": "sage", "hidden": 64,
            "fanouts": [10, 5], "batch_size": args.batch_size, "epochs": args.epochs, "eval_every": 0,
            "timeout_s": 300}
    sizes = [float(s) for s in args.sizes.split(",")]
    print(f"powerlaw {args.nodes:,} nodes, {args.workers} workers, {args.epochs} epochs, batch {args.batch_size}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        sweep = cache_sweep(base, sizes=sizes, run_dir=str(Path(tmp) / "caches"))
        print(f"\n(a) caches ({time.time() - t0:.0f} s for {len(sweep)} runs in one launch)")
        none = float(sweep.loc[sweep["policy"] == "none", "bytes_fetched"].iloc[0])
        for _, r in sweep.iterrows():
            print(f"  {r['variant']:>16}: hit rate {r['hit_rate']:6.1%}  feature bytes/epoch "
                  f"{r['bytes_fetched'] / 1e6:8.2f} MB  ratio to none {r['bytes_fetched'] / none:5.3f}  "
                  f"(cache {r['cache_bytes'] / 1e6:.2f} MB, {r['cache_rows']:,} rows)")
        t0 = time.time()
        pipe = pipeline_comparison(base, run_dir=str(Path(tmp) / "pipeline"))
        print(f"\n(b) pipelining ({time.time() - t0:.0f} s for 2 runs in one launch)")
        for _, r in pipe.iterrows():
            print(f"  pipeline {'on ' if r['pipeline'] else 'off'}: loop {r['loop_s']:.3f} s/epoch  stages "
                  f"sample {r['sample_s']:.3f} + fetch {r['fetch_s']:.3f} + train {r['train_s']:.3f} s (all "
                  f"workers)  overlap {r['overlap_s']:.3f} s")
        print(f"  speedup (loop time off / on): {float(pipe['speedup'].iloc[1]):.2f}x; load average now "
              f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
