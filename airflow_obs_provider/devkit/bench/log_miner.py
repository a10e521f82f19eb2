"""``obs-etl bench patterns``: Group Accuracy and lines/s of our miner vs plain drain3.

Plain drain3 is the comparison only (the miner runs on its own Drain core, :mod:`..engine.log_mining.drain`);
it is installed in the development venv by ``scripts/setup``, and when it is missing the figures of
our miner are printed alone, with how to get it. Prints, side by side with drain3's ``TemplateMiner``
on its default configuration:

- Group Accuracy per log style and overall on the labeled corpora (:mod:`airflow_obs_provider.devkit.corpora`);
- lines/s on a stream where 1% of the masked lines are distinct (1M lines, ``--quick``: 100k);
- lines/s on a stream where every masked line is distinct (200k lines, ``--quick``: 20k).

With ``--loghub DIR`` it scores labeled real-log samples the user provides instead: GA, PA and
FGA per system, ours and drain3's (:mod:`airflow_obs_provider.devkit.bench.loghub`).

Throughput is reported per CPU second of this process (``time.process_time``, one core) and per
wall-clock second; benchmarks print figures, nothing here asserts a limit.
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import time
from collections.abc import Callable, Sequence

from airflow_obs_provider.devkit.corpora import (
    STYLES,
    fill_template,
    generate_corpora,
    group_accuracy,
)
from airflow_obs_provider.engine.log_mining.masks import DIGIT_RUN
from airflow_obs_provider.engine.log_mining.tokenizer import VAR
from airflow_obs_provider.patterns import PatternMiner

_SLOT = re.compile(r"\{\w+\}")


def _letters(i: int) -> str:
    """A distinct digit-free word per integer (so it stays a distinct constant after masking)."""
    out = ""
    i += 26 * 26
    while i:
        i, r = divmod(i, 26)
        out += chr(ord("a") + r)
    return out


DRAIN3_HINT = ("plain drain3 (the comparison; the provider does not need it) is not installed ({reason}); "
               "its columns show '-'. To get it: pip install cachetools jsonpickle && "
               "pip install --no-deps drain3==0.9.11 (scripts/setup does this in a checkout; --no-deps because "
               "its metadata pins cachetools==4.2.1, which current Airflow refuses, while it runs with newer ones)")


def drain3_ids(lines: Sequence[str]) -> list[str]:
    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    miner = TemplateMiner(config=TemplateMinerConfig())  # drain3's defaults, no persistence
    ids = [miner.add_log_message(line)["cluster_id"] for line in lines]
    return [str(i) for i in ids]  # drain3 clusters never merge: the id at insertion is final


def drain3_parse(lines: Sequence[str]) -> tuple[list[str], list[str]]:
    """drain3 on its defaults: the cluster id of each line and its cluster's final template."""
    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    miner = TemplateMiner(config=TemplateMinerConfig())
    ids = [miner.add_log_message(line)["cluster_id"] for line in lines]
    final = {cluster.cluster_id: cluster.get_template() for cluster in miner.drain.clusters}
    return [str(i) for i in ids], [final[i] for i in ids]


def plain_drain3() -> Callable[[Sequence[str]], list[str]] | None:
    """:func:`drain3_ids` when plain drain3 can be imported; else None, after printing how to get it."""
    try:
        import drain3  # noqa: F401 (drain3 imports cachetools and jsonpickle: any of them may be missing)
    except ImportError as exc:
        print(DRAIN3_HINT.format(reason=exc))
        return None
    logging.getLogger("drain3").setLevel(logging.WARNING)  # it logs a line per miner created
    return drain3_ids


def score(predicted: Sequence[str] | None, truth: Sequence[str], width: int) -> str:
    """Group Accuracy right-aligned in ``width`` columns, '-' without a prediction."""
    return f"{group_accuracy(predicted, truth):>{width}.3f}" if predicted is not None else f"{'-':>{width}}"


def ours(lines: Sequence[str]) -> list[str]:
    return PatternMiner().fingerprint_batch(lines)


