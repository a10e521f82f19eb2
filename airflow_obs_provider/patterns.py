"""Public API of the log template miner.

>>> from airflow_obs_provider.patterns import PatternMiner
>>> miner = PatternMiner()                      # default configuration, good across log styles
>>> fps = miner.fingerprint_batch(lines)        # one fingerprint per line, final templates
>>> miner.template(fps[0])                      # readable template with named variables
>>> blob = miner.to_bytes(); PatternMiner.from_bytes(blob)   # persist and restore
>>> PatternMiner({"sim_th": 0.5})               # per-tenant overrides (dict or MinerConfig)
"""

from __future__ import annotations

from airflow_obs_provider.engine.log_mining.config import MinerConfig
from airflow_obs_provider.engine.log_mining.fingerprint import OTHER_TEMPLATE, fingerprint
from airflow_obs_provider.engine.log_mining.miner import PatternMiner
from airflow_obs_provider.engine.log_mining.state import StateError

__all__ = ["OTHER_TEMPLATE", "MinerConfig", "PatternMiner", "StateError", "fingerprint"]
