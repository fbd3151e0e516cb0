"""Reading and writing networks as CSV or YAML files.

CSV: a header row, then one row per layer, columns as in shared/reference/layers/README.md:

    name,type,N,C,M,H,W,R,S,stride,pad,groups

stride, pad and groups may be left out (whole column or single cell) and default to 1, 0, 1. Blank
lines and lines whose first cell starts with '#' are skipped. The network is named after the file.

YAML: a mapping with an optional `name` (default: the file name without extension), an optional
`description` (ignored) and `layers`, a list of mappings with the same keys as the CSV columns:

    name: tiny
    layers:
      - {name: conv1, type: CONV, N: 1, C: 3, M: 16, H: 32, W: 32, R: 3, S: 3, pad: 1}
      - {name: fc, type: FC, N: 1, C: 16, M: 10, H: 32, W: 32, R: 32, S: 32}

Format errors name the file, the row (CSV line number) or layer, and the field. Shape errors are
Layer's own validation messages (WorkloadError) prefixed with the file and row.
"""
from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import yaml

from eyejax.workload.layer import Layer, WorkloadError
from eyejax.workload.network import Network

REQUIRED_FIELDS = ("name", "type", "N", "C", "M", "H", "W", "R", "S")
OPTIONAL_FIELDS = {"stride": 1, "pad": 0, "groups": 1}
COLUMNS = REQUIRED_FIELDS + tuple(OPTIONAL_FIELDS)
INT_FIELDS = ("N", "C", "M", "H", "W", "R", "S", "stride", "pad", "groups")

_INT_RE = re.compile(r"[+-]?[0-9]+")


def load_network(path: str | os.PathLike) -> Network:
    """A network from a .csv, .yaml or .yml file (see the module docstring for the formats)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".yaml", ".yml"):
        raise WorkloadError(f"{p}: unknown workload file type {p.suffix!r}; use .csv, .yaml or .yml")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise WorkloadError(f"{p}: workload file does not exist") from None
    if suffix == ".csv":
        return parse_csv_text(text, source=str(p), name=p.stem)
    return parse_yaml_text(text, source=str(p), name=p.stem)


def save_network_csv(network: Network, path: str | os.PathLike) -> None:
    """Write all 12 columns, one row per layer, in the format load_network reads."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for l in network.layers:
            w.writerow([l.name, l.type.value, *(getattr(l, k) for k in INT_FIELDS)])


def save_network_yaml(network: Network, path: str | os.PathLike) -> None:
    """Write the network in the YAML format load_network reads."""
    doc = {"name": network.name,
           "layers": [{"name": l.name, "type": l.type.value, **{k: getattr(l, k) for k in INT_FIELDS}}
                      for l in network.layers]}
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f, sort_keys=False, default_flow_style=None)


# Parsing ------------------------------------------------------------------------------------
def parse_csv_text(text: str, source: str, name: str) -> Network:
    """A network named `name` from CSV text; `source` names the file in error messages."""
    reader = csv.reader(text.splitlines())
    header = None
    layers = []
    for row in reader:
        line = reader.line_num
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in row]
        if header is None:
            header = cells
            _check_csv_header(header, source, line)
            continue
        if len(cells) != len(header):
            raise WorkloadError(
                f"{source}, line {line}: expected {len(header)} fields ({','.join(header)}), "
                f"got {len(cells)}")
        rec = dict(zip(header, cells))
        layer_name = rec["name"]
        where = f"{source}, line {line}" + (f" (layer {layer_name!r})" if layer_name else "")
        if not layer_name:
            raise WorkloadError(f"{where}: field name is empty")
        values = {}
        for f in INT_FIELDS:
            raw = rec.get(f, "")
            if raw == "":
                if f not in OPTIONAL_FIELDS:
                    raise WorkloadError(f"{where}: field {f} is empty")
                values[f] = OPTIONAL_FIELDS[f]
            elif _INT_RE.fullmatch(raw):
                values[f] = int(raw)
            else:
                raise WorkloadError(f"{where}: field {f} = {raw!r} is not an integer")
        if not rec["type"]:
            raise WorkloadError(f"{where}: field type is empty")
        # Layer's own messages name the layer, so only the file and line are prefixed.
        layers.append(_make_layer(f"{source}, line {line}", layer_name, rec["type"], values))
    if header is None:
        raise WorkloadError(f"{source}: no header row (expected columns {','.join(COLUMNS)})")
    return _make_network(source, name, layers)


def _check_csv_header(header: list[str], source: str, line: int) -> None:
    missing = [c for c in REQUIRED_FIELDS if c not in header]
    if missing:
        raise WorkloadError(
            f"{source}, line {line} (header): missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}; required: {','.join(REQUIRED_FIELDS)}, optional: "
            f"{','.join(OPTIONAL_FIELDS)}")
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise WorkloadError(
            f"{source}, line {line} (header): unknown column{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; allowed: {','.join(COLUMNS)}")
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup:
        raise WorkloadError(f"{source}, line {line} (header): duplicate column {', '.join(dup)}")


def parse_yaml_text(text: str, source: str, name: str) -> Network:
    """A network from YAML text; its `name` key, if any, overrides `name`."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise WorkloadError(f"{source}: not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise WorkloadError(f"{source}: expected a mapping with keys name and layers, got "
                            f"{type(doc).__name__}")
    unknown = [k for k in doc if k not in ("name", "description", "layers")]
    if unknown:
        raise WorkloadError(f"{source}: unknown top-level key {', '.join(map(repr, unknown))}; "
                            f"allowed: name, description, layers")
    if "name" in doc:
        name = doc["name"]
        if not isinstance(name, str) or not name:
            raise WorkloadError(f"{source}: field name must be a non-empty string, got {name!r}")
    items = doc.get("layers")
    if not isinstance(items, list) or not items:
        raise WorkloadError(f"{source}: field layers must be a non-empty list of layers, got "
                            f"{items!r}")
    layers = []
    for i, item in enumerate(items, start=1):
        where = f"{source}, layer #{i}"
        if not isinstance(item, dict):
            raise WorkloadError(f"{where}: expected a mapping of fields, got {item!r}")
        layer_name = item.get("name")
        if isinstance(layer_name, str) and layer_name:
            where += f" ({layer_name!r})"
        else:
            raise WorkloadError(f"{where}: field name must be a non-empty string, got "
                                f"{layer_name!r}")
        unknown = [k for k in item if k not in COLUMNS]
        if unknown:
            raise WorkloadError(f"{where}: unknown field {', '.join(map(repr, unknown))}; "
                                f"allowed: {', '.join(COLUMNS)}")
        missing = [k for k in REQUIRED_FIELDS if k not in item]
        if missing:
            raise WorkloadError(f"{where}: missing field {', '.join(missing)}")
        values = {}
        for f in INT_FIELDS:
            v = item.get(f, OPTIONAL_FIELDS.get(f))
            if isinstance(v, bool) or not isinstance(v, int):
                raise WorkloadError(f"{where}: field {f} = {v!r} is not an integer")
            values[f] = v
        layers.append(_make_layer(f"{source}, layer #{i}", layer_name, item["type"], values))
    return _make_network(source, name, layers)


def _make_layer(where: str, name: str, type_, values: dict) -> Layer:
    try:
        return Layer(name=name, type=type_, **values)
    except WorkloadError as e:
        raise WorkloadError(f"{where}: {e}") from None


def _make_network(source: str, name: str, layers: list) -> Network:
    try:
        return Network(name, tuple(layers))
    except WorkloadError as e:
        raise WorkloadError(f"{source}: {e}") from None
