"""``dgnn-lab report RUN_DIR``: a finished run's directory gives the report and JSON ``train`` printed."""

from __future__ import annotations

import json

import pytest

from dgnn_lab.cli import main


@pytest.mark.slow
def test_report_of_a_run_directory_is_trains_own(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["train", "--dataset", "karate", "--workers", "2", "--epochs", "3", "--run-dir", str(run_dir)]
    assert main([*args, "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert main(["report", str(run_dir), "--json"]) == 0
    reported = json.loads(capsys.readouterr().out)
    assert reported == trained  # every field, the per-worker work and CPU times included
    from dgnn_lab.cli.train import report

    assert main(["report", str(run_dir)]) == 0
    assert capsys.readouterr().out == report(trained) + "\n"


def test_report_refuses_what_is_not_a_run_in_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "is not a directory" in err and err.count("\n") == 1
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds no run records (records*.jsonl)" in err and err.count("\n") == 1
