"""Storage URI schemes, OME's pvc:// parser (every error case) and the plugin's stricter rules."""

from __future__ import annotations

import pytest

from kubectl_omepvc.core import storage_uri
from kubectl_omepvc.core.naming import ModelKind
from kubectl_omepvc.core.storage_uri import PvcUri, PvcUriError, StorageScheme


@pytest.mark.parametrize(
    ("uri", "scheme"),
    [
        ("oci://n/ns/b/bucket/o/llama", StorageScheme.OCI),
        ("pvc://claim/llama", StorageScheme.PVC),
        ("vendor://meta/model/llama", StorageScheme.VENDOR),
        ("hf://meta-llama/Llama-3.2-1B", StorageScheme.HF),
        ("s3://bucket/llama", StorageScheme.S3),
        ("az://account/container/llama", StorageScheme.AZ),
        ("gs://bucket/llama", StorageScheme.GS),
        ("github://owner/repo@v1", StorageScheme.GITHUB),
        ("local:///models/llama", StorageScheme.LOCAL),
        ("HF://meta-llama/x", StorageScheme.UNKNOWN),
        ("Pvc://claim/x", StorageScheme.UNKNOWN),
        ("http://example.com/x", StorageScheme.UNKNOWN),
        ("", StorageScheme.UNKNOWN),
        (None, StorageScheme.UNKNOWN),
    ],
    ids=str,
)
def test_scheme_of(uri: str | None, scheme: StorageScheme) -> None:
    assert storage_uri.scheme_of(uri) is scheme


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("pvc://models/meta/llama", PvcUri(None, "models", "meta/llama")),
        ("pvc://team-a:models/llama", PvcUri("team-a", "models", "llama")),
        ("pvc://a/b", PvcUri(None, "a", "b")),
        # OME keeps the sub-path verbatim: these pass its parser.
        ("pvc://models/../etc", PvcUri(None, "models", "../etc")),
        ("pvc://models//abs", PvcUri(None, "models", "/abs")),
        ("pvc://models/dir/", PvcUri(None, "models", "dir/")),
        ("pvc://Models_X/x", PvcUri(None, "Models_X", "x")),  # claim name is not validated
        ("pvc://ns:c/x:y", PvcUri("ns", "c", "x:y")),  # ':' after the first '/' is sub-path
        ("pvc://" + "a" * 63 + ":c/x", PvcUri("a" * 63, "c", "x")),
    ],
    ids=["plain", "namespaced", "minimal", "dotdot", "leading-slash", "trailing-slash",
         "odd-claim", "colon-in-subpath", "ns-63"],
)  # fmt: skip
def test_parse_accepts_what_ome_accepts(uri: str, expected: PvcUri) -> None:
    assert storage_uri.parse_pvc_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("hf://x/y", "must start with pvc://"),
        ("PVC://c/x", "must start with pvc://"),
        ("pvc://", "nothing after pvc://"),
        ("pvc://p", "no sub-path"),
        ("pvc://ns:p", "no sub-path"),
        ("pvc://p/", "empty sub-path"),
        ("pvc://:p/x", "empty namespace"),
        ("pvc://:/x", "empty namespace"),
        ("pvc://ns:/x", "empty claim name after ':'"),
        ("pvc://a:b:c/x", "more than one ':'"),
        ("pvc://a::/x", "more than one ':'"),
        ("pvc://Team:c/x", "invalid namespace 'Team'"),
        ("pvc://-ns:c/x", "invalid namespace '-ns'"),
        ("pvc://ns-:c/x", "invalid namespace 'ns-'"),
        ("pvc://n_s:c/x", "invalid namespace 'n_s'"),
        ("pvc://" + "a" * 64 + ":c/x", "invalid namespace"),
        ("pvc:///x", "names no claim"),
        ("pvc:///", "names no claim"),
    ],
    ids=["other-scheme", "upper-case", "empty", "no-slash", "ns-no-slash", "empty-subpath",
         "empty-ns", "empty-ns-and-claim", "empty-claim", "two-colons", "double-colon",
         "upper-ns", "ns-leading-dash", "ns-trailing-dash", "ns-underscore", "ns-64",
         "missing-claim", "missing-claim-and-subpath"],
)  # fmt: skip
def test_parse_rejects_what_ome_rejects(uri: str, message: str) -> None:
    with pytest.raises(PvcUriError, match=message.replace("(", r"\(")) as info:
        storage_uri.parse_pvc_uri(uri)
    assert isinstance(info.value, ValueError)
    assert repr(uri) in str(info.value)


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("pvc://Models/x", "not a valid object name"),
        ("pvc://models_x/x", "not a valid object name"),
        ("pvc://-models/x", "not a valid object name"),
        ("pvc://" + "a" * 254 + "/x", "not a valid object name"),
        ("pvc://models/../etc", "'..' segment"),
        ("pvc://models/meta/../../x", "'..' segment"),
        ("pvc://models//abs", "starts with '/'"),
        ("pvc://models/dir/", "ends with '/'"),
        ("pvc://models/a//b", "contains '//'"),
    ],
    ids=["upper", "underscore", "leading-dash", "too-long", "dotdot", "nested-dotdot",
         "leading-slash", "trailing-slash", "double-slash"],
)  # fmt: skip
def test_strict_rejects_what_ome_lets_through(uri: str, problem: str) -> None:
    parsed = storage_uri.parse_pvc_uri(uri)  # OME accepts it ...
    with pytest.raises(PvcUriError, match=problem):  # ... the plugin does not
        storage_uri.check_pvc_uri_strict(parsed)
    with pytest.raises(PvcUriError, match=problem):
        storage_uri.check_pvc_uri_strict(uri)


