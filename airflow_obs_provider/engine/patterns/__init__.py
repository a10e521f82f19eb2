"""Log template mining: masks, tokenizer, our Drain prefix tree, miner, fingerprints, state, severity."""

from __future__ import annotations

from airflow_obs_provider.engine.patterns.config import MinerConfig
from airflow_obs_provider.engine.patterns.miner import PatternMiner

__all__ = ["MinerConfig", "PatternMiner"]
