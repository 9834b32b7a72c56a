"""How regcollect reads a server's answer (registry/http.py's pure helpers): the error a user sees
for each status, which quota figures slow a run down, how long a Retry-After makes it wait, and
that a secret in a URL never reaches output. Issue 21: these survived mutation with no test."""

from __future__ import annotations

import time

import httpx
import pytest

from regcollect.errors import AuthError, DeleteDisabled, NotFound, RegistryError
from regcollect.registry.http import (
    RateLimits,
    _kind,
    check,
    is_loopback,
    origin,
    redact_url,
    retry_after,
    server_errors,
)


def answer(
    status: int, method: str = "GET", url: str = "https://reg.test/v2/a/manifests/x", **kw
) -> httpx.Response:  # type: ignore[no-untyped-def]
    return httpx.Response(status, request=httpx.Request(method, url), **kw)


def errors_body(code: str, message: str) -> dict:  # type: ignore[type-arg]
    return {"errors": [{"code": code, "message": message}]}


def test_a_2xx_or_3xx_answer_passes_through_unchanged() -> None:
    for status in (200, 202, 399):
        resp = answer(status)
        assert check(resp, "x") is resp


def test_the_error_names_what_we_did_the_request_and_the_servers_code_and_message() -> None:
    resp = answer(500, json=errors_body("UNKNOWN", "disk full"))
    with pytest.raises(RegistryError) as err:
        check(resp, "reading a manifest")
    assert (
        str(err.value) == "reading a manifest: GET https://reg.test/v2/a/manifests/x: 500 UNKNOWN (disk full)"
    )
    assert err.value.status == 500 and err.value.code == "UNKNOWN"
    assert type(err.value) is RegistryError


def test_a_bare_status_is_reported_without_empty_parentheses() -> None:
    with pytest.raises(RegistryError) as err:
        check(answer(502, text="<html>bad gateway</html>"), "listing tags")
    assert str(err.value) == "listing tags: GET https://reg.test/v2/a/manifests/x: 502"
    assert err.value.code is None


def test_401_and_a_plain_403_are_auth_errors_a_rate_limit_403_is_not() -> None:
    with pytest.raises(AuthError):
        check(answer(401), "x")
    with pytest.raises(AuthError):
        check(answer(403), "x")
    with pytest.raises(RegistryError) as err:
        check(answer(403, headers={"Retry-After": "5"}), "x")
    assert not isinstance(err.value, AuthError) and err.value.status == 403
    with pytest.raises(RegistryError) as err:
        check(answer(403, headers={"X-RateLimit-Remaining": "0"}), "x")
    assert not isinstance(err.value, AuthError)
    with pytest.raises(AuthError):  # quota left: the 403 is a permission refused
        check(answer(403, headers={"X-RateLimit-Remaining": "10"}), "x")


def test_404_is_not_found_with_its_code() -> None:
    with pytest.raises(NotFound) as err:
        check(answer(404, json=errors_body("MANIFEST_UNKNOWN", "gone")), "x")
    assert err.value.status == 404 and err.value.code == "MANIFEST_UNKNOWN"


def test_a_delete_refused_as_405_or_unsupported_says_how_to_enable_deletes() -> None:
    with pytest.raises(DeleteDisabled) as err:
        check(answer(405, "DELETE"), "deleting")
    assert "storage.delete.enabled: true" in str(err.value) and err.value.status == 405
    with pytest.raises(DeleteDisabled) as err:
        check(answer(400, "DELETE", json=errors_body("UNSUPPORTED", "no")), "deleting")
    assert err.value.code == "UNSUPPORTED" and err.value.status == 400
    # A 405 to a GET is not about deletes.
    with pytest.raises(RegistryError) as err:
        check(answer(405, "GET"), "x")
    assert not isinstance(err.value, DeleteDisabled)


