"""Decrypted credential values, as the vault hands them to a source: a mapping that never shows
its values in repr or str. Here, below storage and sources, because both speak of it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping


class Credentials(Mapping[str, str]):
    """Decrypted credential values. Never shows its values in repr/str."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]):
        self._values = {str(k): str(v) for k, v in values.items()}

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Credentials({', '.join(sorted(self._values))}: ***)"

    __str__ = __repr__

    def to_dict(self) -> dict[str, str]:
        """The clear values, for the vault only."""
        return dict(self._values)
