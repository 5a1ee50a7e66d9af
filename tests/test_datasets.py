"""Datasets: generator statistics, determinism, Planetoid shapes, and every bad-input path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dgnn_lab import datasets
from dgnn_lab.graph import is_undirected


def _homophily(data) -> float:
    s, d = data.edge_index
    return (data.y[s] == data.y[d]).float().mean().item()


@pytest.mark.parametrize("homophily", [0.1, 0.5, 0.9])
def test_csbm_statistics_match_request(homophily):
    data = datasets.load("csbm", num_nodes=20_000, avg_degree=12, homophily=homophily, num_classes=5, seed=3)
    assert data.num_nodes == 20_000
    assert data.edge_index.size(1) / data.num_nodes == pytest.approx(12, rel=0.02)
    assert _homophily(data) == pytest.approx(homophily, abs=0.02)
    assert is_undirected(data.edge_index, data.num_nodes)
    assert not (data.edge_index[0] == data.edge_index[1]).any()
    assert torch.bincount(data.y).tolist() == [4000] * 5


def test_csbm_features_and_split():
    data = datasets.load("csbm", num_nodes=1000, num_features=7, train_frac=0.5, val_frac=0.25)
    assert data.x.shape == (1000, 7)
    assert (data.train_mask.sum(), data.val_mask.sum(), data.test_mask.sum()) == (500, 250, 250)
    assert not (data.train_mask & data.val_mask).any() and not (data.val_mask & data.test_mask).any()
    assert (data.train_mask | data.val_mask | data.test_mask).all()
    # The feature signal is real: class means are separated far more than noise alone would allow.
    means = torch.stack([data.x[data.y == c].mean(0) for c in range(4)])
    assert torch.cdist(means, means).max() > 0.5


@pytest.mark.parametrize("name", ["csbm", "powerlaw", "karate"])
def test_deterministic_by_seed(name):
    params = {} if name == "karate" else {"num_nodes": 3000}
    a, b = datasets.load(name, seed=1, **params), datasets.load(name, seed=1, **params)
    for key in ("x", "y", "edge_index", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(a[key], b[key]), key
    if name != "karate":
        c = datasets.load(name, seed=2, **params)
        assert not torch.equal(a.edge_index, c.edge_index)


def test_powerlaw_is_skewed_and_homophilous():
    data = datasets.load("powerlaw", num_nodes=20_000, avg_degree=10, homophily=0.8, exponent=2.2)
    deg = torch.bincount(data.edge_index[1], minlength=data.num_nodes).float()
    csbm_deg = torch.bincount(datasets.load("csbm", num_nodes=20_000).edge_index[1]).float()
    # Hubs: the top degree dwarfs the mean, far beyond what the SBM's binomial degrees produce.
    assert deg.max() / deg.mean() > 10 * (csbm_deg.max() / csbm_deg.mean())
    assert deg.mean() == pytest.approx(10, rel=0.2)  # duplicate draws between hubs are dropped
    assert _homophily(data) == pytest.approx(0.8, abs=0.05)
    assert is_undirected(data.edge_index, data.num_nodes)


def test_karate():
    data = datasets.load("karate")
    assert data.num_nodes == 34 and data.edge_index.size(1) == 156
    assert data.y[0] == 0 and data.y[33] == 1 and int(data.y.sum()) == 17
    assert data.train_mask.sum() == 4


def test_csbm_scales_in_linear_memory():
    # O(edges) generation: 200k nodes would exhaust memory with an O(n^2) block model.
    data = datasets.load("csbm", num_nodes=200_000, avg_degree=4)
    assert data.edge_index.size(1) == pytest.approx(800_000, rel=0.01)


def test_list_datasets_describes_everything():
    infos = {i.name: i for i in datasets.list_datasets()}
    assert set(infos) == {"karate", "csbm", "powerlaw", "cora", "citeseer", "pubmed"}
    for info in infos.values():
        assert info.description and info.nodes > 0 and info.edges > 0
    assert infos["karate"].available and infos["csbm"].available


def test_planetoid_shapes(planetoid_root):
    cora = datasets.load("cora", root=planetoid_root)
    assert cora.x.shape == (2708, 1433) and cora.edge_index.shape == (2, 10556)
    assert (int(cora.train_mask.sum()), int(cora.val_mask.sum()), int(cora.test_mask.sum())) == (140, 500, 1000)
    assert int(cora.y.max()) + 1 == 7
    citeseer = datasets.load("citeseer", root=planetoid_root)
    assert citeseer.x.shape == (3327, 3703) and citeseer.edge_index.shape == (2, 9104)
    assert int(citeseer.train_mask.sum()) == 120
    assert {i.name for i in datasets.list_datasets(planetoid_root) if i.available} >= {"cora", "citeseer"}


def test_planetoid_root_from_environment(planetoid_root, monkeypatch):
    monkeypatch.setenv("DGNN_LAB_DATA", str(planetoid_root))
    assert datasets.load("cora").num_nodes == 2708


# ------------------------------------------------------------------ Planetoid downloads (a local server)

TINY = {"train": 30, "all": 560, "test": 40, "features": 6, "classes": 3}  # 600 nodes: 30 / 500 / 40 split
TINY_NODES = TINY["all"] + TINY["test"]


def _write_tiny_planetoid(folder: Path, stem: str = "cora") -> None:
    """A small but valid set of the eight Planetoid files (the format ``torch_geometric.io.read_planetoid_data``
    reads): node ``i`` has label ``i % 3`` and feature ``i % 6`` set, the graph is a ring (600 undirected
    edges, plus a self-loop PyG drops), the test nodes are 560..599 listed in a shuffled order."""
    import pickle
    from collections import defaultdict

    import numpy as np
    import scipy.sparse as sp

    n, c, f = TINY_NODES, TINY["classes"], TINY["features"]
    rng = np.random.default_rng(0)
    test_index = rng.permutation(np.arange(TINY["all"], n))

    def feats(ids):
        m = np.zeros((len(ids), f), dtype=np.float32)
        m[np.arange(len(ids)), np.asarray(ids) % f] = 1
        return sp.csr_matrix(m)

    def onehot(ids):
        m = np.zeros((len(ids), c), dtype=np.int64)
        m[np.arange(len(ids)), np.asarray(ids) % c] = 1
        return m

    train_ids, all_ids = np.arange(TINY["train"]), np.arange(TINY["all"])
    graph = defaultdict(list)
    for i in range(n):
        graph[i] += [(i - 1) % n, (i + 1) % n]
    graph[0].append(0)
    parts = {"x": feats(train_ids), "y": onehot(train_ids), "allx": feats(all_ids), "ally": onehot(all_ids),
             "tx": feats(test_index), "ty": onehot(test_index), "graph": graph}
    folder.mkdir(parents=True, exist_ok=True)
    for part, obj in parts.items():
        (folder / f"ind.{stem}.{part}").write_bytes(pickle.dumps(obj))
    (folder / f"ind.{stem}.test.index").write_text("".join(f"{i}\n" for i in test_index))


class _Server:
    """``http.server`` on 127.0.0.1 serving ``folder`` from a thread; ``requested`` lists the paths asked for."""

    def __init__(self, folder: Path) -> None:
        import functools
        import threading
        from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

        requested = self.requested = []

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def send_head(self):
                requested.append(self.path.lstrip("/"))
                return super().send_head()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def serve(monkeypatch, tmp_path):
    """``serve(folder)``: serve it and point DGNN_LAB_PLANETOID_URL at it; DGNN_LAB_DATA is a fresh tmp dir."""
    servers = []
    monkeypatch.setenv("DGNN_LAB_DATA", str(tmp_path / "data"))

    def start(folder: Path) -> _Server:
        srv = _Server(folder)
        servers.append(srv)
        monkeypatch.setenv("DGNN_LAB_PLANETOID_URL", srv.url)
        return srv

    yield start
    for srv in servers:
        srv.close()


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_planetoid_downloads_from_the_url_into_the_data_root(serve, tmp_path):
    _write_tiny_planetoid(tmp_path / "mirror")
    srv = serve(tmp_path / "mirror")
    assert not datasets.list_datasets()[3].available  # cora: not on disk yet
    data = datasets.load("cora")
    assert data.num_nodes == TINY_NODES and data.x.shape == (TINY_NODES, TINY["features"])
    assert data.edge_index.shape == (2, 2 * TINY_NODES)  # the ring, both directions; the self-loop dropped
    assert is_undirected(data.edge_index, TINY_NODES)
    assert torch.equal(data.y, torch.arange(TINY_NODES) % TINY["classes"])  # test rows put back in node order
    assert torch.equal(data.x.argmax(1), torch.arange(TINY_NODES) % TINY["features"])
    assert (int(data.train_mask.sum()), int(data.val_mask.sum()), int(data.test_mask.sum())) == (30, 500, 40)
    assert data.train_mask[:30].all() and data.val_mask[30:530].all() and data.test_mask[560:].all()
    raw = tmp_path / "data" / "Planetoid" / "Cora" / "raw"
    names = sorted(f"ind.cora.{p}" for p in datasets.PLANETOID_FILES)
    assert sorted(p.name for p in raw.iterdir()) == names
    assert set(srv.requested) == set(names)
    assert next(i for i in datasets.list_datasets() if i.name == "cora").available
    before = len(srv.requested)
    assert datasets.load("cora").num_nodes == TINY_NODES  # on disk now: nothing is fetched again
    assert len(srv.requested) == before


def test_planetoid_download_fetches_only_the_missing_files(serve, tmp_path):
    _write_tiny_planetoid(tmp_path / "mirror")
    raw = tmp_path / "data" / "Planetoid" / "Cora" / "raw"
    _write_tiny_planetoid(raw)
    (raw / "ind.cora.graph").unlink()
    (raw / "ind.cora.tx").write_bytes(b"")  # an interrupted copy: empty is missing
    srv = serve(tmp_path / "mirror")
    assert datasets.settings.planetoid_missing("cora") == ["ind.cora.tx", "ind.cora.graph"]
    assert datasets.load("cora").edge_index.shape == (2, 2 * TINY_NODES)
    assert set(srv.requested) == {"ind.cora.graph", "ind.cora.tx"}  # (fsspec asks for each more than once)


def test_offline_planetoid_is_one_clear_error(serve, tmp_path, monkeypatch):
    serve(tmp_path / "mirror")  # sets DGNN_LAB_DATA; the URL is replaced by a closed port below
    url = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("DGNN_LAB_PLANETOID_URL", url)
    with pytest.raises(FileNotFoundError) as err:
        datasets.load("cora")
    msg = str(err.value)
    raw = tmp_path / "data" / "Planetoid" / "Cora" / "raw"
    assert msg.startswith("dataset 'cora' is not on disk and could not be downloaded from " + url)
    assert "\n" not in msg and f"into {raw}/" in msg
    assert ", ".join(f"ind.cora.{p}" for p in datasets.PLANETOID_FILES) in msg
    assert "DGNN_LAB_DATA" in msg and "--data-root" in msg and "DGNN_LAB_PLANETOID_URL" in msg
    assert not raw.exists()  # nothing left that could later look like a dataset


def test_a_download_failing_midway_leaves_no_partial_files(serve, tmp_path):
    _write_tiny_planetoid(tmp_path / "mirror")
    (tmp_path / "mirror" / "ind.cora.graph").unlink()  # the 7th of 8 files: a 404 after 6 arrived
    srv = serve(tmp_path / "mirror")
    with pytest.raises(FileNotFoundError, match=r"could not be downloaded from .*ind\.cora\.graph"):
        datasets.load("cora")
    assert "ind.cora.allx" in srv.requested  # earlier files were fetched...
    raw = tmp_path / "data" / "Planetoid" / "Cora" / "raw"
    assert not raw.exists() or not any(raw.iterdir())  # ...but none of them is left in raw/
    assert not next(i for i in datasets.list_datasets() if i.name == "cora").available
    assert not list((tmp_path / "data").rglob("ind.cora.*"))


def test_unreadable_download_is_not_left_on_disk(serve, tmp_path):
    mirror = tmp_path / "mirror"
    _write_tiny_planetoid(mirror)
    (mirror / "ind.cora.allx").write_text("<html>a mirror's error page</html>")
    serve(mirror)
    with pytest.raises(FileNotFoundError, match="could not be downloaded"):
        datasets.load("cora")
    assert datasets.settings.planetoid_missing("cora") == [f"ind.cora.{p}" for p in datasets.PLANETOID_FILES]


def test_default_url_is_pygs_own():
    from torch_geometric.datasets import Planetoid

    from dgnn_lab import settings

    assert settings.PYG_PLANETOID_URL == Planetoid.url  # doctor's copy of it (doctor does not import PyG)


def test_real_cora_through_the_download_path(serve, tmp_path):
    from .conftest import _shared_planetoid

    src = _shared_planetoid()
    if src is None:
        pytest.skip("no shared Planetoid files to serve")
    serve(src / "Planetoid" / "Cora" / "raw")
    cora = datasets.load("cora")
    assert cora.num_nodes == 2708 and cora.edge_index.shape == (2, 10556)
    assert (tmp_path / "data" / "Planetoid" / "Cora" / "raw" / "ind.cora.graph").is_file()


@pytest.mark.slow
def test_train_downloads_once_then_trains(serve, tmp_path, monkeypatch):
    # The launching process downloads (and PyG processes) once; the workers find the files on disk. The run,
    # started without run_dir, lands under $DGNN_LAB_RUNS, not in the current directory.
    from dgnn_lab.train import train

    _write_tiny_planetoid(tmp_path / "mirror")
    srv = serve(tmp_path / "mirror")
    monkeypatch.setenv("DGNN_LAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)
    res = train(dataset="cora", workers=2, epochs=1, partition="random", hidden=8)
    assert res.status == "done" and res.world_size == 2
    assert set(srv.requested) == {f"ind.cora.{p}" for p in datasets.PLANETOID_FILES}
    assert res.run_dir.parent == (tmp_path / "runs").resolve()
    assert (tmp_path / "data" / "Planetoid" / "Cora" / "processed").is_dir()
    assert res.summary()["test_acc_at_best_val"] is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "mirror", "runs"]  # no ./runs


def test_train_offline_is_the_same_one_error(serve, tmp_path, monkeypatch):
    from dgnn_lab.train import train

    serve(tmp_path / "mirror")
    monkeypatch.setenv("DGNN_LAB_PLANETOID_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("DGNN_LAB_RUNS", str(tmp_path / "runs"))
    with pytest.raises(FileNotFoundError, match="'cora' is not on disk and could not be downloaded"):
        train(dataset="cora", workers=2, epochs=1)


# ---------------------------------------------------------------------------- where data and runs live


def test_runs_root_and_data_root_defaults(monkeypatch, tmp_path):
    from dgnn_lab import settings

    monkeypatch.delenv("DGNN_LAB_RUNS", raising=False)
    monkeypatch.delenv("DGNN_LAB_DATA", raising=False)
    assert settings.in_checkout()
    assert settings.runs_root() == settings.REPO_ROOT / "runs"
    assert settings.data_root() == settings.REPO_ROOT / "datasets"
    monkeypatch.setenv("DGNN_LAB_RUNS", str(tmp_path / "r"))
    assert settings.runs_root() == tmp_path / "r"
    # installed into site-packages (no pyproject.toml beside the package): a home folder, not site-packages
    monkeypatch.delenv("DGNN_LAB_RUNS")
    monkeypatch.setattr(settings, "REPO_ROOT", tmp_path / "site-packages")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert not settings.in_checkout()
    assert settings.data_root() == tmp_path / "home" / ".cache" / "dgnn_lab" / "datasets"
    assert settings.runs_root() == tmp_path / "home" / "dgnn_lab_runs"
    assert settings.data_root(tmp_path / "d") == tmp_path / "d"


def test_default_run_dirs_are_under_the_runs_root(monkeypatch, tmp_path):
    # (a real run without run_dir: test_train_downloads_once_then_trains)
    from dgnn_lab.dist.launch import _new_run_dir
    from dgnn_lab.experiments.compare import run_dir_for

    monkeypatch.setenv("DGNN_LAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path / "..")
    assert _new_run_dir().parent == tmp_path / "runs"
    assert run_dir_for("sync", {"dataset": "karate"}).parent == tmp_path / "runs" / "compare"
    assert run_dir_for("sync", {"dataset": "karate"}, root=tmp_path / "mine").parent == tmp_path / "mine"


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'corra'.*karate, csbm, powerlaw, cora"):
        datasets.load("corra")


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"homophily": 1.5}, r"homophily must be in \[0.0, 1.0\], got 1.5"),
        ({"homophily": -0.1}, r"homophily must be in \[0.0, 1.0\]"),
        ({"num_nodes": 0}, r"num_nodes must be >= 1, got 0"),
        ({"num_nodes": 2.5}, r"num_nodes must be an integer, got 2.5"),
        ({"num_classes": 0}, r"num_classes must be in \[1, "),
        ({"avg_degree": -1}, r"avg_degree must be in \[0.0, "),
        ({"num_features": 0}, r"num_features must be >= 1"),
        ({"feature_signal": -1}, r"feature_signal must be >= 0.0"),
        ({"train_frac": 0.8, "val_frac": 0.5}, r"train_frac \+ val_frac must be <= 1"),
        ({"seed": -1}, r"seed must be >= 0"),
        ({"num_nodez": 10}, r"takes no parameter 'num_nodez'; allowed: num_nodes"),
    ],
)
def test_bad_csbm_parameters(params, pattern):
    with pytest.raises(ValueError, match=pattern):
        datasets.load("csbm", **params)


def test_bad_powerlaw_exponent():
    with pytest.raises(ValueError, match=r"exponent must be > 2.0, got 1.5"):
        datasets.load("powerlaw", exponent=1.5)


def test_parse_dataset_args_types_and_errors():
    assert datasets.parse_dataset_args("csbm", ["num_nodes=500", "homophily=0.25"]) == {
        "num_nodes": 500, "homophily": 0.25}
    with pytest.raises(ValueError, match="is not KEY=VALUE"):
        datasets.parse_dataset_args("csbm", ["num_nodes"])
    with pytest.raises(ValueError, match="num_nodes must be a number, got 'many'"):
        datasets.parse_dataset_args("csbm", ["num_nodes=many"])
    with pytest.raises(ValueError, match="takes no parameter 'bogus'"):
        datasets.parse_dataset_args("karate", ["bogus=1"])


STAND_IN = {"dataset": "csbm", "dataset_args": {"num_nodes": 300, "seed": 0}}


def test_choose_says_which_dataset_and_why(tmp_path, monkeypatch, capsys):
    # A notebook never swaps datasets silently: the stand-in comes with a printed reason.
    monkeypatch.setenv("DGNN_LAB_PLANETOID_URL", "http://127.0.0.1:9")  # a closed port: offline
    monkeypatch.setenv("DGNN_LAB_SMOKE", "1")
    frag = datasets.choose("cora", STAND_IN, root=tmp_path)
    assert frag == {"dataset": "csbm", "dataset_args": {"num_nodes": 300, "seed": 0}}
    out = capsys.readouterr().out
    assert out.startswith("NOTE: using csbm (num_nodes=300, seed=0) instead of cora: smoke mode does not download")
    monkeypatch.setenv("DGNN_LAB_SMOKE", "0")
    assert datasets.choose("cora", STAND_IN, root=tmp_path)["dataset"] == "csbm"
    out = capsys.readouterr().out
    assert "instead of cora: dataset 'cora' is not on disk and could not be downloaded from http://127.0.0.1:9" in out
    assert not (tmp_path / "Planetoid" / "Cora" / "raw").exists()


def test_choose_takes_the_real_dataset_when_it_is_there(planetoid_root, monkeypatch, capsys):
    monkeypatch.setenv("DGNN_LAB_SMOKE", "1")
    frag = datasets.choose("cora", STAND_IN, root=planetoid_root)
    assert frag == {"dataset": "cora", "dataset_args": {"root": str(planetoid_root)}}
    assert capsys.readouterr().out.startswith("dataset: cora (")
    assert datasets.load(frag["dataset"], **frag["dataset_args"]).num_nodes == 2708