def _timed(fn: Callable[[Sequence[str]], list[str]], lines: Sequence[str]) -> tuple[list[str], float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(lines)
    return out, len(lines) / max(time.process_time() - cpu, 1e-9), len(lines) / max(time.perf_counter() - wall, 1e-9)


def skeletons(n: int, seed: int = 11) -> list[str]:
    """``n`` lines with pairwise distinct masked forms, drawn from every style's templates."""
    rng = random.Random(seed)
    templates = [t for style in sorted(STYLES) for t in STYLES[style]]
    return [f"{fill_template(templates[i % len(templates)], rng)} worker={_letters(i)}" for i in range(n)]


def stream_with_distinct_fraction(n_lines: int, fraction: float, seed: int = 11) -> list[str]:
    """``n_lines`` lines of which ``fraction`` have distinct masked forms; numbers differ on every line."""
    rng = random.Random(seed)
    formats = []
    for line in skeletons(max(1, int(n_lines * fraction)), seed):
        escaped = line.replace("{", "{{").replace("}", "}}")
        formats.append((DIGIT_RUN.sub("{}", escaped), len(DIGIT_RUN.findall(line))))
    pool = [str(rng.randrange(1, 10**6)) for _ in range(4096)]
    out = []
    for i in range(n_lines):
        fmt, k = formats[i % len(formats)]
        start = (i * 7) % (len(pool) - k - 1)
        out.append(fmt.format(*pool[start:start + k]))
    return out


def cli_bench(args: argparse.Namespace) -> int:
    compare = plain_drain3()
    if getattr(args, "loghub", None):
        from airflow_obs_provider.devkit.bench.loghub import load_dir, print_report

        print(f"Labeled real-log samples from {args.loghub} (Content column, default configuration; "
              "GA: group accuracy, PA: parsing accuracy, FGA: F1 group accuracy)")
        print_report(load_dir(args.loghub), drain3_parse if compare else None)
        return 0
    quick = bool(getattr(args, "quick", False))
    per_style = 1000 if quick else 2000
    corpora = generate_corpora(per_style)
    print(f"Labeled corpora: {len(corpora)} styles x {per_style} lines (Group Accuracy, LogPAI definition)")
    print(f"{'style':<13}{'templates':>10}{'ours GA':>10}{'drain3 GA':>11}")
    ours_all, drain_all, truth_all = [], [], []
    ours_ga, drain_ga = [], []
    for style, rows in corpora.items():
        lines = [r.line for r in rows]
        truth = [r.template_id for r in rows]
        mined = ours(lines)
        ours_ga.append(group_accuracy(mined, truth))
        ours_all += [f"{style}:{fp}" for fp in mined]
        truth_all += truth
        drain = compare(lines) if compare else None
        if drain is not None:
            drain_ga.append(group_accuracy(drain, truth))
            drain_all += [f"{style}:{i}" for i in drain]
        print(f"{style:<13}{len(set(truth)):>10}{ours_ga[-1]:>10.3f}{score(drain, truth, 11)}")
    drain_mean = f"{sum(drain_ga) / len(drain_ga):>11.3f}" if drain_ga else f"{'-':>11}"
    print(f"{'mean':<13}{'':>10}{sum(ours_ga) / len(ours_ga):>10.3f}{drain_mean}")
    print(f"{'all lines':<13}{len(set(truth_all)):>10}{group_accuracy(ours_all, truth_all):>10.3f}"
          f"{score(drain_all if compare else None, truth_all, 11)}")

    # one shared miner over every style at once: no per-source tuning, cross-style interference;
    # two styles' templates that read the same once their slots are blanked are one truth here
    mixed = [r.line for rows in corpora.values() for r in rows]
    mixed_truth = [_SLOT.sub(VAR, STYLES[r.style][int(r.template_id.rsplit(":", 1)[1])])
                   for rows in corpora.values() for r in rows]
    print(f"{'one miner':<13}{len(set(mixed_truth)):>10}{group_accuracy(ours(mixed), mixed_truth):>10.3f}"
          f"{score(compare(mixed) if compare else None, mixed_truth, 11)}")

    print("\nThroughput (lines/s per CPU second | per wall second)")
    n_stream = 100_000 if quick else 1_000_000
    n_distinct = 20_000 if quick else 200_000
    for label, lines in (
        (f"{n_stream:,} lines, 1% distinct masked", stream_with_distinct_fraction(n_stream, 0.01)),
        (f"{n_distinct:,} lines, all distinct masked", stream_with_distinct_fraction(n_distinct, 1.0)),
    ):
        ours_fp, ours_cpu, ours_wall = _timed(ours, lines)
        theirs = "drain3          - |          -"
        if compare:
            _, drain_cpu, drain_wall = _timed(compare, lines)
            theirs = f"drain3 {drain_cpu:>10,.0f} | {drain_wall:>10,.0f}"
        print(f"{label:<36} ours {ours_cpu:>10,.0f} | {ours_wall:>10,.0f}   {theirs}   patterns={len(set(ours_fp))}")
    return 0
