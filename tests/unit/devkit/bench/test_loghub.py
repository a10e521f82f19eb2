"""``obs-etl bench patterns --loghub DIR``: reading labeled LogHub-style CSVs and scoring them."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from airflow_obs_provider.cli import main
from airflow_obs_provider.devkit.bench.loghub import load_dir, load_sample, print_report

HEADER = ["LineId", "Date", "Time", "Level", "Component", "Content", "EventId", "EventTemplate"]


def _write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _sample_rows() -> list[list[str]]:
    users = ["root", "admin", "guest", "oracle"]
    rows = [[str(i), "081109", f"2036{i:02d}", "INFO", "sshd", f"Invalid user {u} from 10.0.0.{i}", "E1",
             "Invalid user <*> from <*>"] for i, u in enumerate(users, 1)]
    rows += [[str(10 + i), "081109", f"2040{i:02d}", "WARN", "sshd", f"Connection closed by 10.0.1.{i} [preauth]",
              "E2", ""] for i in range(3)]
    return rows


def test_a_sample_gives_contents_raw_lines_and_truth(tmp_path: Path) -> None:
    sample = load_sample(_write(tmp_path / "Demo" / "Demo_2k.log_structured_corrected.csv", _sample_rows()))
    assert sample.system == "Demo"
    assert sample.contents[0] == "Invalid user root from 10.0.0.1"
    assert sample.raw_lines[0] == "081109 203601 INFO sshd Invalid user root from 10.0.0.1"
    # EventTemplate when given, EventId when that column is empty
    assert sample.truth[:4] == ["Invalid user <*> from <*>"] * 4 and sample.truth[4:] == ["E2"] * 3


def test_a_folder_is_scored_on_content_and_raw_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "Demo" / "Demo_2k.log_structured_corrected.csv", _sample_rows())
    _write(tmp_path / "Demo" / "Demo_2k.log_templates_corrected.csv", [["E1", "x"]], ["EventId", "EventTemplate"])
    samples = load_dir(tmp_path)  # template lists beside the samples are not samples
    assert [s.system for s in samples] == ["Demo"]
    scores = print_report(samples)
    assert scores["Demo"][0] == 1.0 and scores["Demo"][1] == 1.0
    assert "Demo" in capsys.readouterr().out


def test_the_cli_option_runs_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "Demo_2k.log_structured.csv", _sample_rows())
    assert main(["bench", "patterns", "--loghub", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Demo" in out and "mean" in out


def test_without_plain_drain3_our_scores_print_with_how_to_get_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """drain3 is a development-only comparison: a provider installed without it still benchmarks."""
    _write(tmp_path / "Demo_2k.log_structured.csv", _sample_rows())
    monkeypatch.setitem(sys.modules, "drain3", None)  # what a venv without drain3 gives: ImportError
    assert main(["bench", "patterns", "--loghub", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "pip install --no-deps drain3==0.9.11" in out
    demo = next(line for line in out.splitlines() if line.startswith("Demo"))
    assert demo.split()[3:] == ["1.000", "1.000", "-", "-"]


def test_with_plain_drain3_its_scores_print_beside_ours(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("drain3")
    _write(tmp_path / "Demo_2k.log_structured.csv", _sample_rows())
    assert main(["bench", "patterns", "--loghub", str(tmp_path)]) == 0
    demo = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Demo"))
    assert "-" not in demo.split()[3:]


def test_bad_input_names_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        load_dir(tmp_path / "missing")
    with pytest.raises(ValueError, match="no labeled"):
        load_dir(tmp_path)
    bad = _write(tmp_path / "Bad_2k.csv", [["1", "x"]], ["LineId", "Message"])
    with pytest.raises(ValueError, match="Content column"):
        load_sample(bad)
