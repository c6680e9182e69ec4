"""One YAML section -> one frozen options dataclass, with errors that name the file and section."""
from __future__ import annotations

from dataclasses import fields


def section(cls: type, raw: object, where: str, error: type[Exception], *, lists_as_tuples: bool = False) -> object:
    """``cls(**raw)``; None gives the defaults. Unknown keys and bad values raise ``error``
    naming ``where`` (e.g. ``conf/x.yaml: filters``)."""
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise error(f"{where}: want a mapping, got {type(raw).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise error(f"{where}: unknown option(s) {unknown}; known: {sorted(known)}")
    values = {k: tuple(v) if lists_as_tuples and isinstance(v, list) else v for k, v in raw.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:
        raise error(f"{where}: {e}") from None