@pytest.mark.parametrize(
    "uri",
    ["pvc://models/meta/llama", "pvc://team-a:models.v2/a..b/c", "pvc://m/x.safetensors"],
    ids=["plain", "dots-in-names", "file"],
)
def test_strict_accepts_clean_uris(uri: str) -> None:
    assert storage_uri.check_pvc_uri_strict(uri) == storage_uri.parse_pvc_uri(uri)


def test_strict_reports_every_problem_at_once() -> None:
    with pytest.raises(PvcUriError) as info:
        storage_uri.check_pvc_uri_strict("pvc://Bad/../x/")
    text = str(info.value)
    assert "not a valid object name" in text and "'..'" in text and "ends with '/'" in text


def test_strict_passes_ome_errors_through() -> None:
    with pytest.raises(PvcUriError, match="empty sub-path"):
        storage_uri.check_pvc_uri_strict("pvc://models/")


@pytest.mark.parametrize(
    ("namespace", "claim", "sub_path", "uri"),
    [
        ("team-a", "models", "meta/llama", "pvc://team-a:models/meta/llama"),
        (None, "models", "llama", "pvc://models/llama"),
        ("", "models", "llama", "pvc://models/llama"),
    ],
    ids=["namespaced", "no-namespace", "empty-namespace"],
)
def test_format_round_trips(namespace: str | None, claim: str, sub_path: str, uri: str) -> None:
    assert storage_uri.format_pvc_uri(namespace, claim, sub_path) == uri
    parsed = storage_uri.parse_pvc_uri(uri)
    assert parsed == PvcUri(namespace or None, claim, sub_path)
    assert str(parsed) == uri


def test_as_dict_is_camel_case() -> None:
    parsed = PvcUri("ns", "c", "x/y")
    assert parsed.as_dict() == {"namespace": "ns", "claim": "c", "subPath": "x/y"}


@pytest.mark.parametrize(
    ("uri", "width", "expected"),
    [
        ("hf://meta/llama", 40, "hf://meta/llama"),
        ("hf://meta/llama", 15, "hf://meta/llama"),
        ("hf://meta-llama/Llama-3.2-1B-Instruct", 20, "hf://...-1B-Instruct"),
        ("oci://n/tenancy/b/bucket/o/llama", 16, "oci://...o/llama"),
        ("pvc://team-a:models/meta/llama", 12, "pvc://...ama"),
        ("s3://bucket/very/long/prefix/llama", 8, "...llama"),
        ("gs://bucket/x", 3, "gs:"),
        ("gs://bucket/x", 0, ""),
    ],
    ids=["fits", "exact-fit", "hf", "oci", "pvc-narrow", "no-room-for-scheme", "tiny", "zero"],
)
def test_shorten_uri(uri: str, width: int, expected: str) -> None:
    out = storage_uri.shorten_uri(uri, width)
    assert out == expected
    assert len(out) == min(width, len(uri))


