"""The public API exactly as outside checks call it."""

from __future__ import annotations

from airflow_obs_provider.patterns import MinerConfig, PatternMiner


def test_public_api_round_trip() -> None:
    lines = ["Accepted password for root from 10.0.0.1 port 22 ssh2",
             "Accepted password for admin from 10.0.0.2 port 2222 ssh2",
             "Accepted password for guest from 10.0.0.3 port 22 ssh2",
             "Connection closed by 10.0.0.9 [preauth]"]
    miner = PatternMiner()
    fps = miner.fingerprint_batch(lines)
    assert len(fps) == 4 and len(set(fps[:3])) == 1 and fps[3] != fps[0]
    assert all(isinstance(fp, str) and len(fp) == 16 for fp in fps)
    # "ssh2" is a constant word that ends in a number, not a variable (since algorithm version 3)
    assert miner.template(fps[0]) == "Accepted password for <*> from <IP> port <NUM> ssh<NUM>"
    assert miner.template(fps[3]) == "Connection closed by <IP> [preauth]"
    blob = miner.to_bytes()
    assert isinstance(blob, bytes)
    again = PatternMiner.from_bytes(blob)
    assert again.fingerprint_batch(lines) == fps
    assert again.template(fps[3]) == miner.template(fps[3])


def test_overrides_by_dict_or_config_object() -> None:
    assert PatternMiner({"sim_th": 0.5}).config.sim_th == 0.5
    cfg = MinerConfig(depth=5)
    assert PatternMiner(cfg).config is cfg
    assert PatternMiner().version != PatternMiner(cfg).version
