"""The foundation CLI: exit codes, JSON validity, one-line errors (no tracebacks)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dgnn_lab.cli import main


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_doctor_json(capsys):
    code, out, _ = run_cli(capsys, "doctor", "--json")
    report = json.loads(out)
    names = {c["name"]: c for c in report["checks"]}
    assert code == 0 and report["ok"] is True
    for required in ("python", "torch", "gloo backend", "torch_geometric", "pymetis", "jupyterlab",
                     "ipywidgets front-end", "anywidget front-end", "loopback port", "smoke mode"):
        assert names[required]["status"] in ("ok", "warn"), required
    assert all(c["status"] in ("ok", "warn", "fail") for c in report["checks"])


def test_doctor_fails_with_fix_hint_when_something_is_missing(capsys, monkeypatch):
    import dgnn_lab.doctor as doctor

    real = doctor._version
    monkeypatch.setattr(doctor, "_version", lambda d: None if d == "pymetis" else real(d))
    code, out, _ = run_cli(capsys, "doctor")
    assert code == 1
    assert "[FAIL] pymetis" in out and "fix:" in out


def test_doctor_reports_smoke_mode(capsys, monkeypatch):
    monkeypatch.setenv("DGNN_LAB_SMOKE", "1")
    _, out, _ = run_cli(capsys, "doctor", "--json")
    smoke = next(c for c in json.loads(out)["checks"] if c["name"] == "smoke mode")
    assert smoke["detail"].startswith("on")


def test_doctor_reports_data_root_downloads_and_runs_root(capsys, monkeypatch, tmp_path):
    raw = tmp_path / "data" / "Planetoid" / "Cora" / "raw"
    raw.mkdir(parents=True)
    for part in ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index"):
        (raw / f"ind.cora.{part}").write_text("1")  # doctor looks at the files only
    monkeypatch.setenv("DGNN_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("DGNN_LAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DGNN_LAB_PLANETOID_URL", "http://mirror.example/planetoid/")
    code, out, _ = run_cli(capsys, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert code == 0
    assert checks["data root"]["detail"] == f"{tmp_path / 'data'} (from $DGNN_LAB_DATA)"
    assert checks["cora"]["detail"] == "on disk"
    assert checks["citeseer"]["detail"] == checks["pubmed"]["detail"] == "not on disk: will download on first use"
    assert str(tmp_path / "data" / "Planetoid" / "PubMed" / "raw") in checks["pubmed"]["fix"]
    assert checks["download URL"]["detail"] == "http://mirror.example/planetoid (from $DGNN_LAB_PLANETOID_URL)"
    assert checks["runs root"]["detail"] == f"{tmp_path / 'runs'} (from $DGNN_LAB_RUNS)"
    code, out, _ = run_cli(capsys, "doctor")
    assert f"data root             {tmp_path / 'data'}" in out and "not on disk: will download on first use" in out
    monkeypatch.delenv("DGNN_LAB_PLANETOID_URL")
    monkeypatch.delenv("DGNN_LAB_RUNS")
    _, out, _ = run_cli(capsys, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert checks["download URL"]["detail"].endswith("(PyG's default)")
    assert checks["runs root"]["detail"].endswith("(runs/ in the checkout)")


def test_doctor_report_displays_whole_in_a_notebook():
    from dgnn_lab.doctor import Check, Report, format_text, run_checks

    long = "/a/very/long/path/" * 12
    rep = Report([Check("x", "ok", long), Check("y", "fail", "missing", "pip install " + long)])
    html = rep._repr_html_()
    assert long in html and "pip install " + long in html  # never cut with "..."
    assert "white-space:normal" in html and "overflow-wrap:anywhere" in html
    assert str(rep) == format_text(rep) and "fix: pip install" in str(rep) and not rep.ok
    assert isinstance(run_checks(), Report)


def test_datasets_json_and_table(capsys):
    code, out, _ = run_cli(capsys, "datasets", "--json")
    payload = json.loads(out)
    assert code == 0
    assert [d["name"] for d in payload["datasets"]] == ["karate", "csbm", "powerlaw", "cora", "citeseer", "pubmed"]
    code, out, _ = run_cli(capsys, "datasets")
    assert code == 0 and "karate" in out and "data root:" in out


def test_datasets_data_root_marks_planetoid_available(capsys, planetoid_root):
    _, out, _ = run_cli(capsys, "datasets", "--json", "--data-root", str(planetoid_root))
    avail = {d["name"]: d["available"] for d in json.loads(out)["datasets"]}
    assert avail["cora"] and avail["citeseer"] and not avail["pubmed"]


def test_lab_dry_run_opens_the_welcome_notebook(capsys):
    code, out, _ = run_cli(capsys, "lab", "--dry-run", "--no-browser")
    words = out.split()
    assert code == 0 and words[1:3] == ["-m", "jupyterlab"] and "--no-browser" in words
    assert "00_welcome.ipynb" in words


def test_lab_unknown_notebook_is_a_one_line_error(capsys):
    code, _, err = run_cli(capsys, "lab", "--notebook", "nope.ipynb")
    assert code == 2 and "no notebook 'nope.ipynb'" in err and "00_welcome.ipynb" in err


def test_no_command_prints_help(capsys):
    code, out, _ = run_cli(capsys)
    assert code == 2 and "doctor" in out


@pytest.mark.parametrize("how", ["script", "module"])
def test_console_script_entry_point(how):
    # The installed `dgnn-lab` script and `python -m dgnn_lab.cli` reach the same main().
    script = shutil.which("dgnn-lab", path=str(Path(sys.executable).parent))
    if how == "script" and script is None:
        pytest.skip("the dgnn-lab console script is not installed beside this python (pip install -e .)")
    argv = [script] if how == "script" else [sys.executable, "-m", "dgnn_lab.cli"]
    proc = subprocess.run([*argv, "datasets", "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["datasets"][0]["name"] == "karate"


@pytest.mark.parametrize("argv", [["doctor", "--bogus"], ["datasets", "--json", "extra"]])
def test_bad_arguments_exit_2(argv):
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2


TRAINING_STACK = ("dgnn_lab.train", "dgnn_lab.execution", "dgnn_lab.protocols", "dgnn_lab.dist",
                  "dgnn_lab.experiments")


def _imported(*argv: str) -> list[str]:
    """The modules ``python -X importtime *argv`` imports (its import log on stderr)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]


@pytest.mark.parametrize("argv", [["-m", "dgnn_lab.cli", "doctor", "--json"], ["-c", "import dgnn_lab.cli"],
                                  ["-m", "dgnn_lab.cli", "--help"]])
def test_doctor_and_help_do_not_import_the_training_stack(argv):
    # doctor reports torch's version (torch may load); the trainers, protocols and launcher must not
    mods = _imported(*argv)
    assert "dgnn_lab.cli" in mods
    heavy = [m for m in mods if m.startswith(TRAINING_STACK)]
    assert not heavy, f"{' '.join(argv)} imports {heavy}"
    if argv[-1] != "--json":
        assert "torch_geometric" not in mods
