"""Webhook pure logic: Standard Webhooks signatures (checked with the reference verifier), which answers
are retried."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.api.webhooks import delivery_id, is_retryable_status, signed_headers

BODY = b'{"type":"Feature","id":"d1"}'


def test_a_signed_attempt_verifies_with_the_reference_library():
    headers = signed_headers(b"s3cret", "q1:1-0", BODY, datetime.now(UTC))
    assert Webhook(b"s3cret").verify(BODY, headers) == {"type": "Feature", "id": "d1"}
    # The string form every Standard Webhooks library takes names the same key.
    assert Webhook("whsec_" + base64.b64encode(b"s3cret").decode()).verify(BODY, headers)
    assert headers["webhook-id"] == "q1:1-0"
    assert headers["webhook-signature"].startswith("v1,")


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        (BODY + b" ", b"s3cret", "No matching signature"),
        (BODY, b"other", "No matching signature"),
    ],
)
def test_the_verifier_refuses_other_bodies_and_keys(body, key, message):
    headers = signed_headers(b"s3cret", "q1:1-0", BODY, datetime.now(UTC))
    with pytest.raises(WebhookVerificationError, match=message):
        Webhook(key).verify(body, headers)


def test_the_verifier_refuses_another_id_and_a_replay_outside_its_tolerance():
    now = datetime.now(UTC)
    headers = signed_headers(b"s3cret", "q1:1-0", BODY, now)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(b"s3cret").verify(BODY, headers | {"webhook-id": "q1:2-0"})
    captured = signed_headers(b"s3cret", "q1:1-0", BODY, now - timedelta(minutes=6))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(b"s3cret").verify(BODY, captured)


def test_delivery_ids_are_unique_across_queries():
    assert delivery_id("q1", "1700000000000-0") != delivery_id("q2", "1700000000000-0")


@pytest.mark.parametrize(
    ("status", "retried"),
    [(500, True), (502, True), (503, True), (408, True), (429, True), (400, False), (401, False),
     (404, False), (410, False), (301, False)],
)  # fmt: skip
def test_retryable_statuses(status, retried):
    assert is_retryable_status(status) is retried
