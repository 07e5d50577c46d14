"""Hosts' health from vCenter's health update providers (Proactive HA's HealthUpdateManager).

A provider (a hardware vendor's plug-in) registers with vCenter, declares the components it watches
(``HealthUpdateInfo``: id, component type such as fan, power, memory, storage, network, and a description)
and posts ``HealthUpdate``s: for one host and one component, a status (green, yellow, red; gray: unknown)
and the remediation it suggests. The balancer reads them each collection:

- the providers: the cluster's Proactive HA providers (``configurationEx.infraUpdateHaConfig.providers``)
  when it names any, else every provider vCenter lists (``QueryProviderList``);
- per provider ``QueryHealthUpdateInfos`` (the component words) and ``QueryHealthUpdates``;
- ``host_health``, pure: the latest update of each (host, component) counts; a host's state is its worst
  component's: red -> severe, yellow -> moderate, green -> healthy; gray and unknown statuses say nothing.
  A host no provider reports on has no health (None): the config's or the HTTP API's value stands.

vCenter without a HealthUpdateManager (older versions, the simulator vcsim 0.24: MethodNotFound) or
without providers gives no health; the first answer saying the manager is missing is remembered and not
asked again. A provider that fails is logged and left out; the collection goes on.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from .inventory import moid

log = logging.getLogger("balancer.vcenter")

STATUS = {"green": "healthy", "yellow": "moderate", "red": "severe"}
RANK = {"healthy": 0, "moderate": 1, "severe": 2}
REASON_MAX = 300  # characters of a host's health reason


def host_health(updates: Iterable[tuple[str, str, str, str]]) -> dict[str, tuple[str, str]]:
    """Host -> (health, reason) from health updates as (host, component, status, words) in the order
    reported: the latest per (host, component) counts; the worst component decides (red: severe, yellow:
    moderate, green: healthy; gray or any other status: not known); the reason names the components at that
    state (empty when healthy). A host with no known status is left out."""
    latest: dict[tuple[str, str], tuple[str, str]] = {}
    for host, component, status, words in updates:
        latest[(host, component)] = (str(status or "").lower(), " ".join(str(words or component).split()))
    per_host: dict[str, list[tuple[str, str]]] = {}
    for (host, _), (status, words) in latest.items():
        if status in STATUS:
            per_host.setdefault(host, []).append((STATUS[status], words))
    out = {}
    for host, states in per_host.items():
        worst = max((s for s, _ in states), key=RANK.__getitem__)
        reason = "" if worst == "healthy" else "; ".join(sorted({w for s, w in states if s == worst}))
        out[host] = (worst, reason[:REASON_MAX])
    return out


def _words(info: Any, remediation: str) -> str:
    kind = str(getattr(info, "componentType", "") or "")
    text = str(getattr(info, "description", "") or "")
    words = f"{kind}: {text}" if kind and text else kind or text
    return f"{words} ({remediation})" if remediation and words else words or remediation


class HealthReader:
    """Reads the hosts' health from vCenter's HealthUpdateManager, guarded (see the module's words)."""

    def __init__(self, conn: Any):
        self.conn = conn
        self.absent = False  # vCenter said it has no HealthUpdateManager: not asked again

    def read(self, cluster_config: Any, hosts: set[str]) -> dict[str, tuple[str, str]]:
        """Host moid -> (health, reason) for the ``hosts`` (moids) some provider reports on."""
        from pyVmomi import vim, vmodl

        manager = getattr(self.conn.content, "healthUpdateManager", None) if not self.absent else None
        if manager is None:
            return {}
        try:
            providers = [str(p) for p in (manager.QueryProviderList() or [])]
        except vim.fault.NotAuthenticated:
            raise
        except (vmodl.fault.MethodNotFound, vmodl.fault.ManagedObjectNotFound, vmodl.fault.NotSupported) as exc:
            self.absent = True
            log.info("vCenter has no health update manager (%s): host health comes from the config and the API",
                     type(exc).__name__)
            return {}
        except Exception as exc:  # noqa: BLE001 - no health this time; the collection goes on
            log.warning("reading the health update providers failed (%s); host health not read", type(exc).__name__)
            return {}
        ha = getattr(cluster_config, "infraUpdateHaConfig", None)
        chosen = [str(p) for p in (getattr(ha, "providers", None) or [])]
        if chosen:
            providers = [p for p in providers if p in chosen]
        updates: list[tuple[str, str, str, str]] = []
        for provider in providers:
            try:
                infos = {str(i.id): i for i in (manager.QueryHealthUpdateInfos(providerId=provider) or [])}
                found = manager.QueryHealthUpdates(providerId=provider) or []
            except vim.fault.NotAuthenticated:
                raise
            except Exception as exc:  # noqa: BLE001 - this provider left out
                log.warning("health update provider %s could not be read (%s)", provider, type(exc).__name__)
                continue
            for u in found:
                entity = getattr(u, "entity", None)
                if entity is None or moid(entity) not in hosts:
                    continue
                info_id = str(getattr(u, "healthUpdateInfoId", "") or "")
                words = _words(infos.get(info_id), str(getattr(u, "remediation", "") or ""))
                updates.append((moid(entity), f"{provider}/{info_id}", str(getattr(u, "status", "") or ""), words))
        return host_health(updates)


__all__ = ["HealthReader", "host_health"]
