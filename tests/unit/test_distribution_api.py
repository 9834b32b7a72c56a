"""DistributionApi.delete (registry/api.py): a 400/405 without a code, or UNSUPPORTED, means the
registry has deletes switched off, a run-wide stop with the setting to change; other 400s are a
failure of that one item (issue 21: mutation survivors)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from regcollect.errors import DeleteDisabled, RegistryError
from regcollect.registry.api import DistributionApi
from regcollect.registry.client import RegistryClient

DIGEST = "sha256:" + "a" * 64


def delete(answer: httpx.Response) -> bool:
    async def main() -> bool:
        async with RegistryClient("https://reg.test", transport=httpx.MockTransport(lambda r: answer)) as c:
            return await DistributionApi(c).delete("team/app", DIGEST)

    return asyncio.run(main())


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(405),
        httpx.Response(400),
        httpx.Response(400, json={"errors": [{"code": "UNSUPPORTED"}]}),
    ],
)
def test_deletes_switched_off_stop_the_run_with_the_setting_to_change(answer: httpx.Response) -> None:
    with pytest.raises(DeleteDisabled) as err:
        delete(answer)
    assert str(err.value).endswith("in distribution set storage.delete.enabled: true")
    assert err.value.status == answer.status_code


def test_a_400_with_another_code_fails_that_item_only() -> None:
    with pytest.raises(RegistryError) as err:
        delete(httpx.Response(400, json={"errors": [{"code": "DIGEST_INVALID", "message": "bad"}]}))
    assert not isinstance(err.value, DeleteDisabled) and err.value.code == "DIGEST_INVALID"
    with pytest.raises(RegistryError) as err:
        delete(httpx.Response(406))
    assert not isinstance(err.value, DeleteDisabled)
