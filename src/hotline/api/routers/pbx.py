"""``GET /api/pbx``: the state of each PBX connection and its listener."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hotline.api.deps import RuntimeDep
from hotline.api.security import Staff

router = APIRouter(prefix="/api/pbx", tags=["pbx"])


@router.get("", summary="Each PBX: connection state, reconnects, events received/failed, queue members")
async def pbx_status(_principal: Staff, runtime: RuntimeDep) -> list[dict[str, Any]]:
    out = []
    for pbx_id, listener in sorted(runtime.listeners.items()):
        status = listener.status()
        status["queue_members"] = {
            queue: [
                {"interface": m.get("Location"), "member_name": m.get("Name"), "paused": m.get("Paused") == "1",
                 "paused_reason": m.get("PausedReason") or None, "in_call": m.get("InCall") == "1"}
                for m in members.values()
            ]
            for queue, members in sorted(listener.queue_members.items())
        }  # fmt: skip
        out.append({"pbx_id": pbx_id, **status})
    return out
