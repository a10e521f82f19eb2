"""The miner: accuracy on the labeled corpora, final templates, order independence, aliases, caps."""

from __future__ import annotations

import random

import pytest

from airflow_obs_provider.devkit.corpora import STYLES, generate_corpora, group_accuracy
from airflow_obs_provider.engine.log_mining.miner import PatternMiner

CORPORA = generate_corpora(1500, seed=21)


@pytest.mark.parametrize("style", sorted(STYLES))
def test_group_accuracy_per_style_with_the_default_config(style: str) -> None:
    rows = CORPORA[style]
    fps = PatternMiner().fingerprint_batch([r.line for r in rows])
    assert group_accuracy(fps, [r.template_id for r in rows]) >= 0.95


def test_at_least_ten_styles_and_overall_accuracy() -> None:
    assert len(CORPORA) >= 10
    scores = []
    for rows in CORPORA.values():
        fps = PatternMiner().fingerprint_batch([r.line for r in rows])
        scores.append(group_accuracy(fps, [r.template_id for r in rows]))
    assert sum(scores) / len(scores) >= 0.95


def test_plain_drain3_is_worse_on_the_same_corpora() -> None:
    """The corpora are not trivially easy: drain3's defaults lose accuracy on several styles."""
    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    worse = 0
    for rows in CORPORA.values():
        tm = TemplateMiner(config=TemplateMinerConfig())
        ids = [str(tm.add_log_message(r.line)["cluster_id"]) for r in rows]
        worse += group_accuracy(ids, [r.template_id for r in rows]) < 0.9
    assert worse >= 5


def test_each_line_gets_its_final_template() -> None:
    # "root"/"news" alone would be constants; the later lines turn the position into a variable
    lines = ["session closed for user root", "session closed for user news",
             "session closed for user cyrus", "session closed for user test"]
    miner = PatternMiner()
    fps = miner.fingerprint_batch(lines)
    assert len(set(fps)) == 1
    assert miner.template(fps[0]) == "session closed for user <*>"


def test_constants_differing_in_one_word_stay_apart() -> None:
    lines = ["cupsd startup succeeded", "cupsd shutdown succeeded"] * 3 + [
        "[instance: 1f2e] VM Started (Lifecycle Event)", "[instance: 2a3b] VM Stopped (Lifecycle Event)",
        "[instance: 3c4d] VM Paused (Lifecycle Event)", "[instance: 4d5e] VM Resumed (Lifecycle Event)"]
    fps = PatternMiner().fingerprint_batch(lines)
    assert fps[0] != fps[1] and fps[0] == fps[2]
    assert len(set(fps[6:])) == 4


def test_result_does_not_depend_on_line_order() -> None:
    lines = [r.line for r in CORPORA["linux"]]
    shuffled = lines[:]
    random.Random(3).shuffle(shuffled)
    a = dict(zip(lines, PatternMiner().fingerprint_batch(lines), strict=True))
    b = dict(zip(shuffled, PatternMiner().fingerprint_batch(shuffled), strict=True))
    assert a == b


def test_state_round_trip_continues_like_an_uninterrupted_miner() -> None:
    first = [r.line for r in CORPORA["openssh"][:700]]
    second = [r.line for r in CORPORA["openssh"][700:]]
    straight = PatternMiner()
    straight.fingerprint_batch(first)
    expected = straight.fingerprint_batch(second)

    saved = PatternMiner()
    saved.fingerprint_batch(first)
    restored = PatternMiner.from_bytes(saved.to_bytes())
    assert restored.fingerprint_batch(second) == expected
    assert restored.templates() == straight.templates()


def test_generalisation_is_reported_as_aliases() -> None:
    miner = PatternMiner()
    old = miner.fingerprint_batch(["session closed for user root", "session closed for user news"])
    assert len(set(old)) == 2
    assert miner.pop_aliases() == {}
    new = miner.fingerprint_batch(["session closed for user cyrus"])
    aliases = miner.pop_aliases()
    assert aliases == {old[0]: new[0], old[1]: new[0]}
    assert miner.resolve(old[0]) == new[0]
    assert miner.template(old[1]) == "session closed for user <*>"


def test_fingerprint_depends_on_template_and_config_version() -> None:
    a = PatternMiner().fingerprint_batch(["disk 1 full"])[0]
    assert PatternMiner().fingerprint_batch(["disk 7 full"])[0] == a
    assert PatternMiner({"sim_th": 0.6}).fingerprint_batch(["disk 1 full"])[0] != a


