"""Webhook pure logic: HMAC signatures, the backoff schedule, which answers are retried."""

import hashlib
import hmac

import pytest

from services.api.webhooks import backoff_delays, is_retryable_status, sign, verify_signature


def test_signature_is_hex_hmac_sha256_of_the_body():
    body = b'{"type":"Feature"}'
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign(body, "s3cret") == f"sha256={expected}"
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    assert sign(b"what do ya want for nothing?", "Jefe") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_verify_signature_rejects_other_bodies_keys_and_missing_headers():
    body = b'{"id":"d1"}'
    header = sign(body, "k")
    assert verify_signature(body, "k", header)
    assert not verify_signature(body + b" ", "k", header)
    assert not verify_signature(body, "other", header)
    assert not verify_signature(body, "k", None)


def test_backoff_doubles_and_is_capped():
    assert backoff_delays(1, 1.0, 60.0) == []
    assert backoff_delays(5, 1.0, 60.0) == [1.0, 2.0, 4.0, 8.0]
    assert backoff_delays(6, 0.5, 3.0) == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(
    ("status", "retried"),
    [(500, True), (502, True), (503, True), (408, True), (429, True), (400, False), (401, False),
     (404, False), (410, False), (301, False)],
)  # fmt: skip
def test_retryable_statuses(status, retried):
    assert is_retryable_status(status) is retried
