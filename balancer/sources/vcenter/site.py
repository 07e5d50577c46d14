"""Where a VM from another cluster lands: the target cluster's managed-object references, and for
a move from another vCenter, the service locator that lets the source vCenter log in to this one.

The locator carries this vCenter's URL, instance UUID, the balancer's user and password for it
(from its own ``password_env`` / ``password_file``) and, over https, the SHA-1 thumbprint of its
certificate as seen on a connection made with this config's TLS settings (so verified unless
``verify_tls`` is off). The password is never logged, shown or written out: ``TargetSite``'s
repr leaves it out.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

from ...config import VCenterConfig
from ...errors import SourceError
from .connection import Connection, read_password, ssl_context
from .inventory import ClusterRefs, moid, objects_spec, props, retrieve


@dataclass(frozen=True)
class TargetSite:
    """The target of a cross-cluster move, as RelocateSpec needs it (morefs of the target's vCenter)."""

    cluster: str
    host_name: str
    host_id: str
    pool_id: str
    folder_id: str  # the target datacenter's VM folder
    datastore_name: str | None
    datastore_id: str | None
    url: str  # the target vCenter
    instance_uuid: str
    user: str
    password: str = field(repr=False)
    thumbprint: str | None = None  # SHA-1 of the target's certificate, colon-separated (https only)

    def relocate_spec(self, cross_vcenter: bool) -> Any:
        """A RelocateSpec to this host and pool (and datastore; across vCenters, folder and service locator)."""
        from pyVmomi import vim

        spec = vim.vm.RelocateSpec(host=vim.HostSystem(self.host_id), pool=vim.ResourcePool(self.pool_id))
        if self.datastore_id is not None:
            spec.datastore = vim.Datastore(self.datastore_id)
        if cross_vcenter:
            spec.folder = vim.Folder(self.folder_id)
            spec.service = vim.ServiceLocator(
                instanceUuid=self.instance_uuid, url=self.url,
                credential=vim.ServiceLocatorNamePassword(username=self.user, password=self.password),
                sslThumbprint=self.thumbprint)
        return spec


def certificate_thumbprint(vc: VCenterConfig) -> str | None:
    """The SHA-1 thumbprint of the vCenter's certificate (None over plain http), read with the config's TLS settings."""
    ctx = ssl_context(vc)
    if ctx is None:
        return None
    try:
        with socket.create_connection((vc.host, vc.port), timeout=vc.timeout) as sock:
            with ctx.wrap_socket(sock, server_hostname=vc.host) as tls:
                der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        raise SourceError(f"vcenter {vc.host}: cannot read its certificate: {exc.__class__.__name__}") from None
    if not der:
        raise SourceError(f"vcenter {vc.host}: presented no certificate")
    digest = hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - the thumbprint vSphere asks for
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _vm_folder(conn: Connection, cluster: Any) -> str:
    """The VM folder of the datacenter holding ``cluster`` (walking up its parents)."""
    from pyVmomi import vim

    obj = cluster
    for _ in range(32):
        found = retrieve(conn.content, [objects_spec([(obj, vim.ManagedEntity, ["parent"])])])
        parent = props(found[0]).get("parent") if found else None
        if parent is None:
            break
        if isinstance(parent, vim.Datacenter):
            dc = retrieve(conn.content, [objects_spec([(parent, vim.Datacenter, ["vmFolder"])])])
            folder = props(dc[0]).get("vmFolder") if dc else None
            if folder is not None:
                return moid(folder)
            break
        obj = parent
    raise SourceError(f"{conn.where}: cannot find the datacenter VM folder of cluster {moid(cluster)}")


def target_site(vc: VCenterConfig, conn: Connection, refs: ClusterRefs, host: str, datastore: str | None,
                pool: str | None = None) -> TargetSite:
    """The site of ``host`` (and ``datastore``, and resource ``pool``; None: the root pool) of the cluster
    ``refs`` describes; SourceError when one is gone."""
    if pool is not None and pool not in refs.pools:
        raise SourceError(f"cluster {refs.name}: resource pool {pool} not found")
    if host not in refs.hosts:
        raise SourceError(f"cluster {refs.name}: host {host} not found")
    if datastore is not None and datastore not in refs.datastores:
        raise SourceError(f"cluster {refs.name}: datastore {datastore} not found")
    if refs.pool is None:
        raise SourceError(f"cluster {refs.name} has no root resource pool")
    folder = conn.call(f"finding the VM folder of cluster {refs.name}", lambda: _vm_folder(conn, refs.cluster))
    about = conn.call("reading the vCenter's identity", lambda: conn.content.about)
    return TargetSite(
        cluster=refs.name, host_name=host, host_id=moid(refs.hosts[host]),
        pool_id=moid(refs.pools[pool] if pool is not None else refs.pool), folder_id=folder,
        datastore_name=datastore, datastore_id=moid(refs.datastores[datastore]) if datastore else None,
        url=f"{vc.protocol}://{vc.host}:{vc.port}", instance_uuid=str(getattr(about, "instanceUuid", "") or ""),
        user=vc.user, password=read_password(vc), thumbprint=certificate_thumbprint(vc))


__all__ = ["TargetSite", "certificate_thumbprint", "target_site"]
