"""Named masks and the tokenizer."""

from __future__ import annotations

import pytest

from airflow_obs_provider.engine.log_mining.masks import apply_masks, digit_key
from airflow_obs_provider.engine.log_mining.tokenizer import VAR, render, tokenize


def masked(line: str) -> str:
    return apply_masks(digit_key(line))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("src: /10.250.19.102:54106 dest", "src: <IP> dest"),
        ("from fe80::1%eth0 ok", "from <IP> ok"),
        ("mac 00:1a:2b:3c:4d:5e up", "mac <MAC> up"),
        ("GET https://api.example.com/v1/x?id=3 done", "GET <URL> done"),
        ("at 2015-10-18 18:01:47,978 start", "at <TS> start"),
        ("connection at Sun Jul 24 02:38:22 2005 closed", "connection at <TS> closed"),
        ("open /var/log/messages.1 failed", "open <PATH> failed"),
        # a query string belongs to its path; a question mark ending a sentence does not
        ('"GET /api/orders/list?limit=5&since=2024-01-02T03:04:05 HTTP/1.1" 200', '"GET <PATH> HTTP/0.0" 0'),
        ("is the file at /srv/data? yes", "is the file at <PATH>? yes"),
        ("Core: C:\\Windows\\winsxs\\cbscore.dll", "Core: <PATH>"),
        ("www.google.com:443 open", "<HOST> open"),
        ("took 12 ms", "took <DUR>"),
        ("lifetime <1 sec", "lifetime <DUR>"),
        ("sent 1200 bytes (1.17 KB) ok", "sent <SIZE> ok"),
        ("addr 0x7f3a2b", "addr <HEX>"),
        ("login password=hunter2", "login password=<SECRET>"),
    ],
)
def test_named_masks(line: str, expected: str) -> None:
    assert masked(line) == expected


def test_masks_depend_only_on_the_digit_normalised_form() -> None:
    a, b = "at 10.0.0.1:80 took 5 ms", "at 192.168.100.254:65535 took 1234 ms"
    assert digit_key(a) == digit_key(b)
    assert masked(a) == masked(b)


def test_tokenizer_splits_punctuation_and_marks_variables() -> None:
    tokens = tokenize(masked("uid=0 euid=12 tty=NODEVssh user=[root], ok:true"), 100)
    assert tokens.key == ("uid", "=", VAR, "euid", "=", VAR, "tty", "=", "NODEVssh", "user", "=", "[", "root",
                          "]", ",", "ok", ":", VAR)
    assert tokens.kinds[2] == "NUM" and tokens.kinds[-1] == "BOOL"
    assert render(tokens.key, tokens.glue) == "uid=<*> euid=<*> tty=NODEVssh user=[root], ok:<*>"


def test_tokenizer_caps_tokens() -> None:
    tokens = tokenize("a " * 50, 10)
    assert len(tokens.key) == 10 and tokens.key[-1] == VAR


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("estimated size 93.0 B, free 317.1 KB", "estimated size <SIZE>, free <SIZE>"),
        ("estimated size 384 B", "estimated size <SIZE>"),
        ("class B network", "class B network"),
    ],
)
def test_sizes_in_plain_bytes(line: str, expected: str) -> None:
    assert masked(line) == expected


def test_glue_is_worked_out_on_demand_and_matches_the_tokens() -> None:
    tokens = tokenize(masked("a=1, b = [x]  done"), 100)
    assert len(tokens.glue) == len(tokens.key)
    assert render(tokens.key, tokens.glue) == "a=<*>, b = [x] done"
    capped = tokenize("a b c d e f", 4)
    assert len(capped.glue) == len(capped.key) == 4 and capped.glue[-1]


def test_empty_brackets_after_a_space_are_an_empty_value() -> None:
    assert masked("connection from 1.2.3.4 () at 12:00:01") == "connection from <IP> (<EMPTY>) at <TIME>"
    assert masked("jk2_init() Found child 6725") == "jk0_init() Found child 0"


def test_a_few_quoted_words_are_one_token_unless_they_hold_masks() -> None:
    one, two = tokenize(masked('tag="View Lock", uid=1'), 100), tokenize(masked('tag="RILJ_ACK_WL", uid=2'), 100)
    assert len(one.key) == len(two.key) and one.key[3] == "View Lock"
    request = tokenize(masked('"GET /v2/servers HTTP/1.1" status: 200'), 100)
    assert request.key[:2] == ('"', "GET")
