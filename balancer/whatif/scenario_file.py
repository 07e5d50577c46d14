"""`balancer simulate --scenario FILE.yaml`: the literature's scenario with your own hosts and VM types.

A small YAML file (validated with pydantic; a bad file is one line naming the bad item, exit 2)::

    trace: "20110303"          # a packaged day or a .csv.gz (optional: --trace overrides it)
    hosts:                     # host types, interleaved one of each in turn (G4, G5, G4, ...) up to their counts
      - {name: G4, count: 400, cores: 2, mips_per_core: 1860, ram_mb: 4096,
         power_w: [86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117]}   # W at 0, 10, ..., 100 % CPU
      - {name: G5, count: 400, cores: 2, mips_per_core: 2660, ram_mb: 4096,
         power_w: [93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135]}
    vm_types:                  # VM i of N gets type i // ceil(N / types), one trace row each
      - {mips: 2500, ram_mb: 870}
      - {mips: 2000, ram_mb: 1740}

Everything else is the planetlab-cloudsim scenario's (cloudsim.py): CloudSim's initial placement,
departures, migrations at half of 1 Gbit/s, the metrics. config/scenarios/planetlab-cloudsim.yaml is the
literature's own scenario written this way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_SCENARIO_BYTES = 1 << 20
_Pos = Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HostType(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=40)]
    count: Annotated[int, Field(ge=1, le=10_000)]
    cores: Annotated[int, Field(ge=1, le=1024)]
    mips_per_core: _Pos
    ram_mb: _Pos
    power_w: list[Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False)]]

    @field_validator("power_w")
    @classmethod
    def _curve(cls, v: list[float]) -> list[float]:
        if len(v) != 11:
            raise ValueError(f"11 values are needed (W at 0, 10, ..., 100 % CPU), got {len(v)}")
        if any(b < a for a, b in zip(v, v[1:])):
            raise ValueError("the power curve must not fall as the load rises")
        return v


class VmType(_Strict):
    mips: _Pos
    ram_mb: _Pos


class ScenarioFile(_Strict):
    trace: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    hosts: Annotated[list[HostType], Field(min_length=1, max_length=100)]
    vm_types: Annotated[list[VmType], Field(min_length=1, max_length=100)]

    @field_validator("hosts")
    @classmethod
    def _total(cls, v: list[HostType]) -> list[HostType]:
        if sum(h.count for h in v) > 10_000:
            raise ValueError("at most 10,000 hosts in all")
        return v

    def host_kinds(self) -> np.ndarray:
        """(H,) the host type of each host: one of each type in turn, as long as its count lasts."""
        left = [h.count for h in self.hosts]
        out: list[int] = []
        while any(left):
            for t, n in enumerate(left):
                if n:
                    out.append(t)
                    left[t] -= 1
        return np.array(out, dtype=int)

    def host_types(self) -> tuple:
        return tuple((h.cores, h.mips_per_core, h.ram_mb, tuple(h.power_w)) for h in self.hosts)

    def vm_types_tuple(self) -> tuple:
        return tuple((t.mips, t.ram_mb) for t in self.vm_types)


def load_scenario_file(path: str | Path) -> ScenarioFile:
    """The scenario file at ``path``, validated; InputError (exit 2) with one line naming the bad item."""
    from ..config import parse_yaml_text
    from ..errors.validation import read_input_file, validate_model

    path = Path(path)
    what = f"scenario {path}"
    data = parse_yaml_text(read_input_file(path, what, MAX_SCENARIO_BYTES), what)
    return validate_model(ScenarioFile, data, what, container="a mapping", yaml=True)
