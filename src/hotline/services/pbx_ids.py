"""The configured PBX ids and how a row's ``pbx_id`` is written and read.

A line or dialplan version on the first PBX (``HOTLINE_AMI__*``) is stored with ``pbx_id`` NULL, on another PBX
with that PBX's id; the API always shows the id. ``Line`` in ``hotline/db/models.py`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from hotline.errors import InvalidInput
from hotline.settings import Settings


class UnknownPbx(InvalidInput):
    """A PBX id that is not configured (422): nothing would listen to it, route it or reload its dialplan."""

    error_id = "unknown-pbx"


@dataclass(frozen=True, slots=True)
class PbxIds:
    """The configured PBX ids, the first one first."""

    ids: tuple[str, ...]

    @classmethod
    def of(cls, settings: Settings) -> PbxIds:
        return cls(tuple(settings.pbx_ids))

    @property
    def first(self) -> str:
        return self.ids[0]

    def is_first(self, pbx_id: str) -> bool:
        return pbx_id == self.first

    def check(self, value: str, field: str = "pbx_id") -> str:
        """``value`` if it is a configured PBX id, else :class:`UnknownPbx` naming ``field`` and the known ids."""
        if value not in self.ids:
            known = ", ".join(self.ids)
            raise UnknownPbx(
                f"{field}: no PBX {value!r} is configured; the known PBX ids are {known} "
                "(HOTLINE_AMI__ID and the ids in HOTLINE_EXTRA_PBXS)",
                details={"field": field, "value": value, "known": list(self.ids)},
            )
        return value

    def stored(self, pbx_id: str | None) -> str | None:
        """What a row stores for ``pbx_id`` (None: the first PBX)."""
        return None if pbx_id is None or pbx_id == self.first else pbx_id

    def shown(self, stored: str | None) -> str:
        """The PBX a row with this stored ``pbx_id`` is on."""
        return self.first if stored is None else stored
