"""`kubectl ome-pvc status [MODEL]`: every model's transit state, per node, and why it is stuck.

Without MODEL: an overview of the ClusterBaseModels and the namespace's BaseModels (`-A`: all
namespaces; `--kind` keeps one kind; `-l` filters by label). With MODEL: the detail of one model.
Which model a name means: with `-n NS` given, the BaseModel NS/MODEL if it exists, else the
ClusterBaseModel MODEL; without `-n`, the ClusterBaseModel, else the BaseModel of that name in the
context's namespace (`--kind` restricts the search to one kind).

`-o json|yaml` print `core.status`'s documented schema (kind ModelStatusList), plus one key per
item, `metadataJobs` (schema in `core.metadata_jobs`).

`--watch` follows the model kinds and the agent ConfigMaps with the API's watch (no polling):
on a terminal the whole view is redrawn; otherwise the overview prints the rows that changed
(`<deleted>` for models that went away) and the detail view prints itself again. A stream the
server closes is resumed from the last resourceVersion; after 410 Gone the kind is listed again.

Least privilege: get/list/watch on ClusterBaseModels and BaseModels is enough; every other source
that is forbidden becomes one warning and is left out. `kubectl ome-pvc rbac` prints the roles
that give the full output.

Exit status: 0 (also when sources were not readable: each is one warning on stderr); 1 with
`--fail-if-not-ready` when a listed model is not Ready, for an unknown model, or when OME is
not installed.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import click

from kubectl_omepvc import printers
from kubectl_omepvc.commands import common
from kubectl_omepvc.core import selectors
from kubectl_omepvc.options import (
    ConnectionOptions,
    Output,
    all_namespaces_option,
    connection_options,
    no_headers_option,
    output_option,
)

if TYPE_CHECKING:
    from kubectl_omepvc.api import gather
    from kubectl_omepvc.api.client import Client
    from kubectl_omepvc.core.metadata_jobs import MetadataSources
    from kubectl_omepvc.core.status import ModelStatus, StatusReport

Obj = Mapping[str, Any]

MAX_FOOTER_NOTES = 20
CLEAR_SCREEN = "\033[H\033[2J"
KINDS = ("cluster", "namespaced")
PLAIN = printers.Palette()


# -- rendering (pure: a report in, text out) --------------------------------------------------


def paint_state(palette: printers.Palette, state: str) -> str:
    """Colour a model or node state by meaning (plain text when the palette is off)."""
    if state == "Ready":
        return palette.good(state)
    if state in ("Failed", "unknown"):
        return palette.bad(state)
    if state in ("-", ""):
        return state
    return palette.warn(state)


def overview_table(
    models: Sequence[ModelStatus],
    *,
    wide: bool = False,
    no_headers: bool = False,
    palette: printers.Palette = PLAIN,
) -> str:
    from kubectl_omepvc.core import status

    rows = []
    for m in models:
        row = status.overview_row(m, wide)
        row[3] = paint_state(palette, row[3])
        rows.append(row)
    return printers.table(status.overview_headers(wide), rows, no_headers)


def footer_notes(models: Iterable[ModelStatus], limit: int = MAX_FOOTER_NOTES) -> list[str]:
    """One line per model that is not Ready, at most `limit` of them plus a count of the rest."""
    from kubectl_omepvc.core import status

    notes = [n for m in models if (n := status.footer_note(m)) is not None]
    if len(notes) <= limit:
        return notes
    rest = len(notes) - limit
    return [
        *notes[:limit],
        f"... and {rest} more model(s) not Ready (-o wide shows each REASON; "
        "`kubectl ome-pvc status MODEL` explains one)",
    ]


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def _or_dash(value: Any) -> str:
    return "-" if value in (None, "", [], ()) else str(value)


def _terms_text(terms: Any) -> str:
    return selectors.describe_terms(terms, empty_term="(any node)")


def _selector_text(selector: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(selector.items())) or "-"


VALUE_COLUMN = 17  # where values start in the detail view, at every indentation


def _field_lines(pairs: Sequence[tuple[str, str]], indent: str = "") -> list[str]:
    width = VALUE_COLUMN - len(indent)
    return [f"{indent}{(k + ':').ljust(width)}{v}" for k, v in pairs]


def _indent(text: str, prefix: str = "  ") -> list[str]:
    return [prefix + line if line else line for line in text.splitlines()]


def _node_table(m: ModelStatus, palette: printers.Palette) -> str:
    rows = []
    for row in m.nodes:
        p = row.progress
        name = row.node + (" (no such Node)" if row.exists is False else "")
        if row.selected is False and row.exists:
            name += " (not selected)"
        bytes_ = files = speed = eta = "-"
        if p is not None:
            if p.total_bytes is not None:
                done = printers.human_bytes(p.completed_bytes)
                bytes_ = f"{done}/{printers.human_bytes(p.total_bytes)}"
            if p.total_files is not None:
                files = f"{_or_dash(p.completed_files)}/{p.total_files}"
            if p.speed_bytes_per_sec:
                speed = f"{printers.human_bytes(p.speed_bytes_per_sec)}/s"
            if p.eta_seconds is not None:
                eta = printers.human_age(p.eta_seconds)
        rows.append(
            [
                name,
                paint_state(palette, row.state.value),
                _or_dash(row.label),
                "-" if row.config_map is None else row.config_map.value,
                _or_dash(p.phase if p else None),
                bytes_,
                files,
                speed,
                eta,
                "-"
                if row.last_update_age_seconds is None
                else printers.human_age(row.last_update_age_seconds),
            ]
        )
    headers = ("NODE", "STATE", "LABEL", "CONFIGMAP", "PHASE", "BYTES", "FILES", "SPEED")
    return printers.table((*headers, "ETA", "UPDATED"), rows)


def _claim_lines(m: ModelStatus) -> list[str]:
    claim = m.claim
    if claim is None:
        return []
    pairs: list[tuple[str, str]] = [("URI", _or_dash(m.uri))]
    if claim.error:
        pairs.append(("Error", f"OME rejects it: {claim.error}"))
    if claim.uri is not None:
        pairs += [
            ("Claim", f"{claim.namespace or '?'}/{claim.uri.claim}"),
            ("Sub-path", claim.uri.sub_path),
        ]
    pairs += [(f"Problem {i}", p) for i, p in enumerate(claim.strict_problems, 1)]
    if claim.uri is not None:
        exists = "unknown (claims not readable)" if claim.exists is None else _yes_no(claim.exists)
        pairs.append(("Exists", exists))
    if claim.exists:
        affinity = claim.volume_node_affinity
        terms = (affinity or {}).get("required", {}).get("nodeSelectorTerms") if affinity else None
        pairs += [
            ("Phase", _or_dash(claim.phase)),
            ("Capacity", _or_dash(claim.capacity)),
            ("Access modes", ", ".join(claim.access_modes) or "-"),
            ("Storage class", _or_dash(claim.storage_class)),
            ("Volume", _or_dash(claim.volume)),
        ]
        if claim.volume:
            pairs.append(("Volume nodes", _terms_text(terms) if terms else "any node"))
    return ["Claim:", *_field_lines(pairs, "  ")]


def _conditions_lines(m: ModelStatus, palette: printers.Palette) -> list[str]:
    if m.conditions is None:
        return []
    if not m.conditions:
        return ["Conditions:", "  none yet"]
    rows = [
        [
            c.type,
            palette.good(c.status) if c.status == "True" else palette.warn(c.status),
            _or_dash(c.reason),
            printers.human_age(c.age_seconds) if c.age_seconds is not None else "-",
            _or_dash(c.message),
        ]
        for c in m.conditions
    ]
    table = printers.table(("TYPE", "STATUS", "REASON", "AGE", "MESSAGE"), rows)
    return ["Conditions:", *_indent(table)]


def _job_lines(jobs: list[dict[str, Any]] | None, meta: dict[str, Any] | None) -> list[str]:
    if jobs is None:
        return []
    lines = ["Metadata Jobs:"] + ([] if jobs else ["  none found"])
    for job in jobs:
        why = ": ".join(p for p in (job["reason"], job["message"]) if p)
        age = "" if job["ageSeconds"] is None else f", {printers.human_age(job['ageSeconds'])} old"
        lines.append(
            f"  {job['namespace']}/{job['name']}: {job['state']}"
            + (f" ({why})" if why else "")
            + age
        )
        for pod in job["pods"] or ():
            said = ": ".join(p for p in (pod["reason"], pod["message"]) if p)
            lines.append(
                f"    pod {pod['name']}: {pod['phase'] or '?'}" + (f" ({said})" if said else "")
            )
    if meta is not None:
        found = meta["entryStatus"] or "no entry" if meta["found"] else "not written yet"
        lines.append(f"  status ConfigMap {meta['configMap']}: {found}")
        if meta["lastError"]:
            lines.append(f"    last error: {meta['lastError']}")
    return lines


def _services_lines(m: ModelStatus) -> list[str]:
    if m.services is None:
        return ["InferenceServices:", "  unknown (not readable)"]
    if not m.services:
        return ["InferenceServices:", "  none use this model"]
    rows = []
    for service in m.services:
        if service.workloads is None:
            rows.append([service.namespace, service.name, "?", "?", "?", "workloads not readable"])
            continue
        if not service.workloads:
            rows.append([service.namespace, service.name, "-", "-", "-", "no workload yet"])
        for w in service.workloads:
            ready = f"{w.ready_replicas or 0}/{'?' if w.replicas is None else w.replicas}"
            rows.append([service.namespace, service.name, w.name, w.kind, ready, w.description])
    headers = ("NAMESPACE", "INFERENCESERVICE", "WORKLOAD", "KIND", "READY", "MODEL VOLUME")
    return ["InferenceServices:", *_indent(printers.table(headers, rows))]


def _diagnosis_lines(m: ModelStatus, palette: printers.Palette) -> list[str]:
    if not m.diagnoses:
        return ["Diagnoses:", "  none"]
    lines = ["Diagnoses:"]
    for d in m.diagnoses:
        level = d.severity.value
        tag = {"error": palette.bad, "warning": palette.warn}.get(level, palette.dim)(
            level.ljust(7)
        )
        lines.append(f"  {tag}  {d.code}: {d.message}")
        if d.next:
            lines.append(f"           next: {d.next}")
    return lines


def detail_text(
    m: ModelStatus,
    *,
    jobs: list[dict[str, Any]] | None = None,
    meta: dict[str, Any] | None = None,
    palette: printers.Palette = PLAIN,
) -> str:
    """The detail view of one model, kubectl-describe style."""
    state = paint_state(palette, m.state or "not reported yet")
    head: list[tuple[str, str]] = [
        ("Name", m.name),
        ("Kind", m.kind.value),
    ]
    if m.namespace:
        head.append(("Namespace", m.namespace))
    head += [("State", state), ("Age", printers.human_age(m.age_seconds))]
    if m.disabled:
        head.append(("Disabled", "yes (spec.disabled)"))
    lines = _field_lines(head)
    storage = [
        ("URI", _or_dash(m.uri)),
        ("Scheme", m.scheme.value),
        ("Path", _or_dash(m.path)),
        ("Key", _or_dash(m.key)),
        ("Node selector", _selector_text(m.node_selector)),
        (
            "Node affinity",
            _terms_text(
                (m.node_affinity or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution", {})
                .get("nodeSelectorTerms")
            )
            if m.node_affinity
            else "-",
        ),
    ]
    lines += ["Storage:", *_field_lines(storage, "  ")]
    label = m.label_key + (" (shortened by OME: the name is long)" if m.label_key_hashed else "")
    targeted = "?" if m.targeted is None else str(m.targeted)
    summary = f"{m.ready}/{targeted} Ready, {len(m.failed_nodes)} Failed, "
    summary += f"{len(m.updating_nodes)} Updating"
    if m.progress_percent is not None:
        summary += f" ({m.progress_percent:.0f}% of bytes)"
    if m.scheme.value == "pvc" and not m.targeted and not m.ready:
        summary = "none: OME's agent downloads nothing for a pvc:// model"
    reported = (
        f"nodesReady [{', '.join(m.reported_ready)}], nodesFailed [{', '.join(m.reported_failed)}]"
    )
    lines += _field_lines([("Node label", label), ("Nodes", summary), ("OME reports", reported)])
    if m.nodes:
        lines += ["", *_node_table(m, palette).splitlines()]
    for section in (
        _claim_lines(m),
        _conditions_lines(m, palette),
        _job_lines(jobs, meta),
        _services_lines(m),
        _diagnosis_lines(m, palette),
    ):
        if section:
            lines += ["", *section]
    return "\n".join(lines)


# -- the command ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class View:
    """How the user asked to see the result."""

    detail: bool
    output: str | None
    no_headers: bool
    palette: printers.Palette
    tty: bool

    @property
    def machine(self) -> bool:
        return self.output in (Output.JSON.value, Output.YAML.value)

    @property
    def keep_node_rows(self) -> bool:
        # The overview table never shows node rows: drop them once counted (memory O(models)).
        return self.detail or self.machine


def render(report: StatusReport, view: View, meta: MetadataSources | None, now: datetime) -> str:
    """The whole output for stdout (empty string: nothing to print)."""
    from kubectl_omepvc.core import metadata_jobs, status

    if view.output == Output.JSON.value:
        return printers.to_json(metadata_jobs.report_document(report, meta, now))
    if view.output == Output.YAML.value:
        return printers.to_yaml(metadata_jobs.report_document(report, meta, now))

    if view.output == Output.NAME.value:
        return "\n".join(status.resource_name(m) for m in report.models)
    if not report.models:
        return ""
    if view.detail:
        enriched, facts = metadata_jobs.with_metadata(report, meta, now)
        return "\n\n".join(
            detail_text(m, jobs=jobs, meta=status_cm, palette=view.palette)
            for m, (jobs, status_cm) in zip(enriched.models, facts, strict=True)
        )
    return overview_table(
        report.models,
        wide=view.output == Output.WIDE.value,
        no_headers=view.no_headers,
        palette=view.palette,
    )


def empty_sentence(kind: str | None, namespace: str | None, selector: str | None) -> str:
    """`No models found (...)`, naming where we looked."""
    places = []
    if kind != "namespaced":
        places.append("no ClusterBaseModels")
    if kind != "cluster":
        where = f"in namespace {namespace}" if namespace else "in any namespace"
        places.append(f"no BaseModels {where}")
    matching = f" matching {selector}" if selector else ""
    return f"No models found{matching} ({', '.join(places)})."


def _build(sources: gather.Sources, view: View, now: datetime) -> StatusReport:
    from kubectl_omepvc.core import status

    return status.build_statuses(
        sources.models, now=now, keep_node_rows=view.keep_node_rows, **sources.build_kwargs()
    )


def _build_streamed(
    stream: gather.OverviewStream, view: View, now: datetime
) -> tuple[StatusReport, gather.Sources]:
    """Build each model as its page arrives (the next pages load meanwhile), then the few
    that wait for reads depending on the models (claims, workloads; see StatusBuilder)."""
    from kubectl_omepvc.core import status

    early = stream.sources
    builder = status.StatusBuilder(
        configmaps=early.configmaps,
        nodes=early.nodes,
        inference_services=early.inference_services,
        agent_daemonset=early.agent_daemonset,
        base_models=stream.base_models,
        now=now,
        keep_node_rows=view.keep_node_rows,
        late=True,
    )
    for model in stream.models():
        builder.add(model)
    sources = stream.finish()
    builder.complete(
        workloads=sources.workloads,
        pvcs=sources.pvcs,
        pvs=sources.pvs,
        native_pvc=sources.native_pvc,
    )
    return builder.report(), sources


def _now() -> datetime:
    return datetime.now(timezone.utc)


@click.command("status")
@click.argument("model", required=False)
@click.option("-l", "--selector", help="Only models with these labels (e.g. team=nlp).")
@all_namespaces_option
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    default=None,
    help="Only ClusterBaseModels (cluster) or only BaseModels (namespaced).",
)
@output_option(Output.WIDE, Output.JSON, Output.YAML, Output.NAME)
@no_headers_option
@click.option("-w", "--watch", is_flag=True, help="Show again whenever a model changes.")
@click.option(
    "--fail-if-not-ready",
    is_flag=True,
    help="Exit 1 when any listed model is not Ready (for scripts and CI gates).",
)
@click.option(
    "--watch-timeout",
    type=click.IntRange(min=1),
    default=300,
    hidden=True,
    help="Seconds the server keeps each watch open before the plugin re-watches.",
)
@connection_options
@click.pass_obj
def command(
    opts: ConnectionOptions,
    model: str | None,
    selector: str | None,
    all_namespaces: bool,
    kind: str | None,
    output: str | None,
    no_headers: bool,
    watch: bool,
    fail_if_not_ready: bool,
    watch_timeout: int,
) -> None:
    """Show every model's transit state, per node, and why it is stuck.

    Without MODEL: ClusterBaseModels and the namespace's BaseModels, one line each, with notes
    on stderr for those not Ready. With MODEL: storage, per-node progress, the claim of a pvc://
    model, the InferenceServices using it, and diagnoses with the next command to run.
    With -n NS, MODEL is the BaseModel in NS if there is one, else the ClusterBaseModel;
    without -n, the ClusterBaseModel, else the BaseModel in the context's namespace.

    Needs only get/list/watch on ClusterBaseModels and BaseModels: any other source it may not
    read is left out with one warning.
    """
    if model and (selector or all_namespaces):
        raise click.UsageError("a MODEL name cannot be combined with -l/--selector or -A")
    if watch and fail_if_not_ready:
        raise click.UsageError("--watch runs until interrupted: drop --fail-if-not-ready")
    from kubectl_omepvc.api import gather

    client = common.connect(opts)
    namespace = None if all_namespaces else client.namespace
    tty = bool(getattr(sys.stdout, "isatty", None) and sys.stdout.isatty())
    view = View(bool(model), output, no_headers, printers.palette_for(sys.stdout), tty)
    if model or watch:
        if model:
            lookup = gather.ModelLookup(model, client.namespace, opts.namespace is not None, kind)
            sources = gather.gather_model(client, lookup)
        else:  # --watch keeps every model, to update them as they change
            sources = gather.gather_overview(
                client, kind=kind, namespace=namespace, label_selector=selector
            )
        now = _now()
        report = _build(sources, view, now)
    else:
        with gather.stream_overview(
            client, kind=kind, namespace=namespace, label_selector=selector, slim_models=False
        ) as stream:
            now = _now()
            report, sources = _build_streamed(stream, view, now)
    # Nothing is printed before every read is done: the warnings come first, as they did
    # when the reads ended before the build began.
    for warning in sources.warnings:
        common.note(f"Warning: {warning}")
    _show(report, view, sources.metadata, now, empty=None if model else (kind, namespace, selector))
    if watch:
        _watch(client, sources, view, watch_timeout, report)
        return
    if fail_if_not_ready and any(not m.is_ready for m in report.models):
        raise click.exceptions.Exit(1)


def _show(
    report: StatusReport,
    view: View,
    meta: MetadataSources | None,
    now: datetime,
    empty: tuple[str | None, str | None, str | None] | None,
) -> None:
    for warning in report.warnings:
        common.note(f"Warning: {warning}")
    text = render(report, view, meta, now)
    if text:
        common.emit(text)
    if not report.models and empty is not None and not view.machine:
        common.note(empty_sentence(*empty))
    if not view.detail and not view.machine and view.output != Output.NAME.value:
        for note in footer_notes(report.models):
            common.note(note)


# -- --watch ----------------------------------------------------------------------------------


def _watch(
    client: Client, sources: gather.Sources, view: View, timeout: int, first: StatusReport
) -> None:
    """Re-render whenever a watched model (or agent ConfigMap) changes, until interrupted."""
    from kubectl_omepvc.api import gather
    from kubectl_omepvc.core import status

    state = gather.WatchState.start(sources)
    log = common.note if client.verbose else None
    changes = gather.start_watches(client, sources.watches, timeout_seconds=timeout, log=log)
    wide = view.output == Output.WIDE.value
    previous: dict[tuple[int, str, str], list[str]] = {}
    if not view.detail and view.output in (None, Output.WIDE.value):
        previous = {status.row_key(m): status.overview_row(m, wide) for m in first.models}
    try:
        while True:
            batch = gather.settle(changes, changes.get())
            for change in batch:
                warning = state.apply(change)
                if warning:
                    common.note(f"Warning: {warning}")
            now = _now()
            report = _build(state.sources(sources), view, now)
            if view.tty:
                common.emit(CLEAR_SCREEN + render(report, view, sources.metadata, now))
                continue
            if view.detail or view.machine or view.output == Output.NAME.value:
                if not report.models and view.detail:
                    common.emit("\nthe model was deleted")
                    continue
                common.emit("\n" + render(report, view, sources.metadata, now))
                continue
            current = {status.row_key(m): status.overview_row(m, wide) for m in report.models}
            rows = status.changed_rows(previous, current)
            previous = current
            if rows:
                painted = [[*r[:3], paint_state(view.palette, r[3]), *r[4:]] for r in rows]
                common.emit(printers.table(status.overview_headers(wide), painted, True))
                touched = {(r[0], r[1]) for r in rows}
                for note in footer_notes(
                    m for m in report.models if (m.name, m.namespace or "-") in touched
                ):
                    common.note(note)
    except KeyboardInterrupt:
        return