def test_empty_and_missing_lines() -> None:
    miner = PatternMiner()
    fps = miner.fingerprint_batch(["", None, "x 1", ""])  # type: ignore[list-item]
    assert fps[0] == fps[1] == fps[3] != fps[2]
    assert miner.fingerprint_batch([]) == []


def test_tenant_pattern_cap_sends_new_patterns_to_other() -> None:
    miner = PatternMiner({"max_patterns_per_tenant": 2})
    fps = miner.fingerprint_batch(["alpha one", "beta two", "gamma three", "delta four"])
    assert fps.count(miner.other) == 2
    assert miner.template(miner.other) == "<other>"


def test_bad_overrides_are_rejected_with_their_name() -> None:
    with pytest.raises(ValueError, match="unknown option"):
        PatternMiner({"simth": 0.5})
    with pytest.raises(ValueError, match="sim_th"):
        PatternMiner({"sim_th": 3})


def test_very_long_lines_are_bounded() -> None:
    miner = PatternMiner({"max_tokens": 20})
    fps = miner.fingerprint_batch(["word " * 500 + "a", "word " * 500 + "b"])
    assert fps[0] == fps[1]
    assert len(miner.template(fps[0]).split()) <= 20


def test_unreadable_state_is_a_clear_error() -> None:
    from airflow_obs_provider.engine.log_mining.state import StateError

    with pytest.raises(StateError, match="not readable"):
        PatternMiner.from_bytes(b"garbage")


def _groups(lines: list[str]) -> tuple[PatternMiner, list[str]]:
    miner = PatternMiner()
    return miner, miner.fingerprint_batch(lines)


def test_words_that_end_in_a_number_are_constants() -> None:
    """SOCKS5/HTTPS and en0/awdl0 name things; ssh2 reads as a number placeholder in the template."""
    lines = [f"proxy{i}.example.com:{p} open through proxy gw.example.com:{p} {proto}"
             for i, p in enumerate((80, 443, 8080, 3128)) for proto in ("HTTPS", "SOCKS5")]
    _, fps = _groups(lines)
    assert len(set(fps)) == 2 and fps[0] != fps[1] and fps[0] == fps[2]
    miner, fps = _groups([f"Accepted password for {u} from 10.0.0.{i} port {20 + i} ssh2"
                          for i, u in enumerate(("root", "admin", "guest", "git"))])
    assert len(set(fps)) == 1
    assert miner.template(fps[0]) == "Accepted password for <*> from <IP> port <NUM> ssh<NUM>"


def test_hex_words_and_ids_with_digits_inside_stay_variables() -> None:
    _, fps = _groups([f"lease {h} expired" for h in ("bffedcf0", "c0", "a1b2", "df0798e", "v2.app")])
    assert len(set(fps)) == 1


def test_a_word_where_other_lines_hold_a_masked_value_is_a_variable() -> None:
    """Two members are enough: 'state 6' and 'state unknown' are one message with a value."""
    miner, fps = _groups(["mod_jk child workerEnv in error state 6", "mod_jk child workerEnv in error state unknown"])
    assert fps[0] == fps[1]
    assert miner.template(fps[0]) == "mod_jk child workerEnv in error state <*>"


def test_a_shared_header_does_not_merge_different_messages() -> None:
    """Raw lines whose header (time, level, thread, component) is shared and whose messages have the
    same length: before, the messages' words were counted across one Drain group and became
    variables (every message one pattern); each message must keep its own template."""
    messages = ["Notification time out now", "Snapshotting the data dir", "shutdown of request processor",
                "Received connection request here", "Interrupted while waiting again"]
    lines = [f"2015-07-29 17:41:{s:02d},{ms:03d} INFO QuorumPeer[myid={n}] main {m}"
             for n, m in enumerate(messages) for s, ms in ((1, 5), (7, 300), (30, 42))]
    miner, fps = _groups(lines)
    truth = [m for m in messages for _ in range(3)]
    assert group_accuracy(fps, truth) == 1.0
    assert all(miner.template(fp).endswith(m) for fp, m in zip(fps, truth, strict=True))


def test_a_value_in_the_message_still_varies_behind_a_shared_header() -> None:
    lines = [f"2015-07-29 17:41:0{i} INFO main session opened for user {u} by uid {i}"
             for i, u in enumerate(("root", "cyrus", "news", "test", "guest"))]
    miner, fps = _groups(lines)
    assert len(set(fps)) == 1
    assert miner.template(fps[0]).endswith("session opened for user <*> by uid <NUM>")


