"""The defaults tbml ships inside its package, and ``tbml init``, which copies them out to edit.

Everything a run needs (the documented default config, the red-flag rules, the high-risk jurisdictions,
example mappings and files, exchange-rate pegs, report templates) is package data under ``tbml/data``,
so an installed wheel works with no repository beside it. A config names a shipped file as ``builtin``;
a mapping may be given by its shipped name (``--mapping customs_import_declarations``).
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from tbml.errors import TBMLError

BUILTIN = "builtin"

# What ``tbml init`` writes, as (file under tbml/data, name in the user's folder).
INIT_FILES = (
    ("default.yaml", "config.yaml"),
    ("rules.yaml", "rules.yaml"),
    ("high_risk_jurisdictions.yaml", "high_risk_jurisdictions.yaml"),
    ("mappings/customs_import_declarations.yaml", "mappings/customs_import_declarations.yaml"),
    ("mappings/bank_wire_transfers.yaml", "mappings/bank_wire_transfers.yaml"),
    ("examples/customs_declarations.csv", "examples/customs_declarations.csv"),
    ("examples/bank_wires.csv", "examples/bank_wires.csv"),
)


def data_path(name: str) -> Path:
    """The path of a shipped file, such as ``rules.yaml`` or ``mappings/bank_wire_transfers.yaml``."""
    return Path(str(resources.files("tbml") / "data" / name))


def resolve(spec: str | Path | None, name: str) -> Path:
    """``spec`` as a path; ``builtin`` (or nothing) is the shipped file ``name``."""
    return data_path(name) if spec is None or str(spec) == BUILTIN else Path(spec)


def shipped_mappings() -> list[str]:
    return sorted(p.stem for p in data_path("mappings").glob("*.yaml"))


def mapping_path(spec: str | Path) -> Path:
    """A mapping given as a path, or by the name of a shipped one when no such file exists."""
    path = Path(spec)
    if path.exists() or path.suffix:
        return path
    name = path.name.replace("-", "_")
    if name in shipped_mappings():
        return data_path(f"mappings/{name}.yaml")
    return path


def init_folder(dest: str | Path, force: bool = False) -> list[Path]:
    """Copy the shipped config, rules, jurisdictions, mappings and example files into ``dest`` to edit.

    The config written refers to the rules and jurisdictions beside it, so editing them takes effect.
    An existing file is never overwritten unless ``force``; the message names the first one.
    """
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise TBMLError(f"{dest}: exists and is not a folder")
    targets = [(data_path(src), dest / name) for src, name in INIT_FILES]
    clash = [target for _, target in targets if target.exists()]
    if clash and not force:
        raise TBMLError(f"{clash[0]}: already exists; pass --force to overwrite the shipped defaults")
    written = []
    for source, target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    config = dest / "config.yaml"
    text = config.read_text(encoding="utf-8")
    text = text.replace("  # high_risk_jurisdictions: builtin", "  high_risk_jurisdictions: high_risk_jurisdictions.yaml")
    text = text.replace("  # rules: builtin", "  rules: rules.yaml")
    config.write_text(text, encoding="utf-8")
    return written
