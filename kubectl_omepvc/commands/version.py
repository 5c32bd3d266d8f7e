"""`kubectl ome-pvc version`: the plugin's version and what the cluster offers it."""

from __future__ import annotations

import sys

import click

from kubectl_omepvc import __version__, errors, printers
from kubectl_omepvc.commands import common
from kubectl_omepvc.core.capabilities import Capabilities
from kubectl_omepvc.options import ConnectionOptions, Output, connection_options, output_option


def _client_info() -> dict[str, str]:
    return {"version": __version__, "python": ".".join(map(str, sys.version_info[:3]))}


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def render_text(info: dict[str, object]) -> str:
    client = info["client"]
    assert isinstance(client, dict)
    lines = [f"Plugin Version: v{client['version']} (Python {client['python']})"]
    server = info.get("server")
    if isinstance(server, dict):
        ome = server["ome"]
        missing = ", ".join(k for k, v in ome["resources"].items() if not v) or "none"
        crds = "served" if ome["served"] else f"not served ({missing} missing)"
        lines += [
            f"Server Version: {server['serverVersion'] or 'unknown'}",
            f"OME CRDs (ome.io/v1beta1): {crds}",
            f"OME native pvc:// models: {_yes_no(ome['nativePVC'])}"
            + (f" ({ome['generationBasis']})" if ome.get("generationBasis") else ""),
            f"LeaderWorkerSet: {'served' if server['leaderWorkerSet'] else 'not served'}",
            f"MutatingAdmissionPolicy: {server['mutatingAdmissionPolicy'] or 'none'}",
        ]
        for route in server.get("routes") or []:
            if route["available"]:
                state = "default" if route["default"] else "available"
                text = f"{state}: {route['summary']}"
            else:
                text = f"not possible: {route['reason']}"
            lines.append(f"Route {route['name']}: {text}")
        lines += [f"Note: {n}" for n in server["notes"]]
    return "\n".join(lines)


def routes(caps: Capabilities) -> list[dict[str, object]]:
    """Each way `patch` can switch an isvc here: possible or why not, and which it picks."""
    from kubectl_omepvc.strategies import Declined, registry, select

    try:
        default: str | None = select(caps).name
    except Declined:
        default = None
    out: list[dict[str, object]] = []
    for name, strategy in registry().items():
        reason = strategy.unavailable(caps)
        out.append(
            {
                "name": name,
                "available": reason is None,
                "default": name == default,
                "reason": reason,
                "summary": strategy.summary,
            }
        )
    return out


@click.command("version")
@click.option("--client", "client_only", is_flag=True, help="Only the plugin's own version.")
@output_option(Output.JSON, Output.YAML)
@connection_options
@click.pass_obj
def command(opts: ConnectionOptions, client_only: bool, output: str | None) -> None:
    """Show the plugin version, the server version and OME capabilities.

    Without a reachable cluster the client part is printed and the command exits 1 (0 with
    --client).
    """
    info: dict[str, object] = {"client": _client_info()}
    failure: errors.PluginError | None = None
    if not client_only:
        from kubectl_omepvc.api import probe

        try:
            caps = probe.probe(common.connect(opts))
            info["server"] = {**caps.as_dict(), "routes": routes(caps)}
        except errors.PluginError as exc:
            failure = exc
    if output == Output.JSON.value:
        common.emit(printers.to_json(info))
    elif output == Output.YAML.value:
        common.emit(printers.to_yaml(info))
    else:
        common.emit(render_text(info))
    if failure is not None:
        raise errors.PluginError(f"server version unavailable: {failure.message}")
