"""API key format and hashing (pure functions; the Redis store is tested in tests/integration)."""

import pytest

from services.api.api_keys import ApiKeyError, key_digest, parse_key

KEY_ID = "0123456789ab"
SECRET = "A" * 21 + "-_" + "z" * 20  # 43 URL-safe base64 characters, as secrets.token_urlsafe(32)


def test_a_well_formed_key_splits_into_id_and_secret():
    assert parse_key(f"lk_{KEY_ID}_{SECRET}") == (KEY_ID, SECRET)
    assert parse_key(f"  lk_{KEY_ID}_{SECRET}\n") == (KEY_ID, SECRET)  # pasted with whitespace


@pytest.mark.parametrize(
    "key",
    [
        "",
        "hunter2",
        f"lk_{KEY_ID}",
        f"lk_{KEY_ID}_{SECRET[:-1]}",  # one character short
        f"lk_{KEY_ID.upper()}_{SECRET}",  # the id is lower-case hex
        f"xx_{KEY_ID}_{SECRET}",
        f"lk_{KEY_ID}_{SECRET[:-1]}!",
    ],
)
def test_malformed_keys_are_refused_without_echoing_them(key):
    with pytest.raises(ApiKeyError) as info:
        parse_key(key)
    assert str(info.value) == "malformed API key: expected lk_<12 hex digits>_<43 characters>"


def test_the_digest_depends_on_pepper_id_and_secret():
    digest = key_digest("pepper-one", KEY_ID, SECRET)
    assert len(digest) == 64
    assert digest == key_digest("pepper-one", KEY_ID, SECRET)
    assert digest != key_digest("pepper-two", KEY_ID, SECRET)
    assert digest != key_digest("pepper-one", "ba9876543210", SECRET)
    assert digest != key_digest("pepper-one", KEY_ID, SECRET[::-1])
    assert SECRET not in digest
