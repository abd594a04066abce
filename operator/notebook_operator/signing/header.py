"""The Authorization header shape both schemes share: `ALGORITHM Key=value,Key=value,...`."""

from __future__ import annotations


def parse(value: str, algorithm: str, key_field: str) -> tuple[str, list[str], str] | None:
    """(access key, signed header names, signature), or None when the header is not of that scheme."""
    if not value.startswith(algorithm + " "):
        return None
    fields: dict[str, str] = {}
    for part in value[len(algorithm) + 1 :].split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            return None
        fields[key] = val
    if not {key_field, "SignedHeaders", "Signature"} <= fields.keys():
        return None
    return fields[key_field], [h for h in fields["SignedHeaders"].split(";") if h], fields["Signature"]