def test_server_errors_reads_registry_and_rest_bodies_and_truncates() -> None:
    assert server_errors(answer(500, json=errors_body("DENIED", "no"))) == ("DENIED", "no")
    assert server_errors(answer(500, json={"errors": [{"code": "", "message": ""}]})) == (None, None)
    assert server_errors(answer(500, json={"message": "m" * 400})) == (None, "m" * 300)
    assert server_errors(answer(500, json={"errors": [{"code": "C", "message": "x" * 400}]})) == (
        "C",
        "x" * 300,
    )
    assert server_errors(answer(500, json={"message": 3})) == (None, None)
    assert server_errors(answer(500, json={"errors": []})) == (None, None)
    assert server_errors(answer(500, json={"errors": ["text"], "message": "rest"})) == (None, "rest")
    assert server_errors(answer(500, json=["not", "a", "dict"])) == (None, None)
    assert server_errors(answer(500, text="not json")) == (None, None)


def test_retry_after_seconds_dates_and_vendor_headers() -> None:
    assert retry_after(answer(429, headers={"Retry-After": " 7 "})) == 7.0
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert retry_after(answer(429, headers={"Retry-After": past})) == 0.0
    soon = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 100))
    assert 90 <= (retry_after(answer(429, headers={"Retry-After": soon})) or 0) <= 101
    assert retry_after(answer(429, headers={"Retry-After": "soon"})) is None
    assert retry_after(answer(429, headers={"X-Retry-After": "12"})) == 12.0
    # A reset time counts only when the quota is exhausted.
    assert retry_after(answer(429, headers={"X-RateLimit-Reset": "30"})) is None
    assert retry_after(answer(429, headers={"X-RateLimit-Reset": "30", "X-RateLimit-Remaining": "0"})) == 30.0
    later = str(int(time.time()) + 50)
    waited = retry_after(answer(429, headers={"X-RateLimit-Reset": later, "X-RateLimit-Remaining": "0"}))
    assert waited is not None and 40 <= waited <= 51
    gone = str(int(time.time()) - 50)
    assert retry_after(answer(429, headers={"X-Retry-After": gone})) == 0.0
    assert retry_after(answer(429)) is None


def test_rate_limits_keep_the_latest_remaining_and_the_lowest_with_its_limit() -> None:
    rl = RateLimits()
    reset = str(int(time.time()) + 60)
    rl.note(answer(200, headers={"RateLimit-Remaining": "90;w=3600", "RateLimit-Limit": "100;w=3600"}))
    assert (rl.remaining, rl.lowest, rl.limit, rl.reset) == (90, 90, 100, None)
    rl.note(
        answer(
            200,
            headers={"X-RateLimit-Remaining": "40", "X-RateLimit-Limit": "60", "X-RateLimit-Reset": reset},
        )
    )
    assert (rl.remaining, rl.lowest, rl.limit, rl.reset) == (40, 40, 60, float(reset))
    rl.note(answer(200, headers={"X-RateLimit-Remaining": "55", "X-RateLimit-Limit": "70"}))
    assert (rl.remaining, rl.lowest, rl.limit, rl.reset) == (55, 40, 60, None)
    rl.note(answer(200, headers={"X-RateLimit-Remaining": "abc"}))
    assert rl.remaining == 55
    # A small reset is seconds, not a time: not taken as the refill time.
    rl.note(answer(200, headers={"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": "30"}))
    assert (rl.remaining, rl.lowest, rl.limit, rl.reset) == (10, 10, None, None)


def test_the_standard_header_wins_over_the_x_header() -> None:
    rl = RateLimits()
    rl.note(answer(200, headers={"RateLimit-Remaining": "5", "X-RateLimit-Remaining": "7"}))
    assert rl.remaining == 5


def test_redact_url_hides_userinfo_and_secret_queries_only() -> None:
    assert redact_url("https://u:p@reg.test/v2/?n=1") == "https://reg.test/v2/?n=1"
    assert redact_url("https://s.test/b?X-Amz-Signature=abc") == "https://s.test/b?(query hidden)"
    assert redact_url("https://s.test/b?TOKEN=1") == "https://s.test/b?(query hidden)"
    assert redact_url("https://s.test/b?sig=1") == "https://s.test/b?(query hidden)"
    assert redact_url("https://s.test/b?password=1#frag") == "https://s.test/b?(query hidden)"
    assert redact_url("https://s.test/b?last=a&n=50") == "https://s.test/b?last=a&n=50"