def test_words_are_counted_per_sub_family_not_across_a_whole_drain_group() -> None:
    """Drain groups 'syncPowerState: WWEN[enabled]' with 'platformWoWEnable: WWEN[enable|disable]':
    three words at the WWEN position overall, but each method shows at most two, so they are
    constants and every message keeps its own template."""
    lines = ["ARPT: 620701.011328: AirPort_Brcm43xx::syncPowerState: WWEN[enabled]",
             "ARPT: 620702.879952: AirPort_Brcm43xx::platformWoWEnable: WWEN[disable]",
             "ARPT: 621342.242614: AirPort_Brcm43xx::platformWoWEnable: WWEN[enable]",
             "ARPT: 621490.890645: AirPort_Brcm43xx::syncPowerState: WWEN[enabled]"]
    _, fps = _groups(lines)
    assert len(set(fps)) == 3 and fps[0] == fps[3]


def test_a_word_taking_many_values_inside_one_sub_family_is_still_a_variable() -> None:
    lines = [f"{verb} service {name} now" for verb in ("Started", "Stopped") for name in ("cron", "sshd", "ntpd")]
    miner, fps = _groups(lines)
    assert len(set(fps)) == 2
    assert miner.template(fps[0]) == "Started service <*> now"


def test_sub_family_counting_survives_a_state_round_trip() -> None:
    first = ["ARPT: 1.5: Brcm43xx::syncPowerState: WWEN[enabled]", "ARPT: 2.5: Brcm43xx::platformWoWEnable: WWEN[disable]"]
    second = ["ARPT: 3.5: Brcm43xx::platformWoWEnable: WWEN[enable]"]
    straight = PatternMiner()
    expected = straight.fingerprint_batch(first) + straight.fingerprint_batch(second)
    restored = PatternMiner.from_bytes(PatternMiner().to_bytes())
    got = restored.fingerprint_batch(first)
    restored = PatternMiner.from_bytes(restored.to_bytes())
    got += restored.fingerprint_batch(second)
    assert got == expected
    # the third word did not generalise the earlier messages into one template
    assert len({restored.resolve(fp) for fp in got}) == 3


def test_one_word_messages_stay_apart_beside_values_alone_on_a_line() -> None:
    lines = ["reloadConfig", "flushQueue", "0x7f3a", "0x1b2c", "reloadConfig", "compactNow", "42"]
    miner = PatternMiner()
    fps = miner.fingerprint_batch(lines)
    assert len({fps[0], fps[1], fps[5]}) == 3 and fps[0] == fps[4]
    assert miner.template(fps[1]) == "flushQueue"


def test_a_value_written_as_a_plain_first_word_becomes_a_variable() -> None:
    rest = ": job deferred until slot {} is free"
    names = ["billing", "orders.sync", "reports.daily", "billing"]
    miner = PatternMiner()
    fps = miner.fingerprint_batch([name + rest.format(n) for n, name in enumerate(names, 5)])
    assert len(set(fps)) == 1
    assert miner.template(fps[0]) == "<*>: job deferred until slot <NUM> is free"


def test_a_value_in_an_unusual_shape_joins_the_family_of_its_message() -> None:
    """A value that tokenises into several tokens ("LOCAL(0)", "wpad:80", "<host>:<secret>") where
    the other lines hold a single-token value; however the lines arrive."""
    lines = [f"clock synchronized to 10.1.{i}.{i + 1}, stratum {i % 4}" for i in range(6)]
    lines += ["clock synchronized to LOCAL(0), stratum 10"]
    lines += [f"db{i}.example.com:5432 open through gateway gw.example.com:80 TLS" for i in range(4)]
    lines += ["wpad:80 open through gateway gw.example.com:80 TLS"]
    for order in (lines, lines[::-1]):
        miner = PatternMiner()
        fps = miner.fingerprint_batch(order)
        assert len(set(fps)) == 2
    miner = PatternMiner()
    fps = miner.fingerprint_batch(lines)
    assert miner.template(fps[6]) == "clock synchronized to <*>, stratum <NUM>"
    assert miner.template(fps[-1]) == "<*> open through gateway <HOST> TLS"


def test_a_word_holding_a_value_is_not_taken_for_a_value_of_another_message() -> None:
    """Only when at least two words stay constant: a one-word message with a value in it
    ("setFlag(true)") or key=value words ("uid=0") keep their shape."""
    miner = PatternMiner()
    fps = miner.fingerprint_batch(["setFlag(true)", "setFlag(false)", "0x1f", "0x2e", "0x3d",
                                   "login uid=0 ok", "login <*> ok"] + [f"login {u} ok" for u in ("a", "b", "c")])
    assert miner.template(fps[0]) == "setFlag(<BOOL>)"
    assert miner.template(fps[5]) == "login uid=<NUM> ok"
