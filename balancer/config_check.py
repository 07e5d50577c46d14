"""What `check-config` checks beyond the file's own validity: the files and directories it names.

A config can be valid and still fail when `run` starts: a trace that does not exist, a journal
directory that is missing, TLS files that cannot be loaded. These are checked here, on the
machine where check-config runs, so that `check-config` passing means `run` can start.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import Config, is_loopback
from .errors import InputError


MIN_VCENTER_INTERVAL_S = 60.0  # a cycle interval below this on vCenter gets a warning


def check_config_files(cfg: Config, what: str) -> list[str]:
    """InputError (one line naming the key) for the first missing or unusable file (or metrics password);
    otherwise the warnings (insecure or unreachable vCenter settings, a short vCenter interval, metrics
    open to other machines without basic_auth), one line each."""
    warnings: list[str] = []
    journal_dir = Path(cfg.journal.path).parent
    if cfg.journal.url is not None:
        from .journal.backends import read_journal_password

        try:  # read as `run` reads it at start (the value itself is not kept); as for vCenter, a warning
            read_journal_password(cfg.journal.password_env, cfg.journal.password_file)
        except InputError as exc:
            warnings.append(f"{what}: {exc}")
    if not journal_dir.is_dir() and (cfg.journal.url is None or any(c.source == "sim"
                                                                     for _, c in cfg.cluster_configs())):
        raise InputError(f"{what}: journal.path: directory {journal_dir} does not exist")
    metrics = cfg.metrics
    if metrics.tls_cert is not None and metrics.tls_key is not None:
        _exists(metrics.tls_cert, f"{what}: metrics.tls_cert")
        _exists(metrics.tls_key, f"{what}: metrics.tls_key")
        import ssl

        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(metrics.tls_cert), str(metrics.tls_key))
        except (ssl.SSLError, OSError) as exc:
            raise InputError(f"{what}: metrics.tls_cert / tls_key: cannot load the certificate and key: "
                             f"{getattr(exc, 'reason', None) or exc}") from None
    if metrics.basic_auth is not None:
        from .metrics.http import read_auth_password

        try:  # read as `run` reads it at start (the value itself is not kept)
            read_auth_password(metrics.basic_auth)
        except InputError as exc:
            raise InputError(f"{what}: {exc}") from None
    if metrics.basic_auth is None and not is_loopback(metrics.listen_host):
        warnings.append(f"{what}: metrics.listen {metrics.listen} is reachable from other machines and "
                        "metrics.basic_auth is not set: anyone who can reach it reads the cluster's and hosts' names and load")
    several = cfg.clusters is not None
    for name, one in cfg.cluster_configs():
        where = f"{what}: cluster {name}: " if several else f"{what}: "
        if one.source == "sim":
            from .sources.sim.traces import load_trace

            try:
                load_trace(one.sim.trace)
            except InputError as exc:
                raise InputError(f"{where}sim.trace: {exc}") from None
        elif one.vcenter is not None:
            vc = one.vcenter
            if one.drs.interval < MIN_VCENTER_INTERVAL_S:
                warnings.append(f"{where}drs.interval is {one.drs.interval:g} s: every cycle reads the whole "
                                f"cluster from vCenter, and its statistics are 20-second samples; 5m is usual")
            # read at each connection, not at start: a cycle would fail, so a warning (the file may be
            # mounted only where the service runs)
            for key, path in (("password_file", vc.password_file), ("ca_file", vc.ca_file)):
                if path is not None and not Path(path).is_file():
                    warnings.append(f"{where}vcenter.{key}: no such file {path} (connecting will fail)")
            if vc.password_env is not None and not os.environ.get(vc.password_env):
                warnings.append(f"{where}vcenter.password_env: environment variable {vc.password_env} is not set here "
                                "(connecting will fail where it is not set)")
            warnings.extend(f"{where}{line}" for line in vc.insecure_warnings())
    return warnings


def _exists(path: Path, what: str) -> None:
    if not Path(path).is_file():
        raise InputError(f"{what}: no such file {path}")


__all__ = ["check_config_files"]
