"""OME's names for per-node model state: node label keys and model-agent ConfigMap keys.

Ported from OME's `pkg/constants` (facts in `shared/reference/ome.md`). A label name (the part
after `models.ome.io/`) may hold 49 characters, so long model names are shortened to
`<first 8 hex of sha256(name)>-<tail>`; ConfigMap keys get the same treatment beyond 253
characters. The plugin must compute exactly the key OME computes, or it reads the wrong label.
"""

from __future__ import annotations

import enum
import hashlib

LABEL_DOMAIN = "models.ome.io"
CLUSTER_TYPE = "clusterbasemodel"
NAMESPACED_TYPE = "basemodel"

LABEL_NAME_MAX = 49  # 63 (label name limit) - len("models.ome.io") - 1
CONFIGMAP_KEY_MAX = 253
HASH_PREFIX_LEN = 8
# Below this many characters a namespace keeps its name; longer ones become a bare hash.
NAMESPACE_MIN_LEN = 8

# The model-agent's per-node ConfigMaps (note: `models.ome/`, without `.io`).
AGENT_NAMESPACE = "ome"
AGENT_CONFIGMAP_LABEL = "models.ome/basemodel-status"
AGENT_CONFIGMAP_LABEL_SELECTOR = f"{AGENT_CONFIGMAP_LABEL}=true"

# Set by this plugin on a workload it switched to a claim; the value is JSON with `strategy`.
ORIGINAL_ANNOTATION = "ome-pvc.io/original"
# The claim's volume in the pod specs of an isvc on the `isvc` route (its own spec carries it).
ISVC_ROUTE_VOLUME = "ome-pvc-model"
# Set by this plugin on each pod template it switched to a claim, value the strategy. OME's
# Update replaces the workload's metadata.annotations (and the record above with them); the
# pod template is spec, which the policy rewrites on every write, so this mark stays.
STRATEGY_ANNOTATION = "ome-pvc.io/strategy"
# OME's label naming the InferenceService on each workload it renders (and on their pods).
ISVC_LABEL = "ome.io/inferenceservice"


class ModelKind(str, enum.Enum):
    """The two OME model kinds; values are the API `kind` strings."""

    CLUSTER = "ClusterBaseModel"
    NAMESPACED = "BaseModel"

    @property
    def resource(self) -> str:
        """The kubectl resource name: `clusterbasemodel` / `basemodel`."""
        return self.value.lower()


def _hash_prefix(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:HASH_PREFIX_LEN]


def shorten_with_hash(value: str, max_len: int) -> str:
    """OME's truncation: unchanged if it fits, else `<8 hex of sha256>-<last chars>`.

    When `max_len` leaves no room for a suffix the result is the bare hash, cut to `max_len`.
    """
    if len(value) <= max_len:
        return value
    suffix_len = max_len - HASH_PREFIX_LEN - 1
    if suffix_len <= 0:
        return _hash_prefix(value)[:max_len]
    return f"{_hash_prefix(value)}-{value[-suffix_len:]}"


def _split_budget(namespace: str, name: str, budget: int) -> tuple[str, str]:
    """Share `budget` characters between namespace and name the way OME does.

    The name has priority: a namespace of up to 8 characters keeps its length, a longer one
    is cut to 8 (which, with no room for a suffix, is its bare hash).
    """
    if len(namespace) + len(name) <= budget:
        return namespace, name
    if budget < 2 * NAMESPACE_MIN_LEN:  # unreachable with OME's limits, kept for fidelity
        ns_len = budget // 2
    else:
        ns_len = min(len(namespace), NAMESPACE_MIN_LEN)
    return shorten_with_hash(namespace, ns_len), shorten_with_hash(name, budget - ns_len)


def cluster_model_label_key(name: str) -> str:
    """`models.ome.io/clusterbasemodel.<name>`, the name shortened beyond 32 characters."""
    budget = LABEL_NAME_MAX - len(CLUSTER_TYPE) - 1
    return f"{LABEL_DOMAIN}/{CLUSTER_TYPE}.{shorten_with_hash(name, budget)}"


def namespaced_model_label_key(namespace: str, name: str) -> str:
    """`models.ome.io/<namespace>.basemodel.<name>`; both shortened beyond 38 characters."""
    budget = LABEL_NAME_MAX - len(NAMESPACED_TYPE) - 2  # the two dots
    ns, short = _split_budget(namespace, name, budget)
    return f"{LABEL_DOMAIN}/{ns}.{NAMESPACED_TYPE}.{short}"


def model_label_key(kind: ModelKind, name: str, namespace: str | None = None) -> str:
    """The node label OME's agent writes for this model (and its workloads select on)."""
    if kind is ModelKind.CLUSTER:
        return cluster_model_label_key(name)
    if not namespace:
        raise ValueError(f"a BaseModel needs a namespace (model {name!r})")
    return namespaced_model_label_key(namespace, name)


def label_key_is_hashed(kind: ModelKind, name: str, namespace: str | None = None) -> bool:
    """Whether OME shortens this model's label key (so the plain name is not in it)."""
    if kind is ModelKind.CLUSTER:
        return len(name) > LABEL_NAME_MAX - len(CLUSTER_TYPE) - 1
    return len(namespace or "") + len(name) > LABEL_NAME_MAX - len(NAMESPACED_TYPE) - 2


def cluster_model_configmap_key(name: str) -> str:
    """`clusterbasemodel.<name>` (shortened only beyond 253 characters)."""
    budget = CONFIGMAP_KEY_MAX - len(CLUSTER_TYPE) - 1
    return f"{CLUSTER_TYPE}.{shorten_with_hash(name, budget)}"


def namespaced_model_configmap_key(namespace: str, name: str) -> str:
    """`<namespace>.basemodel.<name>` (shortened only beyond 253 characters)."""
    budget = CONFIGMAP_KEY_MAX - len(NAMESPACED_TYPE) - 2
    ns, short = _split_budget(namespace, name, budget)
    return f"{ns}.{NAMESPACED_TYPE}.{short}"


def model_configmap_key(kind: ModelKind, name: str, namespace: str | None = None) -> str:
    """The data key of this model in each node's model-agent ConfigMap."""
    if kind is ModelKind.CLUSTER:
        return cluster_model_configmap_key(name)
    if not namespace:
        raise ValueError(f"a BaseModel needs a namespace (model {name!r})")
    return namespaced_model_configmap_key(namespace, name)


def parse_configmap_key(key: str) -> tuple[ModelKind, str | None, str] | None:
    """A ConfigMap data key → (kind, namespace, name), or None when it is no model key.

    Mirrors OME's reading: a `clusterbasemodel.` prefix first, else split at the first
    `.basemodel.`. Names read back from shortened keys are the shortened forms.
    """
    cluster_prefix = f"{CLUSTER_TYPE}."
    if key.startswith(cluster_prefix):
        name = key[len(cluster_prefix) :]
        return (ModelKind.CLUSTER, None, name) if name else None
    namespace, sep, name = key.partition(f".{NAMESPACED_TYPE}.")
    if sep and namespace and name:
        return ModelKind.NAMESPACED, namespace, name
    return None
