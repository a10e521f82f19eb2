"""Log template mining, the one log-mining wing of the engine.

- the miner itself: masks, tokenizer, our Drain prefix tree (:mod:`.drain`), :mod:`.miner`,
  fingerprints, :mod:`.config`, severity;
- its persistence: :mod:`.state` (a snapshot to bytes and back) and :mod:`.store` (the state,
  pattern dictionary and aliases in Postgres);
- :mod:`.window`: what the ``oo-agg`` job calls for one window (``log_pattern_5m``/``log_pattern`` rows).

Users import the miner through the package's public ``patterns`` facade; the benchmark
(``obs-etl bench patterns``) lives in the dev kit.
"""

from __future__ import annotations

from airflow_obs_provider.engine.log_mining.config import MinerConfig
from airflow_obs_provider.engine.log_mining.miner import PatternMiner

__all__ = ["MinerConfig", "PatternMiner"]