def test_agent_capabilities_per_scheme() -> None:
    assert {s for s in StorageScheme if s.agent_downloads} == {StorageScheme.OCI, StorageScheme.HF}
    assert {s.value for s in StorageScheme if s.agent_cannot_download} == {
        "s3", "az", "gs", "github",
    }  # fmt: skip


# -- OME's own URI table per model kind --------------------------------------------------------
# sgl-project/ome pkg/validation/basemodel_test.go (TestValidatePVCStorage) at
# aab06ebe5f116bd6f776736d2f665d5281420795, and pkg/controller/v1beta1/basemodel/backends/pvc/
# pvc_test.go (TestResolvePVCNamespace, TestReconcilePVCStorage_BaseModel) at
# c059956e1106386b8c9673de42cf06e0182e3399. The model's namespace is "models" in OME's tables.

OME_ACCEPTS = [
    # (kind, uri, namespace the claim is read in, claim, sub-path)
    (ModelKind.NAMESPACED, "pvc://my-pvc/models/llama", "models", "my-pvc", "models/llama"),
    (ModelKind.CLUSTER, "pvc://shared:my-pvc/models/llama", "shared", "my-pvc", "models/llama"),
    (ModelKind.NAMESPACED, "pvc://my-pvc/models/llama2-7b", "models", "my-pvc", "models/llama2-7b"),
    (ModelKind.CLUSTER, "pvc://shared:pvc1/x", "shared", "pvc1", "x"),
    (ModelKind.NAMESPACED, "pvc://pvc1/x", "models", "pvc1", "x"),
]
OME_REFUSES = [
    (ModelKind.NAMESPACED, "pvc://shared:my-pvc/models/llama", "must not name a namespace"),
    (ModelKind.NAMESPACED, "pvc://other:my-pvc/models/llama", "must not name a namespace"),
    (ModelKind.CLUSTER, "pvc://my-pvc/models/llama", "must name the claim's namespace"),
    (ModelKind.CLUSTER, "pvc://pvc1/x", "must name the claim's namespace"),
    (ModelKind.NAMESPACED, "pvc://", "nothing after pvc://"),
    (ModelKind.CLUSTER, "pvc://", "nothing after pvc://"),
]


@pytest.mark.parametrize(("kind", "uri", "namespace", "claim", "sub_path"), OME_ACCEPTS, ids=str)
def test_ome_table_accepted_forms_parse_and_are_written_back(
    kind: ModelKind, uri: str, namespace: str, claim: str, sub_path: str
) -> None:
    parsed = storage_uri.parse_model_pvc_uri(kind, uri)
    assert (parsed.claim, parsed.sub_path) == (claim, sub_path)
    assert storage_uri.kind_problem(kind, parsed) is None
    # the writer, given where the claim is, writes exactly OME's accepted form
    assert storage_uri.model_pvc_uri(kind, namespace, claim, sub_path) == uri


@pytest.mark.parametrize(("kind", "uri", "problem"), OME_REFUSES, ids=str)
def test_ome_table_refused_forms_are_refused_and_never_written(
    kind: ModelKind, uri: str, problem: str
) -> None:
    with pytest.raises(PvcUriError, match=problem):
        storage_uri.parse_model_pvc_uri(kind, uri)
    try:
        parsed = storage_uri.parse_pvc_uri(uri)
    except PvcUriError:
        return  # malformed for both kinds: there is nothing the writer could be given
    namespace = parsed.namespace or "models"
    written = storage_uri.model_pvc_uri(kind, namespace, parsed.claim, parsed.sub_path)
    assert written != uri
    assert storage_uri.parse_model_pvc_uri(kind, written).claim == parsed.claim


def test_cluster_uri_needs_a_namespace_to_write() -> None:
    with pytest.raises(PvcUriError, match="needs the claim's namespace"):
        storage_uri.model_pvc_uri(ModelKind.CLUSTER, "", "c", "x")
