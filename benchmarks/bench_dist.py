"""The runtime's own costs: launch latency and the instrumented exchange against raw torch.distributed.

Run by hand::

    .venv/bin/python benchmarks/bench_dist.py [--workers 2] [--mb 1,16] [--reps 7]

Reports (1) launch latency: from ``launch()`` to each worker's ``ready`` record (process start, ``import
torch``, rendezvous) and to the end of a no-op run; (2) for each block size, the median time of one all-pairs
exchange of ``MB`` float32 per peer, raw ``batch_isend_irecv`` into freshly allocated receive buffers (the
baseline, same processes, same run; ``exchange`` returns new tensors, whose first touch costs page faults;
raw into reused buffers is shown too) vs ``Communicator.exchange`` (its ``comm`` part, and ``comm + wait``
which adds the barrier), with per-worker bandwidth and the ratio to the baseline. Wall-clock on a shared
machine: noisy when other processes run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mb", default="1,16", help="comma-separated block sizes in MB (per peer)")
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()

    from dgnn_lab.dist import cpu_cores, launch

    tmp = Path(tempfile.mkdtemp(prefix="bench_dist-"))
    print(f"{args.workers} workers on {cpu_cores()} cores (gloo, loopback)")

    t0 = time.time()
    h = launch("dgnn_lab.dist.testing:noop", {}, args.workers, run_dir=tmp / "noop")
    res = h.wait()
    ready = sorted(r["time"] - t0 for r in res.records if r["type"] == "ready")
    init = [r["init_s"] for r in res.records if r["type"] == "ready"]
    print(f"launch -> first ready record {ready[0]:.2f} s, last {ready[-1]:.2f} s "
          f"(rendezvous itself max {max(init) * 1e3:.1f} ms); whole no-op run {res.elapsed_s:.2f} s")

    for mb in (float(x) for x in args.mb.split(",")):
        res = launch("dgnn_lab.dist.testing:bandwidth", {"mb": mb, "reps": args.reps}, args.workers,
                     run_dir=tmp / f"bw{mb:g}").wait()
        recs = [r for r in res.records if r["type"] == "bench" and r["rep"] > 0]  # rep 0 warms up
        reuse = statistics.median(r["raw_s"] for r in recs)
        raw = statistics.median(r["raw_fresh_s"] for r in recs)
        comm = statistics.median(r["comm_s"] for r in recs)
        both = statistics.median(r["comm_s"] + r["wait_s"] for r in recs)
        nbytes = recs[0]["bytes"]
        gbs = [nbytes / t / 1e9 for t in (raw, comm, reuse)]
        print(f"{mb:g} MB per peer: raw p2p into fresh buffers {raw * 1e3:.2f} ms ({gbs[0]:.2f} GB/s per worker; "
              f"into reused buffers {reuse * 1e3:.2f} ms, {gbs[2]:.2f} GB/s) | exchange comm {comm * 1e3:.2f} ms "
              f"({gbs[1]:.2f} GB/s, {comm / raw:.2f}x raw) | comm+wait {both * 1e3:.2f} ms ({both / raw:.2f}x raw)")


if __name__ == "__main__":
    main()
