"""Secret masking of free text and label dictionaries."""

from __future__ import annotations

import pytest

from airflow_obs_provider.engine.masking import SECRET, is_sensitive_key, mask_labels, mask_text

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
       ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")


@pytest.mark.parametrize(
    ("text", "secret", "marker"),
    [
        ("login ok password=hunter2 user=bob", "hunter2", SECRET),
        ("db passwd: 's3cr3t value' retry", "s3cr3t value", SECRET),
        ('config {"client_secret": "abc123xyz", "x": 1}', "abc123xyz", SECRET),
        ("secret: topsecretvalue", "topsecretvalue", SECRET),
        ("api_key=AbCdEf0123456789&page=2", "AbCdEf0123456789", SECRET),
        ("Authorization: Bearer abcdef.ghijkl-123", "abcdef.ghijkl-123", SECRET),
        ("header Basic dXNlcjpwYXNzd29yZA== sent", "dXNlcjpwYXNzd29yZA==", SECRET),
        ("using key AKIAIOSFODNN7EXAMPLE for upload", "AKIAIOSFODNN7EXAMPLE", "<AWS_KEY>"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI", SECRET),
        # a secret key printed beside its key id, under no telling name (config dumps, CLI output)
        ("creds AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI", SECRET),
        (f"token {JWT} rejected", JWT, "<JWT>"),
        ("mail sent to jane.doe@example.com ok", "jane.doe@example.com", "<EMAIL>"),
        ("connect postgresql://app:pa55word@db:5432/x failed", "pa55word", SECRET),
        ("gh token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "<API_KEY>"),
        ("slack xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij", "<API_KEY>"),
    ],
)
def test_mask_text_hides_each_secret_form(text: str, secret: str, marker: str) -> None:
    masked = mask_text(text)
    assert secret not in masked
    assert marker in masked


@pytest.mark.parametrize(
    "text",
    [
        "Failed password for invalid user admin from 10.0.0.1 port 22 ssh2",
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh",
        "Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106",
        "basic authentication enabled for realm users",
        "token expired for session of user 42",
        "GET http://example.com:8080/a/b?page=2 200",
    ],
)
def test_mask_text_leaves_ordinary_log_lines_alone(text: str) -> None:
    assert mask_text(text) == text


def test_private_key_block_is_removed() -> None:
    text = "loaded -----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAAA\n-----END RSA PRIVATE KEY----- done"
    masked = mask_text(text)
    assert "MIIEow" not in masked and "<PRIVATE_KEY>" in masked and masked.endswith("done")


def test_mask_labels_by_key_and_by_value() -> None:
    labels = {
        "db_password": "hunter2",
        "X-Api-Key": "k-123",
        "env": "prod",
        "owner": "ops@example.org",
        "nested": {"token": "abc", "region": "eu-west-1"},
        "args": ["--password=pw1", "--verbose"],
        "replicas": 3,
        "empty_secret": "",
    }
    masked = mask_labels(labels)
    assert masked["db_password"] == SECRET
    assert masked["X-Api-Key"] == SECRET
    assert masked["env"] == "prod"
    assert masked["owner"] == "<EMAIL>"
    assert masked["nested"] == {"token": SECRET, "region": "eu-west-1"}
    assert masked["args"] == ["--password=" + SECRET, "--verbose"]
    assert masked["replicas"] == 3
    assert masked["empty_secret"] == ""
    assert labels["db_password"] == "hunter2", "the input must not be modified"


def test_is_sensitive_key() -> None:
    assert is_sensitive_key("AWS_SECRET_ACCESS_KEY")
    assert is_sensitive_key("authorization")
    assert not is_sensitive_key("service_name")
    assert not is_sensitive_key("author")


def test_masking_is_idempotent() -> None:
    text = f"password=x1 token={JWT} to a@b.io"
    once = mask_text(text)
    assert mask_text(once) == once


@pytest.mark.parametrize(("urn", "masked"), [
    ("urn:svc:svc password=X1", "urn:svc:svc password=<secret>"),
    ("urn:db:postgresql:postgres://x:PW@h/db", "urn:db:postgresql:postgres://x:<secret>@h/db"),
    ("urn:svc:Checkout", "urn:svc:checkout"),
    ("urn:svc:auth-token-service", "urn:svc:auth-token-service"),
])
def test_mask_urn_masks_secrets_lower_cases_and_is_stable(urn: str, masked: str) -> None:
    from airflow_obs_provider.engine.masking import mask_urn

    assert mask_urn(urn) == masked
    assert mask_urn(masked) == masked


def test_topology_urns_are_masked_wherever_a_reader_builds_them() -> None:
    from airflow_obs_provider.engine.topology.model import Topology

    topo = Topology("ansible")
    src = topo.add_node("urn:svc:app", "service")
    dst = topo.add_node("urn:svc:https://u:TopoPw1@api.example.com", "service")
    topo.add_edge("urn:svc:app", "urn:svc:https://u:TopoPw1@api.example.com", "DEPENDS_ON", via="password=TopoPw2")
    (edge,) = topo.edges
    assert (edge.src, edge.dst) == (src, dst) == ("urn:svc:app", "urn:svc:https://u:<secret>@api.example.com")
    assert "TopoPw" not in edge.props_json()
