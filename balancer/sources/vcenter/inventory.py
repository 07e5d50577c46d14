"""Bulk reads through the PropertyCollector: a fixed number of SOAP requests however many objects.

Never read properties as attributes on managed objects in loops: each attribute is a round trip,
and on the simulator reading an unset property can break the connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from ...errors import SourceError
from ...errors.limits import CONTROL

_CONTROL = re.compile(f"[{CONTROL}]")


def _vmodl():
    from pyVmomi import vim, vmodl

    return vim, vmodl


def moid(obj: Any) -> str:
    """The managed-object id (``vm-42``) of a pyvmomi managed object."""
    return obj._GetMoId()


def retrieve(content: Any, specs: list[Any]) -> list[Any]:
    """RetrievePropertiesEx, following ContinueRetrievePropertiesEx tokens to the end."""
    _, vmodl = _vmodl()
    pc = content.propertyCollector
    result = pc.RetrievePropertiesEx(specSet=specs, options=vmodl.query.PropertyCollector.RetrieveOptions())
    objects: list[Any] = []
    while result is not None:
        objects.extend(result.objects or [])
        if not result.token:
            break
        result = pc.ContinueRetrievePropertiesEx(token=result.token)
    return objects


def vc_name(value: Any) -> Any:
    """A name as vCenter gave it, with each control character written as vCenter writes "/" in a name
    (``%2f``): ``%`` and two hex digits (``%u`` and four past U+00FF). vCenter already gives "%" as
    ``%25``, so the result is unambiguous, one line, and the same however often it is read: the snapshot
    refuses control characters in names, and the executor finds objects by these same names."""
    if not isinstance(value, str) or not _CONTROL.search(value):
        return value
    return _CONTROL.sub(lambda m: f"%{ord(m.group()):02x}" if ord(m.group()) < 256 else f"%u{ord(m.group()):04x}", value)


def props(oc: Any) -> dict[str, Any]:
    """ObjectContent -> {property path: value}; properties vCenter could not read are absent. A ``name``
    is read through ``vc_name``."""
    return {p.name: vc_name(p.val) if p.name == "name" else p.val for p in (oc.propSet or [])}


def view_spec(view: Any, paths_by_type: dict[Any, list[str]], extra: Iterable[tuple[Any, Any, list[str]]] = (),
              follow: Iterable[tuple[Any, str, Any, list[str]]] = ()) -> Any:
    """A PropertyFilterSpec reading ``paths_by_type`` of every object in a ContainerView,
    plus ``extra`` (object, type, paths) read directly, plus ``follow`` (from type, reference path,
    to type, paths): the objects a reference property of an ``extra`` object points to, and the
    objects their ``parent`` is (read when their type is among ``paths_by_type`` or ``follow``)."""
    _, vmodl = _vmodl()
    PC = vmodl.query.PropertyCollector
    traversal = PC.TraversalSpec(name="view", type=type(view), path="view", skip=False)
    object_set = [PC.ObjectSpec(obj=view, skip=True, selectSet=[traversal])]
    prop_set = [PC.PropertySpec(type=t, pathSet=paths, all=False) for t, paths in paths_by_type.items()]
    hops = []
    for from_type, path, to_type, paths in follow:
        parent = PC.TraversalSpec(name=f"{to_type.__name__}.parent", type=to_type, path="parent", skip=False)
        hops.append(PC.TraversalSpec(name=f"{from_type.__name__}.{path}", type=from_type, path=path, skip=False,
                                     selectSet=[parent]))
        prop_set.append(PC.PropertySpec(type=to_type, pathSet=paths, all=False))
    for obj, typ, paths in extra:
        object_set.append(PC.ObjectSpec(obj=obj, skip=False, selectSet=[h for h in hops if h.type == typ]))
        prop_set.append(PC.PropertySpec(type=typ, pathSet=paths, all=False))
    return PC.FilterSpec(objectSet=object_set, propSet=prop_set)


def objects_spec(items: Iterable[tuple[Any, Any, list[str]]]) -> Any:
    """A PropertyFilterSpec reading the given paths of the given objects (no traversal)."""
    _, vmodl = _vmodl()
    PC = vmodl.query.PropertyCollector
    object_set = []
    prop_set: dict[Any, set[str]] = {}
    for obj, typ, paths in items:
        object_set.append(PC.ObjectSpec(obj=obj, skip=False))
        prop_set.setdefault(typ, set()).update(paths)
    return PC.FilterSpec(
        objectSet=object_set,
        propSet=[PC.PropertySpec(type=t, pathSet=sorted(p), all=False) for t, p in prop_set.items()],
    )


def read_view(content: Any, container: Any, types: list[Any], paths_by_type: dict[Any, list[str]],
              extra: Iterable[tuple[Any, Any, list[str]]] = (),
              follow: Iterable[tuple[Any, str, Any, list[str]]] = ()) -> list[Any]:
    """Create a ContainerView, read it in one RetrievePropertiesEx (plus continuations), destroy it."""
    view = content.viewManager.CreateContainerView(container, types, True)
    try:
        return retrieve(content, [view_spec(view, paths_by_type, extra, follow)])
    finally:
        try:
            view.DestroyView()
        except Exception:  # noqa: BLE001 - the view dies with the session anyway
            pass


@dataclass
class ClusterRefs:
    """Managed-object references of one cluster's objects, by name."""

    name: str
    cluster: Any
    pool: Any
    hosts: dict[str, Any] = field(default_factory=dict)
    vms: dict[str, Any] = field(default_factory=dict)
    duplicate_vms: dict[str, list[str]] = field(default_factory=dict)
    datastores: dict[str, Any] = field(default_factory=dict)
    pools: dict[str, Any] = field(default_factory=dict)  # resource pools below the root, by the snapshot's names


def find_cluster(content: Any, name: str, where: str) -> Any:
    """The ClusterComputeResource named ``name`` (SourceError when missing or ambiguous)."""
    vim, _ = _vmodl()
    found = read_view(content, content.rootFolder, [vim.ClusterComputeResource],
                      {vim.ClusterComputeResource: ["name"]})
    matches = [oc.obj for oc in found if props(oc).get("name") == name]
    if not matches:
        names = sorted(str(props(oc).get("name")) for oc in found)
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        raise SourceError(f"{where}: cluster {name!r} not found" + (f" (clusters: {shown})" if names else " (no clusters)"))
    if len(matches) > 1:
        ids = ", ".join(sorted(moid(m) for m in matches))
        raise SourceError(f"{where}: {len(matches)} clusters are named {name!r} ({ids}); cluster names must be unique")
    return matches[0]


def duplicates(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """{name: [moid, ...]} for names held by more than one object."""
    seen: dict[str, list[str]] = {}
    for name, mid in pairs:
        seen.setdefault(name, []).append(mid)
    return {n: sorted(ids) for n, ids in seen.items() if len(ids) > 1}


def duplicate_error(where: str, cluster: str, kind: str, dups: dict[str, list[str]]) -> SourceError:
    name, ids = next(iter(sorted(dups.items())))
    more = f" (and {len(dups) - 1} more duplicate names)" if len(dups) > 1 else ""
    return SourceError(
        f"{where}: cluster {cluster}: {len(ids)} {kind}s are named {name!r} ({', '.join(ids)}){more}; "
        f"{kind} names must be unique"
    )
