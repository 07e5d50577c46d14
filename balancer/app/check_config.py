"""`balancer check-config`: the config file is valid, and so are the files and directories it names.

A config can be valid and still fail when `run` starts: a trace that does not exist, a journal
directory that is missing, TLS files that cannot be loaded. These are checked here, on the
machine where check-config runs, so that `check-config` passing means `run` can start.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Config, is_loopback, load_config
from ..errors import InputError
from ..errors.validation import file_problem
from ..sources.registry import kind_of


def check_config(file: str) -> tuple[Config, list[str]]:
    """The config in ``file`` and its warnings (one line each); InputError for what `run` could not start with."""
    cfg = load_config(file)
    return cfg, check_config_files(cfg, f"config {file}")


def check_config_files(cfg: Config, what: str) -> list[str]:
    """InputError (one line naming the key) for the first missing or unusable file (or metrics password);
    otherwise the warnings (insecure or unreachable vCenter settings, a short vCenter interval, metrics
    open to other machines without basic_auth), one line each."""
    warnings: list[str] = []
    journal_dir = Path(cfg.journal.path).parent
    if cfg.journal.url is not None:
        from ..journal.backends import read_journal_password  # here: the journal's modules only when needed

        try:  # read as `run` reads it at start (the value itself is not kept); as for vCenter, a warning
            read_journal_password(cfg.journal.password_env, cfg.journal.password_file)
        except InputError as exc:
            warnings.append(f"{what}: {exc}")
    if not journal_dir.is_dir() and (cfg.journal.url is None or any(kind_of(c).simulated  # its state file
                                                                     for _, c in cfg.cluster_configs())):
        raise InputError(f"{what}: journal.path: directory {journal_dir} does not exist")
    metrics = cfg.metrics
    if metrics.tls_cert is not None and metrics.tls_key is not None:
        _exists(metrics.tls_cert, f"{what}: metrics.tls_cert")
        _exists(metrics.tls_key, f"{what}: metrics.tls_key")
        import ssl  # only when TLS is configured: check-config starts without it

        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(metrics.tls_cert), str(metrics.tls_key))
        except (ssl.SSLError, OSError) as exc:
            raise InputError(f"{what}: metrics.tls_cert / tls_key: cannot load the certificate and key: "
                             f"{getattr(exc, 'reason', None) or exc}") from None
    if metrics.basic_auth is not None:
        from ..metrics.http import read_auth_password  # the endpoint's modules (cheroot) only for a password

        try:  # read as `run` reads it at start (the value itself is not kept)
            read_auth_password(metrics.basic_auth)
        except InputError as exc:
            raise InputError(f"{what}: {exc}") from None
    if metrics.basic_auth is None and not is_loopback(metrics.listen_host):
        warnings.append(f"{what}: metrics.listen {metrics.listen} is reachable from other machines and "
                        "metrics.basic_auth is not set: anyone who can reach it reads the cluster's and hosts' names and load")
    if cfg.console.users_file is not None:
        try:
            from ..web.auth import load_users  # the console's modules (werkzeug) only for a users file

            users = load_users(cfg.console.users_file)  # names the file and the entry
            if metrics.basic_auth is not None and metrics.basic_auth.user in users:
                from ..web.auth import overlap_error

                raise InputError(overlap_error(metrics.basic_auth.user))
        except InputError as exc:
            raise InputError(f"{what}: {exc}") from None
    several = cfg.clusters is not None
    for name, one in cfg.cluster_configs():
        where = f"{what}: cluster {name}: " if several else f"{what}: "
        warnings.extend(kind_of(one).check(one, where))
    return warnings


def _exists(path: Path, what: str) -> None:
    problem = file_problem(path)
    if problem == "no such file":
        raise InputError(f"{what}: no such file {path}")
    if problem:
        raise InputError(f"{what}: {path} {problem}")


__all__ = ["check_config", "check_config_files"]
