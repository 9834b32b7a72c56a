"""The throwaway manifest an untag writes under the tag before deleting it: registries accept it
only if it is a valid OCI manifest whose config is the empty blob, and two untags must not make
the same digest (deleting one would delete the other's tag too). Issue 21."""

from __future__ import annotations

import hashlib
import json

from regcollect.registry.backend import throwaway_manifest


def test_a_throwaway_is_a_minimal_oci_manifest_over_the_empty_config() -> None:
    doc = json.loads(throwaway_manifest())
    nonce = doc["annotations"].pop("dev.regcollect.untag")
    assert len(nonce) == 32 and int(nonce, 16) >= 0
    assert doc == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.regcollect.untag.v1",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
            "size": 2,
        },
        "layers": [],
        "annotations": {},
    }


def test_two_throwaways_never_share_a_digest() -> None:
    assert throwaway_manifest() != throwaway_manifest()
    assert b" " not in throwaway_manifest()  # compact: the bytes the digest is of
