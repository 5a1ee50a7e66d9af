"""torchrun entry: ``torchrun --nnodes N --nproc-per-node K ... -m dgnn_lab.worker CONFIG.json``.

CONFIG.json is ``{"entry": "module:function", "config": {...}, "run_dir": "...", "backend": "auto",
"timeout_s": 60, "threads_per_worker": null}`` (only ``entry`` is required). Rendezvous is ``env://``
(torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT). Each rank writes
its telemetry to ``run_dir/records-rank<R>.jsonl`` (on a shared filesystem, or gather the files afterwards);
``RunResult.load(run_dir)`` merges them. ``run_dir`` defaults to ``runs/torchrun-<TORCHELASTIC_RUN_ID>``.

Exit status: 0 when the entry returned, 1 when it raised (an ``error`` record with the traceback is
written first), 143 on SIGTERM (torchrun stopping the job) and 130 on Ctrl-C (a ``stopped`` record is
written first).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from dgnn_lab.dist.context import init_worker, parse_entry, resolve_backend, run_entry, shutdown
from dgnn_lab.dist.launch import error_record
from dgnn_lab.dist.telemetry import JsonlWriter, jsonable
from dgnn_lab.settings import runs_root


def _env_int(name: str, default: int | None = None) -> int:
    val = os.environ.get(name)
    if val is None:
        if default is None:
            raise SystemExit(f"dgnn_lab.worker: ${name} is not set; start this module with torchrun "
                             f"(or set RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT yourself)")
        return default
    return int(val)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: torchrun ... -m dgnn_lab.worker CONFIG.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text())
    entry = parse_entry(spec.get("entry", ""))
    rank, world_size = _env_int("RANK"), _env_int("WORLD_SIZE")
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world_size = _env_int("LOCAL_WORLD_SIZE", 1)
    run_id = os.environ.get("TORCHELASTIC_RUN_ID", "none")
    run_dir = Path(spec.get("run_dir") or runs_root() / f"torchrun-{run_id}").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    writer = JsonlWriter(run_dir / f"records-rank{rank}.jsonl")
    if rank == 0 and not (run_dir / "config.json").exists():
        (run_dir / "config.json").write_text(json.dumps({**spec, "world_size": world_size}, indent=2))

    def on_term(signum: int, frame: object) -> None:
        writer.write({"type": "stopped", "rank": rank, "time": time.time(), "signal": signal.Signals(signum).name})
        writer.close()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        backend = resolve_backend(spec.get("backend", "auto"), local_world_size)
        where = f" (env:// {os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')})"
        ctx = init_worker(rank=rank, world_size=world_size, local_rank=local_rank,
                          local_world_size=local_world_size, backend=backend,
                          timeout_s=float(spec.get("timeout_s", 60.0)),
                          num_threads=spec.get("threads_per_worker"), where=where,
                          sink=writer.write, run_dir=run_dir)
        run_entry(ctx, entry, spec.get("config", {}))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: an interrupt, not a failure
        writer.write({"type": "stopped", "rank": rank, "time": time.time(), "signal": "SIGINT"})
        writer.close()
        os._exit(128 + signal.SIGINT)
    except BaseException as e:  # noqa: BLE001 - every failure is recorded before exiting
        if isinstance(e, SystemExit) and e.code in (0, None):
            pass
        else:
            rec = error_record(rank, e)
            tb = rec["traceback"]
            writer.write(jsonable(rec))
            writer.close()
            print(f"dgnn_lab.worker rank {rank} failed:\n{tb}", file=sys.stderr, flush=True)
            os._exit(1)
    shutdown()
    writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
