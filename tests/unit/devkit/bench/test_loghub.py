"""``obs-etl bench patterns --loghub DIR``: reading labeled LogHub-style CSVs and scoring them."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from airflow_obs_provider.cli import main
from airflow_obs_provider.devkit.bench.loghub import (
    f1_group_accuracy,
    load_dir,
    load_sample,
    normalise_template,
    parsing_accuracy,
    print_report,
)
from airflow_obs_provider.devkit.corpora import group_accuracy

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


def test_a_sample_gives_contents_and_truth(tmp_path: Path) -> None:
    sample = load_sample(_write(tmp_path / "Demo" / "Demo_2k.log_structured_corrected.csv", _sample_rows()))
    assert sample.system == "Demo (corr.)"
    assert sample.contents[0] == "Invalid user root from 10.0.0.1"
    # EventTemplate when given; else the EventId (no templates file beside it: template unknown)
    assert sample.groups[:4] == ["Invalid user <*> from <*>"] * 4 and sample.groups[4:] == ["E2"] * 3
    assert sample.templates[4:] == [None] * 3


def test_an_event_id_takes_its_template_from_the_templates_file_beside_it(tmp_path: Path) -> None:
    rows = [[r[0], r[5], r[6]] for r in _sample_rows()]  # LineId,Content,EventId: no EventTemplate column
    path = _write(tmp_path / "Demo" / "Demo_2k.log_structured.csv", rows, ["LineId", "Content", "EventId"])
    _write(tmp_path / "Demo" / "Demo_2k.log_templates.csv",
           [["E1", "Invalid user <*> from <*>"], ["E2", "Connection closed by <*> [preauth]"]],
           ["EventId", "EventTemplate"])
    sample = load_sample(path)
    assert sample.system == "Demo"
    assert sample.templates == ["Invalid user <*> from <*>"] * 4 + ["Connection closed by <*> [preauth]"] * 3
    assert sample.groups == sample.templates


def test_a_folder_is_scored_with_ga_pa_and_fga(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "Demo" / "Demo_2k.log_structured_corrected.csv", _sample_rows())
    _write(tmp_path / "Demo" / "Demo_2k.log_templates_corrected.csv", [["E1", "x"]], ["EventId", "EventTemplate"])
    samples = load_dir(tmp_path)  # template lists beside the samples are not samples
    assert [s.system for s in samples] == ["Demo (corr.)"]
    ours, theirs = print_report(samples)["Demo (corr.)"]
    assert (ours.ga, ours.fga) == (1.0, 1.0) and theirs is None
    # E1's 4 lines have a template and ours reads the same once normalised; E2's have none (left out)
    assert ours.pa == 1.0
    assert "Demo" in capsys.readouterr().out


# Hand-computed metrics on a small labeled fixture: 10 lines, 3 true groups A (4 lines), B (4), C (2).
# The prediction merges B and C into one group q and splits A into a (3 lines) and a2 (1 line).
_TRUTH = ["A", "A", "A", "A", "B", "B", "B", "B", "C", "C"]
_SPLIT_AND_MERGED = ["a", "a", "a", "a2", "q", "q", "q", "q", "q", "q"]


def test_group_accuracy_counts_only_lines_of_exactly_predicted_groups() -> None:
    assert group_accuracy(_SPLIT_AND_MERGED, _TRUTH) == 0.0  # no true group predicted exactly
    # B and C separated: B (4 lines) and C (2 lines) exact, A still split: 6 of 10 lines
    assert group_accuracy(["a", "a", "a", "a2", "b", "b", "b", "b", "c", "c"], _TRUTH) == 0.6
    assert group_accuracy(["x"] * 4 + ["y"] * 4 + ["z"] * 2, _TRUTH) == 1.0


def test_f1_group_accuracy_is_the_f1_of_exact_groups_over_predicted_and_true_groups() -> None:
    assert f1_group_accuracy(_SPLIT_AND_MERGED, _TRUTH) == 0.0
    # 4 predicted groups (a, a2, b, c), 3 true: 2 exact (b, c): precision 2/4, recall 2/3, F1 = 4/7
    assert f1_group_accuracy(["a", "a", "a", "a2", "b", "b", "b", "b", "c", "c"], _TRUTH) == pytest.approx(4 / 7)
    # A and B merged, C exact: precision 1/2, recall 1/3, F1 = 0.4
    assert f1_group_accuracy(["m"] * 8 + ["c", "c"], _TRUTH) == pytest.approx(0.4)


def test_parsing_accuracy_compares_templates_in_one_wildcard_convention() -> None:
    truth = ["user <*> logged in from <*>"] * 3 + ["took <*> ms"] * 2 + [None]
    predicted = ["user <NUM> logged in from <IP>",  # named placeholders are wildcards
                 "user <*>   logged in from <*> <*>",  # spaces normalised, adjacent wildcards merged
                 "user root logged in from <*>",  # a value kept as a constant: wrong
                 "took <DUR>",  # a unit swallowed by a variable: another template, wrong
                 "took <NUM> ms",
                 "anything"]  # truth unknown: not counted
    assert parsing_accuracy(predicted, truth) == 3 / 5
    assert parsing_accuracy(["x"], [None]) is None
    assert normalise_template(" a <NUM><HEX>  b <*>:<*> ") == "a <*> b <*>:<*>"


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
    # GA, PA (E2's lines have no template: PA over E1's), FGA; then drain3's three columns
    assert demo.split()[3:] == ["1.000", "1.000", "1.000", "-", "-", "-"]


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
