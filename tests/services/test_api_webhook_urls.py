"""The webhook URL policy (SSRF guard): address classes, schemes, the allow-list, pinned requests.

Names are resolved by the system resolver; only IP literals and ``localhost`` (from /etc/hosts) are
used, so nothing leaves the machine.
"""

from ipaddress import IPv4Address, ip_address

import httpx
import pytest

from services.api.webhook_urls import (
    WebhookUrlPolicy,
    WebhookUrlRefusedError,
    embedded_ipv4,
    non_public_kind,
    normalize_host,
)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "link-local"),  # cloud instance metadata
        ("fe80::1", "link-local"),
        ("100.64.0.1", "non-global"),  # shared address space (CGNAT)
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("fec0::1", "site-local"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("2002:c0a8:0101::", "private"),  # 6to4 of 192.168.1.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("::7f00:1", "reserved"),  # IPv4-compatible (deprecated)
        ("::ffff:8.8.8.8", None),
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("64:ff9b::808:808", None),  # NAT64 of 8.8.8.8
    ],
)
def test_address_classes(address, kind):
    assert non_public_kind(ip_address(address)) == kind


def test_ipv4_inside_ipv6_is_found():
    assert embedded_ipv4(ip_address("::ffff:10.0.0.1")) == [IPv4Address("10.0.0.1")]
    assert embedded_ipv4(ip_address("2002:0a00:0001::")) == [IPv4Address("10.0.0.1")]
    assert embedded_ipv4(ip_address("64:ff9b::a00:1")) == [IPv4Address("10.0.0.1")]
    assert embedded_ipv4(ip_address("2001:4860::1")) == []
    assert embedded_ipv4(ip_address("10.0.0.1")) == []


def _refusal(policy: WebhookUrlPolicy, url: str) -> WebhookUrlRefusedError:
    with pytest.raises(WebhookUrlRefusedError) as info:
        policy.check(url)
    return info.value


def test_internal_hosts_are_refused_with_the_reason():
    policy = WebhookUrlPolicy([])
    assert _refusal(policy, "http://127.0.0.1:8080/hook").reason == (
        "127.0.0.1 is a loopback address; webhooks may only reach public addresses unless the host "
        "is listed in api.webhook.allow_hosts"
    )
    assert _refusal(policy, "http://localhost:8080/hook").reason.startswith("localhost resolves to ")
    assert "link-local" in _refusal(policy, "http://169.254.169.254/latest/meta-data/").reason
    assert "private" in _refusal(policy, "http://[::ffff:10.0.0.1]/").reason
    assert str(_refusal(policy, "http://10.0.0.1/")).startswith("delivery.webhook_url: 10.0.0.1 is a private")


def test_only_http_and_https_schemes_pass():
    policy = WebhookUrlPolicy(["localhost"])
    for url in ("ftp://localhost/x", "file:///etc/passwd", "gopher://localhost/"):
        refusal = _refusal(policy, url)
        assert "is not allowed; use http or https" in refusal.reason
        assert not refusal.transient


def test_unresolvable_hosts_are_refused_as_transient():
    refusal = _refusal(WebhookUrlPolicy([]), "https://hooks.invalid/x")  # .invalid never resolves (RFC 6761)
    assert refusal.reason.startswith("host hooks.invalid does not resolve")
    assert refusal.transient


def test_allow_listed_hosts_pass_in_any_spelling():
    assert normalize_host("[::1]") == "::1"
    assert normalize_host("LocalHost.") == "localhost"
    policy = WebhookUrlPolicy(["LOCALHOST.", "[::1]", "127.0.0.1"])
    target = policy.check("http://localhost:9000/hook")
    assert target.host == "localhost"
    assert all(non_public_kind(a) == "loopback" for a in target.addresses)
    assert policy.check("http://[::1]:9000/").addresses == (ip_address("::1"),)
    assert policy.check("http://127.0.0.1/").addresses == (ip_address("127.0.0.1"),)
    assert "loopback" in _refusal(policy, "http://127.0.0.2/").reason  # the list names hosts, not ranges


def test_pinned_requests_keep_the_registered_host_for_http_and_tls():
    target = WebhookUrlPolicy(["localhost"]).check("https://localhost:8443/hooks/lookout?x=1")
    url, headers, extensions = target.pinned(ip_address("127.0.0.1"))
    assert url == httpx.URL("https://127.0.0.1:8443/hooks/lookout?x=1")
    assert headers == {"Host": "localhost:8443"}
    assert extensions == {"sni_hostname": "localhost"}
    url, headers, extensions = target.pinned(ip_address("::1"))
    assert str(url) == "https://[::1]:8443/hooks/lookout?x=1"

    plain = WebhookUrlPolicy(["localhost"]).check("http://localhost/hook")
    assert plain.pinned(ip_address("127.0.0.1")) == (
        httpx.URL("http://127.0.0.1/hook"),
        {"Host": "localhost"},
        {},
    )
