"""Starts the PBX side of a hotline process: the AMI listener, and the simulator when no Asterisk is set."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hotline.bootstrap import Runtime


async def start_pbx(runtime: Runtime) -> None:
    runtime.pbx[runtime.settings.ami.id] = {"state": "not-started"}