def test_loopback_names_and_addresses() -> None:
    for host in ("localhost", "a.localhost", "127.0.0.1", "127.9.9.9", "[::1]", "::1"):
        assert is_loopback(host), host
    for host in ("example.com", "localhost.example", "10.0.0.1", "[2001:db8::1]", "mylocalhost"):
        assert not is_loopback(host), host


def test_origin_normalises_case_trailing_dot_default_ports_and_ipv6() -> None:
    assert origin("HTTPS://Reg.Test./v2/") == ("https", "reg.test", 443)
    assert origin("http://reg.test/v2/") == ("http", "reg.test", 80)
    assert origin("https://reg.test:5000") == ("https", "reg.test", 5000)
    assert origin("https://[0:0::1]:443/") == ("https", "::1", 443)


def test_request_kinds_separate_manifests_blobs_tags_catalog_and_referrers() -> None:
    assert _kind("DELETE", "/v2/a/manifests/x") == "DELETE/manifests/"
    assert _kind("HEAD", "/v2/a/blobs/x") == "HEAD/blobs/"
    assert _kind("GET", "/v2/a/tags/list") == "GET/tags/"
    assert _kind("GET", "/v2/_catalog?n=1") == "GET/_catalog"
    assert _kind("GET", "/v2/a/referrers/x") == "GET/referrers/"
    assert _kind("GET", "/v2/") == "GET"


def test_quota_figures_with_several_parameters_are_read() -> None:
    rl = RateLimits()
    rl.note(
        answer(200, headers={"RateLimit-Remaining": "90;w=3600;burst=5", "RateLimit-Limit": "100;w=3600;b=1"})
    )
    assert (rl.remaining, rl.limit) == (90, 100)
    reset = str(int(time.time()) + 60)
    rl.note(answer(200, headers={"RateLimit-Remaining": "80;a=1;b=2", "RateLimit-Reset": f"{reset};a;b"}))
    assert (rl.remaining, rl.reset) == (80, float(reset))


def test_a_small_x_retry_after_is_seconds() -> None:
    assert retry_after(answer(429, headers={"X-Retry-After": "100"})) == 100.0
    assert (
        retry_after(answer(429, headers={"X-RateLimit-Reset": "120", "X-RateLimit-Remaining": "0"})) == 120.0
    )


def test_a_password_holding_an_at_sign_is_not_printed() -> None:
    assert redact_url("https://u:p@ss@reg.test/v2/") == "https://reg.test/v2/"


def test_only_bracketed_names_lose_their_brackets() -> None:
    assert not is_loopback("localhostX") and not is_loopback("X127.0.0.1")


def test_a_404_names_what_we_did_and_a_disabled_delete_says_exactly_how_to_enable_it() -> None:
    with pytest.raises(NotFound) as err:
        check(answer(404), "reading a manifest")
    assert str(err.value) == "reading a manifest: GET https://reg.test/v2/a/manifests/x: 404"
    with pytest.raises(DeleteDisabled) as err:
        check(answer(405, "DELETE"), "deleting")
    assert str(err.value) == (
        "deleting: the registry has deletion disabled (DELETE https://reg.test/v2/a/manifests/x: 405); "
        "in distribution set storage.delete.enabled: true"
    )


@pytest.mark.parametrize(
    ("attempt", "low", "high"), [(1, 0.05, 0.1), (2, 0.1, 0.2), (4, 0.4, 0.8), (9, 2.5, 5.0)]
)
def test_backoff_doubles_from_a_tenth_of_a_second_up_to_five_with_jitter_in_the_upper_half(
    attempt: int, low: float, high: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retries must neither hammer a struggling registry nor stall a run for long."""
    from regcollect.registry import http as http_mod

    monkeypatch.setattr(http_mod.random, "uniform", lambda a, b: a)
    assert http_mod._backoff(attempt) == pytest.approx(low)
    monkeypatch.setattr(http_mod.random, "uniform", lambda a, b: b)
    assert http_mod._backoff(attempt) == pytest.approx(high)
