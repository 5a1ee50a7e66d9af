"""Sampler throughput: seeds per second for 2-hop fanout sampling on a 1M-node csbm graph.

Run by hand: ``.venv/bin/python benchmarks/bench_sampling.py [--small] [--threads N]`` (default: one torch
thread). Measured in the same run, on the same graph and seeds (batches of random training seeds, fanouts
``[10, 5]``, without replacement):

* the straightforward per-node Python loop (``ReferenceNeighborSampler``; timed on fewer seeds, per seed) — the
  baseline every ratio is against;
* ``NeighborSampler`` (vectorised torch: Floyd's algorithm, all nodes at once);
* ``NeighborLoader`` (the sampler plus building the batch ``Data``: ``x[n_id]``, labels, masks, ``e_id``);
* the layer-wise (LADIES, FastGCN) and subgraph (Cluster-GCN, GraphSAINT) loaders, for scale, in seeds (output
  nodes) per second;
* ``pyg_lib.sampler.neighbor_sample`` where pyg-lib is installed (reported as absent otherwise).
"""

from __future__ import annotations

import argparse
import os
import time

import torch


def rate(fn, seeds_per_call: int, min_s: float = 2.0, max_calls: int = 50) -> tuple[float, float, int]:
    """Seeds per second of ``fn`` by wall clock and by this process's CPU time (one warm-up call, then calls
    until ``min_s`` wall seconds or ``max_calls``). On a shared, busy machine the CPU-time figure is the
    steadier one: it leaves out the time the process waited for a core."""
    fn()
    calls, start, cpu = 0, time.perf_counter(), time.process_time()
    while calls < max_calls and (calls == 0 or time.perf_counter() - start < min_s):
        fn()
        calls += 1
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return seeds_per_call * calls / wall, seeds_per_call * calls / max(cpu, 1e-9), calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="100k nodes instead of 1M")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--fanouts", default="10,5")
    parser.add_argument("--python-seeds", type=int, default=256, help="seeds per call for the Python loop")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: sampling is memory-bound, and on a busy or oversubscribed "
                             "machine extra intra-op threads spin and slow every small op down; 0 = torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    from dgnn_lab import datasets
    from dgnn_lab.graph import to_csr
    from dgnn_lab.sampling import (
        ClusterGCNLoader,
        GraphSAINTRandomWalkSampler,
        LayerWiseSampler,
        NeighborLoader,
        NeighborSampler,
        ReferenceNeighborSampler,
    )

    n = 100_000 if args.small else 1_000_000
    fanouts = [int(f) for f in args.fanouts.split(",")]
    B = args.batch_size
    t = time.perf_counter()
    data = datasets.load("csbm", num_nodes=n, avg_degree=10)
    gen_s = time.perf_counter() - t
    t = time.perf_counter()
    csr = to_csr(data.edge_index, n)
    csr_s = time.perf_counter() - t
    print(f"csbm: {n:,} nodes, {data.edge_index.size(1):,} edges (generated in {gen_s:.1f} s, CSR {csr_s:.2f} s); "
          f"fanouts {fanouts}, batch {B}, torch threads {torch.get_num_threads()}")
    train = data.train_mask.nonzero().view(-1)
    train = train[torch.randperm(train.numel(), generator=torch.Generator().manual_seed(0))]
    cursor = [0]

    def batch_of(k: int) -> torch.Tensor:   # consecutive slices of one shuffled training set (not timed work)
        if cursor[0] + k > train.numel():
            cursor[0] = 0
        cursor[0] += k
        return train[cursor[0] - k:cursor[0]]

    rows = []
    ref = ReferenceNeighborSampler(csr, fanouts, seed=0)
    rows.append(("python per-node loop (baseline)", *rate(lambda: ref.sample(batch_of(args.python_seeds).tolist()),
                                                          args.python_seeds, max_calls=10)))
    vec = NeighborSampler(csr, fanouts, seed=0)
    rows.append(("NeighborSampler (vectorised torch)", *rate(lambda: vec.sample(batch_of(B)), B)))
    loader = NeighborLoader(data, fanouts, batch_size=B, input_nodes=data.train_mask, shuffle=True, seed=0)
    it = iter(loader)

    def next_batch():
        nonlocal it
        try:
            next(it)
        except StopIteration:
            it = iter(loader)
            next(it)

    rows.append(("NeighborLoader (+ gathers x, y, masks, e_id)", *rate(next_batch, B)))
    try:
        import pyg_lib

        def pyg():   # our CSR is by destination, i.e. pyg-lib's CSC layout
            pyg_lib.sampler.neighbor_sample(csr.indptr, csr.indices, batch_of(B), fanouts, csc=True, replace=False,
                                            directed=True, return_edge_id=True)

        rows.append(("pyg-lib neighbor_sample", *rate(pyg, B)))
    except ImportError:
        print("pyg-lib: not installed (skipped)")
    except Exception as exc:  # noqa: BLE001 - an optional comparison must not sink the benchmark
        print(f"pyg-lib: failed ({type(exc).__name__}: {exc}); skipped")
    for method in ("ladies", "fastgcn"):
        lw = LayerWiseSampler(data, [4 * B] * len(fanouts), method, seed=0)
        rows.append((f"{method} s={4 * B}/layer", *rate(lambda lw=lw: lw.sample(batch_of(B)), B)))
    clusters = torch.arange(n) * 1000 // n       # contiguous ranges: csbm ids carry no locality; just for cost
    cl = ClusterGCNLoader(data, clusters, batch_size=10, shuffle=True, seed=0)
    cl_it = iter(cl)
    rows.append(("cluster-gcn (10 of 1000 clusters)", *rate(lambda: next(cl_it), n // 100, max_calls=20)))
    sa = GraphSAINTRandomWalkSampler(data, batch_size=B, walk_length=2, sample_coverage=0, seed=0)
    rows.append((f"graphsaint rw {B} roots x 2 (no presampling)", *rate(sa.sample, B)))

    base_wall, base_cpu = rows[0][1], rows[0][2]
    print(f"{'sampler':46s} {'seeds/s wall':>13s} {'x python':>9s} {'seeds/s cpu':>12s} {'x python':>9s} "
          f"{'calls':>6s}")
    for name, wall, cpu, calls in rows:
        print(f"{name:46s} {wall:13,.0f} {wall / base_wall:9.1f} {cpu:12,.0f} {cpu / base_cpu:9.1f} {calls:6d}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("(seeds/s = output nodes per second; subgraph samplers count every node of the batch as an output.\n"
          " The Python baseline only samples; NeighborLoader also gathers every node attribute for ~50x as many\n"
          " nodes as seeds, memory-bound random reads that any loader, PyG's included, pays.)")


if __name__ == "__main__":
    main()
