"""``obs-etl bench patterns --loghub DIR``: GA, PA and FGA on labeled real-log samples a user provides.

DIR holds LogHub-style structured CSV files, found recursively: the first LogHub release's
``<System>_2k.log_structured.csv`` and Loghub-2.0's ``<System>_2k.log_structured_corrected.csv``
both work. Each has a ``Content`` column (the message: what is mined, as in the LogPAI and
Loghub-2.0 evaluations) and the ground truth: the ``EventTemplate`` column, or, where that column
is missing or empty, the ``EventId`` looked up in a ``*templates*.csv`` file beside it (both
public releases ship one); a line whose template stays unknown is grouped by its ``EventId`` and
left out of PA. No data ships with the project: the samples are third-party.

Each file is mined from scratch with the default configuration, and, when it is installed, by
plain drain3 on its defaults (a development-only comparison), and scored three ways:

- **GA**, Group Accuracy (LogPAI): the share of lines whose predicted group holds exactly the
  lines of their true group;
- **PA**, Parsing Accuracy (Loghub-2.0): the share of lines whose template equals their true
  template once both are written in one wildcard convention (:func:`normalise_template`);
- **FGA**, F1 group accuracy (Loghub-2.0): with N_c the groups predicted exactly (same line set as
  a true group), precision N_c / predicted groups, recall N_c / true groups, FGA their F1.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from airflow_obs_provider.devkit.corpora import exact_groups, group_accuracy
from airflow_obs_provider.patterns import PatternMiner

# a parser: lines -> (group id per line, template per line)
Parser = Callable[[Sequence[str]], tuple[list[str], list[str]]]

_PLACEHOLDER = re.compile(r"<(?:[A-Z_]+|\*)>")  # our named variables (<NUM>, <IP>, ...) and <*>
_WILDCARD_RUN = re.compile(r"<\*>(?:\s*<\*>)+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class LabeledSample:
    system: str
    contents: list[str]
    groups: list[str]  # the true group of each line: its template, else its EventId
    templates: list[str | None]  # the true template of each line, None when unknown


@dataclass(frozen=True)
class Scores:
    ga: float
    pa: float | None  # None when no line has a known template
    fga: float


def normalise_template(template: str) -> str:
    """One wildcard convention for comparing templates (Loghub-2.0's ``<*>``): every named
    placeholder (``<NUM>``, ``<IP>``...) becomes ``<*>``, wildcards separated by nothing or by
    whitespace merge into one, whitespace runs become one space, and the ends are trimmed."""
    text = _PLACEHOLDER.sub("<*>", template)
    return _SPACES.sub(" ", _WILDCARD_RUN.sub("<*>", text)).strip()


def parsing_accuracy(predicted: Sequence[str], truth: Sequence[str | None]) -> float | None:
    """The share of lines with a known true template whose predicted template equals it
    (both normalised); None when no line has a known template."""
    if len(predicted) != len(truth):
        raise ValueError("predicted and truth must have the same length")
    known = [(p, t) for p, t in zip(predicted, truth, strict=True) if t is not None]
    if not known:
        return None
    cache: dict[str, str] = {}
    def norm(text: str) -> str:
        if text not in cache:
            cache[text] = normalise_template(text)
        return cache[text]
    return sum(norm(p) == norm(t) for p, t in known) / len(known)


def f1_group_accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    """Loghub-2.0's FGA: the F1 of the share of predicted groups that are exactly a true group
    (precision) and the share of true groups predicted exactly (recall)."""
    exact, n_predicted, n_true = exact_groups(predicted, truth)
    if not truth:
        return 1.0
    if not exact:
        return 0.0
    precision, recall = len(exact) / n_predicted, len(exact) / n_true
    return 2 * precision * recall / (precision + recall)


def score(groups: Sequence[str], templates: Sequence[str], sample: LabeledSample) -> Scores:
    return Scores(group_accuracy(groups, sample.groups), parsing_accuracy(templates, sample.templates),
                  f1_group_accuracy(groups, sample.groups))


def ours(lines: Sequence[str]) -> tuple[list[str], list[str]]:
    """A fresh miner of the default configuration: fingerprints and their final templates."""
    miner = PatternMiner()
    fps = miner.fingerprint_batch(lines)
    return fps, [miner.template(fp) for fp in fps]


def _system_name(path: Path) -> str:
    name = path.name.split("_")[0] if "_" in path.name else path.stem
    return f"{name} (corr.)" if "corrected" in path.name.lower() else name


def _sibling_templates(path: Path) -> dict[str, str]:
    """EventId -> template from a ``*templates*.csv`` beside ``path`` (the first, by name)."""
    for candidate in sorted(path.parent.glob("*.csv")):
        if "template" not in candidate.name.lower():
            continue
        with candidate.open(newline="", encoding="utf-8", errors="replace") as fh:
            reader = csv.DictReader(fh)
            if {"EventId", "EventTemplate"} <= set(reader.fieldnames or ()):
                return {row["EventId"]: row["EventTemplate"] for row in reader if row.get("EventId")}
    return {}


def load_sample(path: Path) -> LabeledSample:
    """One labeled CSV; a clear error names the file and what is missing."""
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.DictReader(fh)
        columns = list(reader.fieldnames or [])
        if "Content" not in columns or not {"EventTemplate", "EventId"} & set(columns):
            raise ValueError(f"{path}: needs a Content column and an EventTemplate or EventId column, "
                             f"has {columns}")
        rows = [(row.get("Content") or "", row.get("EventTemplate") or "", row.get("EventId") or "")
                for row in reader]
    if not rows:
        raise ValueError(f"{path}: no rows")
    sibling = _sibling_templates(path) if any(not template for _, template, _ in rows) else {}
    templates: list[str | None] = [template or sibling.get(event_id) or None for _, template, event_id in rows]
    groups = [template or event_id for template, (_, _, event_id) in zip(templates, rows, strict=True)]
    return LabeledSample(_system_name(path), [content for content, _, _ in rows], groups, templates)


def load_dir(directory: str | Path) -> list[LabeledSample]:
    root = Path(directory)
    if not root.is_dir():
        raise ValueError(f"--loghub {directory}: not a directory")
    files = sorted(p for p in root.rglob("*.csv") if "template" not in p.name.lower())
    if not files:
        raise ValueError(f"--loghub {directory}: no labeled *.csv files found")
    return [load_sample(p) for p in files]


def print_report(samples: list[LabeledSample], compare: Parser | None = None,
                 ) -> dict[str, tuple[Scores, Scores | None]]:
    """Per system: (our scores, plain drain3's scores or None when ``compare`` is not given), and
    the means over the systems (PA over the systems with known templates)."""
    print(f"{'system':<19}{'lines':>6}{'groups':>7}   {'ours GA':>7}{'PA':>7}{'FGA':>7}"
          f"   {'drain3 GA':>9}{'PA':>7}{'FGA':>7}")
    results: dict[str, tuple[Scores, Scores | None]] = {}
    for s in samples:
        theirs = score(*compare(s.contents), s) if compare else None
        results[s.system] = (score(*ours(s.contents), s), theirs)
        print(f"{s.system:<19}{len(s.groups):>6}{len(set(s.groups)):>7}{_cells(results[s.system])}")
    if results:
        print(f"{'mean':<19}{'':>6}{'':>7}{_cells(mean_scores(results))}")
    return results


def mean_scores(results: dict[str, tuple[Scores, Scores | None]]) -> tuple[Scores, Scores | None]:
    def mean(scores: list[Scores]) -> Scores:
        pas = [s.pa for s in scores if s.pa is not None]
        return Scores(sum(s.ga for s in scores) / len(scores), sum(pas) / len(pas) if pas else None,
                      sum(s.fga for s in scores) / len(scores))
    theirs = [t for _, t in results.values() if t is not None]
    return (mean([o for o, _ in results.values()]),
            mean(theirs) if len(theirs) == len(results) else None)


def _cells(pair: tuple[Scores, Scores | None]) -> str:
    def cell(value: float | None, width: int) -> str:
        return f"{value:>{width}.3f}" if value is not None else f"{'-':>{width}}"
    ours_scores, theirs = pair
    out = f"   {cell(ours_scores.ga, 7)}{cell(ours_scores.pa, 7)}{cell(ours_scores.fga, 7)}   "
    if theirs is None:
        return out + f"{cell(None, 9)}{cell(None, 7)}{cell(None, 7)}"
    return out + f"{cell(theirs.ga, 9)}{cell(theirs.pa, 7)}{cell(theirs.fga, 7)}"
