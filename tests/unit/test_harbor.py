"""The Harbor backend turns Harbor's answers into the listing the planner trusts, and sends what
Harbor expects: each test names the user-visible behaviour it protects. httpx.MockTransport."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx
import pytest

from regcollect.errors import AuthError, RegistryError
from regcollect.registry.auth import Credentials
from regcollect.registry.client import RegistryClient
from regcollect.registry.harbor import HarborApi
from regcollect.registry.harbor_rest import HarborRestClient, double_encoded

D = {n: "sha256:" + str(n) * 64 for n in range(1, 6)}


def api(handler: Any, username: str = "robot$acme+ci") -> tuple[HarborApi, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        if req.url.path.startswith("/v2/"):
            return httpx.Response(200, json={"name": "acme/app", "tags": ["v1", "sha256-x.sig"]})
        return handler(req)  # type: ignore[no-any-return]

    transport = httpx.MockTransport(record)
    client = RegistryClient("127.0.0.1:5000", transport=transport)
    rest = HarborRestClient(
        "http://127.0.0.1:5000", "/api/v2.0", Credentials(username, "s3cret"), transport=transport
    )
    return HarborApi(client, rest, username), seen


ROW = {
    "id": 7,
    "digest": D[1],
    "push_time": "2024-05-01T10:00:00.000Z",
    "pull_time": "0001-01-01T00:00:00.000Z",
    "tags": [{"name": "v1"}],
    "references": [{"child_id": 8, "child_digest": D[2], "platform": {"os": "linux"}}],
    "accessories": [{"artifact_id": 9, "digest": D[3], "type": "signature.cosign"}],
}


def test_never_pulled_children_and_accessories_reach_the_listing() -> None:
    harbor, seen = api(lambda req: httpx.Response(200, json=[ROW]))
    listing = asyncio.run(harbor.listing("acme/team/app"))
    v = listing.versions[D[1]]
    assert v.tags == ("v1",) and v.pushed is not None and v.pushed.year == 2024
    assert v.pulled is None, "the zero time means never pulled, not pulled in year 1"
    assert listing.versions[D[2]].id == "8" and listing.versions[D[3]].id == "9"
    assert listing.tags == {"v1": D[1], "sha256-x.sig": None}  # hidden tags resolved through /v2
    rest = seen[0]
    assert "/repositories/team%252Fapp/artifacts" in rest.url.raw_path.decode()
    assert {"with_tag=true", "with_accessory=true", "page_size=100"} <= set(
        rest.url.query.decode().split("&")
    )
    assert harbor.record("acme/team/app", D[1], "7")["accessories"] == [D[3]]


def test_a_robot_name_keeps_its_dollar_in_basic_auth_and_out_of_urls() -> None:
    harbor, seen = api(lambda req: httpx.Response(200, json=[]))
    asyncio.run(harbor.listing("acme/app"))
    header = seen[0].headers["Authorization"]
    assert base64.b64decode(header.split()[1]).decode() == "robot$acme+ci:s3cret"
    assert all("robot" not in str(r.url) for r in seen)


def test_an_artifact_without_a_valid_digest_is_an_error_not_a_guess() -> None:
    bad = {**ROW, "digest": "sha256:../../x"}
    harbor, _ = api(lambda req: httpx.Response(200, json=[bad]))
    with pytest.raises(RegistryError, match="valid digest"):
        asyncio.run(harbor.listing("acme/app"))


def test_an_untag_names_the_digest_it_saw_so_a_moved_tag_is_left_alone() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.method == "DELETE":
            return httpx.Response(404, json={"errors": [{"code": "NOT_FOUND", "message": "tag"}]})
        return httpx.Response(200, json=[ROW])

    harbor, seen = api(handler)
    asyncio.run(harbor.listing("acme/app"))
    assert asyncio.run(harbor.delete_tag("acme/app", "v1")) is False
    assert seen[-1].url.raw_path.decode().endswith(f"/artifacts/{D[1]}/tags/v1")


def test_a_shell_expanded_robot_name_is_pointed_out_when_harbor_refuses() -> None:
    body = {"errors": [{"code": "UNAUTHORIZED", "message": "unauthorized"}]}
    harbor, _ = api(lambda req: httpx.Response(401, json=body), username="robot+ci")
    with pytest.raises(AuthError, match=r"quote the name") as exc:
        asyncio.run(harbor.listing("acme/app"))
    assert "s3cret" not in str(exc.value)


def test_double_encoding() -> None:
    assert double_encoded("team/app") == "team%252Fapp" and double_encoded("app") == "app"
    assert json.dumps(double_encoded("a b/c")) == '"a%2520b%252Fc"'
