"""``obs-etl bench patterns --loghub DIR``: Group Accuracy on labeled real-log samples a user provides.

DIR holds LogHub-style structured CSV files (one per system, found recursively, e.g. the public
``<System>_2k.log_structured_corrected.csv`` samples): a ``LineId`` column, the header columns of
the raw line (date, time, level, component...), ``Content`` (the message), and the ground truth
``EventTemplate`` (or, when that column is empty or missing, ``EventId``). Each file is scored
twice with the default configuration, on the ``Content`` column (how LogPAI evaluations are done)
and on the raw line rebuilt from the header columns and the content, side by side with plain
drain3 on its defaults when it is installed (a development-only comparison). No data ships with
the project: the samples are third-party.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from airflow_obs_provider.devkit.corpora import group_accuracy
from airflow_obs_provider.patterns import PatternMiner

_TRUTH_COLUMNS = ("EventTemplate", "EventId")


@dataclass(frozen=True)
class LabeledSample:
    system: str
    contents: list[str]
    raw_lines: list[str]
    truth: list[str]


def _system_name(path: Path) -> str:
    return path.name.split("_")[0] if "_" in path.name else path.stem


def load_sample(path: Path) -> LabeledSample:
    """One labeled CSV; a clear error names the file and what is missing."""
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        if "Content" not in columns or not any(c in columns for c in _TRUTH_COLUMNS):
            raise ValueError(f"{path}: needs a Content column and an EventTemplate or EventId column, "
                             f"has {columns}")
        content_at = columns.index("Content")
        header_columns = [c for c in columns[:content_at] if c != "LineId"]
        contents: list[str] = []
        raw_lines: list[str] = []
        truth: list[str] = []
        for row in reader:
            content = row.get("Content") or ""
            label = next((row[c] for c in _TRUTH_COLUMNS if row.get(c)), "")
            contents.append(content)
            raw_lines.append(" ".join([*(row.get(c) or "" for c in header_columns), content]))
            truth.append(label)
    if not contents:
        raise ValueError(f"{path}: no rows")
    return LabeledSample(_system_name(path), contents, raw_lines, truth)


def load_dir(directory: str | Path) -> list[LabeledSample]:
    root = Path(directory)
    if not root.is_dir():
        raise ValueError(f"--loghub {directory}: not a directory")
    files = sorted(p for p in root.rglob("*.csv") if "template" not in p.name.lower())
    if not files:
        raise ValueError(f"--loghub {directory}: no labeled *.csv files found")
    return [load_sample(p) for p in files]


def print_report(samples: list[LabeledSample], compare: Callable[[Sequence[str]], list[str]] | None = None,
                 ) -> dict[str, tuple[float, float, float | None, float | None]]:
    """Per system: (ours on Content, ours on raw lines, drain3 on Content, drain3 on raw lines);
    drain3's scores are None when ``compare`` (plain drain3, see ``bench.log_miner.plain_drain3``) is not given."""
    print(f"{'system':<13}{'lines':>6}{'truth':>6}{'ours':>8}{'ours raw':>10}{'drain3':>8}{'drain3 raw':>12}")
    scores: dict[str, tuple[float, float, float | None, float | None]] = {}
    def ours(lines: Sequence[str]) -> list[str]:  # a fresh miner of the default configuration per run
        return PatternMiner().fingerprint_batch(lines)

    for s in samples:
        theirs = ((group_accuracy(compare(s.contents), s.truth), group_accuracy(compare(s.raw_lines), s.truth))
                  if compare else (None, None))
        row = (group_accuracy(ours(s.contents), s.truth), group_accuracy(ours(s.raw_lines), s.truth), *theirs)
        scores[s.system] = row
        print(f"{s.system:<13}{len(s.truth):>6}{len(set(s.truth)):>6}{_cells(row)}")
    if scores:
        means = tuple(None if any(r[i] is None for r in scores.values())
                      else sum(r[i] or 0.0 for r in scores.values()) / len(scores) for i in range(4))
        print(f"{'mean':<13}{'':>6}{'':>6}{_cells(means)}")
    return scores


def _cells(row: Sequence[float | None]) -> str:
    return "".join(f"{value:>{width}.3f}" if value is not None else f"{'-':>{width}}"
                   for value, width in zip(row, (8, 10, 8, 12), strict=True))
