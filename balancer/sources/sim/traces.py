"""PlanetLab CPU traces: one row per VM, 288 five-minute samples of utilisation in percent."""

from __future__ import annotations

import csv
import gzip
import io
from importlib import resources
from pathlib import Path

from typing import TYPE_CHECKING

from ...errors import InputError
from ...errors.limits import MAX_TRACE_BYTES, MiB, clip, quote

if TYPE_CHECKING:
    import numpy as np

SAMPLE_SECONDS = 300


def packaged_days() -> list[str]:
    folder = resources.files("balancer.data").joinpath("traces")
    return sorted(p.name.split(".")[0] for p in folder.iterdir() if p.name.endswith(".csv.gz"))


def load_trace(name_or_path: str) -> np.ndarray:
    """(VMs, samples) utilisation in [0, 1]. A packaged day (YYYYMMDD) or a path to a .csv.gz / .csv."""
    return load_trace_rows(name_or_path)[1]


def load_trace_rows(name_or_path: str) -> tuple[list[str], np.ndarray]:
    """The trace's VM ids (its first column, one a row) and its (VMs, samples) utilisation in [0, 1]."""
    import numpy as np  # here, not at the top: `check-config` checks a trace without numpy

    ids, values = read_trace_rows(name_or_path)
    return ids, np.array(values, dtype=float) / 100.0


def check_trace(name_or_path: str) -> None:
    """InputError when the trace would not load: a packaged day must exist (the packaged files are the
    package's own, read by the tests); a file is read and checked row by row, as `load_trace` would."""
    if not Path(name_or_path).exists() and name_or_path in packaged_days():
        return
    read_trace_rows(name_or_path)


def read_trace_rows(name_or_path: str) -> tuple[list[str], list[list[float]]]:
    """The trace's VM ids and its samples in percent, checked (InputError naming the bad line)."""
    path = Path(name_or_path)
    if path.exists():
        try:
            if path.stat().st_size > MAX_TRACE_BYTES:
                raise InputError(f"trace {path}: too large ({path.stat().st_size / MiB:,.1f} MiB; the limit is "
                                 f"{MAX_TRACE_BYTES / MiB:.1f} MiB)")
            raw = path.read_bytes()
        except OSError as exc:
            raise InputError(f"trace {path}: cannot read: {exc.strerror}") from None
        label = str(path)
    else:
        res = resources.files("balancer.data").joinpath("traces", f"{name_or_path}.csv.gz")
        if not res.is_file():
            raise InputError(
                f"trace {quote(name_or_path)}: no such file or packaged day (packaged: {', '.join(packaged_days())})"
            )
        raw = res.read_bytes()
        label = name_or_path
    try:
        if raw[:2] == b"\x1f\x8b":  # read at most the limit uncompressed (a small file can unpack to gigabytes)
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as unpacked:
                raw = unpacked.read(MAX_TRACE_BYTES + 1)
            if len(raw) > MAX_TRACE_BYTES:
                raise InputError(f"trace {label}: too large uncompressed (more than {MAX_TRACE_BYTES / MiB:.1f} MiB, "
                                 "the limit)")
        text = raw.decode()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"trace {label}: cannot read: {exc}") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or len(rows[0]) < 2 or rows[0][0] != "vm":
        raise InputError(f"trace {label}: expected a header 'vm,t000,t001,...'")
    width = len(rows[0]) - 1
    ids: list[str] = []
    values = []
    for n, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != width + 1:
            raise InputError(f"trace {label}: line {n} ({clip(row[0])}): expected {width} samples, got {len(row) - 1}")
        try:
            sample = [float(x) for x in row[1:]]
        except ValueError:
            raise InputError(f"trace {label}: line {n} ({clip(row[0])}): a sample is not a number") from None
        if any(not (0.0 <= x <= 100.0) for x in sample):
            raise InputError(f"trace {label}: line {n} ({clip(row[0])}): samples must be percentages 0..100")
        values.append(sample)
        ids.append(row[0])
    if not values:
        raise InputError(f"trace {label}: no VM rows")
    return ids, values
