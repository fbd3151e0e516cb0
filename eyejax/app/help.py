"""``eyejax --help`` and ``eyejax-prune --help``: the configuration groups, their options, and every
field with its default and the comment that documents it (meaning, unit, allowed values), read from
the config files themselves, so the help and the configs cannot drift apart.

Hydra prints the help from ``hydra.help.template`` (``conf/config.yaml``, ``conf/prune.yaml``), which
calls the resolver ``${eyejax_help:<group>/<option>,...}`` registered here.
"""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

_FIELD = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w.@-]*):(?P<value>[^#]*?)\s*(?:#\s?(?P<doc>.*))?$")


def describe_file(path: Path, prefix: str = "", intro: bool = True) -> list[str]:
    """Lines describing a config file: its opening comment, then one entry per field,
    ``prefix.key = default`` and its documentation: the comment on the field's line, else the
    comment block just above it; nested keys are dotted."""
    fields: list[list[str]] = []  # [name, default, doc]
    stack: list[tuple[int, str]] = []
    head: list[str] = []
    pending: list[str] = []
    head_done = False  # the opening comment block ends at the first blank or non-comment line
    for raw in path.read_text().splitlines():
        if not raw.strip():
            head_done = True
            pending = []
            continue
        if raw.lstrip().startswith("#"):
            text = raw.strip().lstrip("#").strip()
            if not head_done:
                head.append(text)
            elif len(raw) - len(raw.lstrip()) > 8 and not pending:
                fields[-1][2] = (fields[-1][2] + " " + text).strip()  # an indented continuation
            else:
                pending.append(text)
            continue
        m = _FIELD.match(raw)
        if m is None or m["key"] == "defaults" or raw.lstrip().startswith("-"):
            pending = []
            continue
        head_done = True
        indent = len(m["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        name = ".".join([s for _, s in stack] + [m["key"]])
        value = m["value"].strip()
        doc = " ".join(pending + ([m["doc"]] if m["doc"] else []))
        pending = []
        if not value:  # a nested mapping
            stack.append((indent, m["key"]))
        if name.startswith("hydra"):
            continue
        if value or doc:
            fields.append([name, value, doc])
    lines = []
    if intro:
        para = " ".join(t for t in head if t).strip()
        if para:
            lines += textwrap.wrap(para, 100, initial_indent="  ", subsequent_indent="  ")
    width = min(max((len(prefix + n) + len(v) for n, v, _ in fields), default=0) + 8, 44)
    for n, v, d in fields:
        left = f"    {prefix}{n}" + (f" = {v}" if v else "")
        if not d:
            lines.append(left)
            continue
        body = textwrap.wrap(d, max(100 - width, 40))
        if len(left) >= width:
            lines.append(left)
            lines += [" " * width + b for b in body]
        else:
            lines.append(f"{left:<{width}}{body[0]}")
            lines += [" " * width + b for b in body[1:]]
    return lines


def group_options(conf_dir: Path, group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))


def help_text(conf_dir: str | Path, spec: str) -> str:
    """The help body for ``spec``: comma-separated ``group/option`` (a group and the option whose
    fields to describe) or ``.`` + a primary config name (its top-level fields)."""
    conf_dir = Path(conf_dir)
    out = []
    for item in [s.strip() for s in spec.split(",") if s.strip()]:
        if item.startswith("."):
            name = item[1:]
            out.append(f"== Top-level fields ({name}.yaml) ==")
            out += describe_file(conf_dir / f"{name}.yaml", intro=False)
            out.append("")
            continue
        target, _, option = item.partition("/")
        group, _, where = target.partition("@")  # arch@arch_v2/eyeriss_v2: group arch as arch_v2
        key = where or group
        options = group_options(conf_dir, group)
        out.append(f"== {key} (choose with {key}=<option>: {', '.join(options)}); "
                   f"fields of {key}={option} ==")
        out += describe_file(conf_dir / group / f"{option}.yaml", prefix=f"{key}.")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def register_resolver() -> None:
    """Registers ``${eyejax_help:...}`` with OmegaConf (once)."""
    from omegaconf import OmegaConf

    def _resolve(*items):
        from eyejax.app.runtime import CONF_DIR

        # Hydra fills its help template with string.Template: a literal "$" (e.g. "$HOME" in a
        # field's documentation) must be written "$$"
        return help_text(CONF_DIR, ",".join(items)).replace("$", "$$")

    if not OmegaConf.has_resolver("eyejax_help"):
        OmegaConf.register_new_resolver("eyejax_help", _resolve)
