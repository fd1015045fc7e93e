"""Dialplan from the database to Asterisk: render → store a version → write the files → reload → record the outcome.

The order is the point (DESIGN, "Commit at the edge, then publish"):

1. render from the *committed* state of the lines (a session of our own, not the request's), validated, so a
   value that would break out of the config (a newline or ``;`` typed into a line name) stops everything here;
2. store the new version (``pending``) and its audit entry in one transaction, and commit it, so that Asterisk
   never runs a dialplan hotline has no record of;
3. write both include files atomically (:mod:`hotline.services.dialplan_files`);
4. ``Command: dialplan reload`` and ``Command: module reload app_queue.so`` over the listener's AMI connection;
   ``Response: Error`` or an ``Output`` that reports a failure is a failure;
5. success: the version becomes ``applied`` and the one before ``superseded``. Failure: the previous files are put
   back byte for byte and reloaded again, so the version in force stays in force; the new version is ``failed``
   with the reason.

This spans two transactions and a reload the response must report on, so it does not use the request's session
and after-commit queue (which run after the endpoint has built its answer). One apply at a time per directory.

Each PBX has its own dialplan: the files of its own lines (``Line.pbx_id``) in its own directory
(``Settings.dialplan_dir_of``), its own history of versions, and its own reload over its own AMI connection. One
shared set would make every PBX answer every number, with queues its routing never staffs; and a version applied
to one PBX says nothing about what another one runs. Only the process that listens to a PBX can apply there.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import logging
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from hotline.ami.connection import ActionRefused, AmiConnection, ConnectionLost
from hotline.db.models import DialplanVersion, Line
from hotline.db.repositories import dialplan as repo
from hotline.dialplan import (
    EXTENSIONS_FILE,
    QUEUES_FILE,
    DialplanValidationError,
    LineConfig,
    RenderedDialplan,
    render,
    validate_line,
    validate_lines,
)
from hotline.errors import Conflict, InvalidInput, NotFound, Unavailable
from hotline.services import dialplan_files as files
from hotline.services.pbx_ids import PbxIds
from hotline.settings import Settings

if TYPE_CHECKING:
    from hotline.bootstrap import Runtime

log = logging.getLogger(__name__)

RELOAD_COMMANDS = ("dialplan reload", "module reload app_queue.so")
RELOAD_TIMEOUT_S = 30.0
"""Seconds to wait for each reload's answer; app_queue on a busy PBX can take a while."""
STALE_PENDING = "interrupted: hotline stopped before Asterisk's answer was recorded"

# What Asterisk's CLI prints when a reload did not happen (cli.c ``handle_reload``, pbx_config): "No such module",
# "reported a reload failure", "does not support reloads", "was not properly initialized", "cannot reload a module
# yet; request queued", "is already being reloaded", and "No such command" for a typo.
_FAILURE_OUTPUT = re.compile(
    r"no such|not found|fail|error|does not support|not properly initiali[sz]ed|cannot|unable|"
    r"already being reloaded|request queued",
    re.IGNORECASE,
)

Outcome = Literal["applied", "unchanged", "failed"]


# --- errors -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineProblem:
    line_id: int | None
    field: str
    message: str


class DialplanInvalid(InvalidInput):
    """A stored line holds a value that must not be written into Asterisk's configuration (422)."""

    error_id = "dialplan-invalid"

    def __init__(self, problems: Sequence[LineProblem]) -> None:
        first = problems[0]
        where = f"line {first.line_id}" if first.line_id is not None else "the lines"
        more = f" (and {len(problems) - 1} more problem(s), see details)" if len(problems) > 1 else ""
        super().__init__(
            f"The dialplan was not rendered: {where}, field {first.field}: {first.message}{more}. "
            "Fix the line; nothing was written or reloaded.",
            details={
                "line_id": first.line_id,
                "field": first.field,
                "problems": [{"line_id": p.line_id, "field": p.field, "message": p.message} for p in problems],
            },
        )
        self.problems = list(problems)


class PbxNotConnected(Unavailable):
    error_id = "pbx-not-connected"


# --- results ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """What an apply would write now, against the version in force. ``pending``: they differ (computed, not stored)."""

    rendered: RenderedDialplan
    checksum: str
    applied_version: DialplanVersion | None
    diff: str
    pending: bool


@dataclass(frozen=True)
class ApplyResult:
    """``version``: the new version (applied or failed), or for ``unchanged`` the one already in force."""

    outcome: Outcome
    version: DialplanVersion
    message: str


# --- which PBX ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DialplanTarget:
    """One PBX's dialplan: whose lines and versions (``first``: also those stored without a PBX), which files."""

    pbx_id: str
    first: bool
    directory: Path
    stored_id: str | None
    """What its versions store as ``pbx_id`` (None for the first PBX, as lines do)."""


def target(settings: Settings, pbx_id: str | None = None, *, field: str = "pbx") -> DialplanTarget:
    """The dialplan of ``pbx_id`` (default: the first PBX); an id that is not configured is ``UnknownPbx`` (422)."""
    ids = PbxIds.of(settings)
    chosen = ids.check(pbx_id, field) if pbx_id is not None else ids.first
    return DialplanTarget(
        pbx_id=chosen,
        first=ids.is_first(chosen),
        directory=settings.dialplan_dir_of(chosen),
        stored_id=ids.stored(chosen),
    )


# --- rendering from the database ----------------------------------------------------------------------------------


def line_config(row: Line) -> LineConfig:
    """A line row as the renderer sees it; empty optional numbers count as unset."""
    return LineConfig(
        id=row.id,
        number=row.number,
        name=row.name,
        max_channels=row.max_channels,
        closed_action=row.closed_action,  # type: ignore[arg-type]  # validated by validate_line
        forward_to=row.forward_to or None,
        overflow_to=row.overflow_to or None,
        queue_timeout_s=row.queue_timeout_s,
        recording=row.recording,
        strategy=row.strategy,
        member_ring_timeout_s=row.member_ring_timeout_s,
    )


async def lines_from_db(session: AsyncSession, where: DialplanTarget) -> list[LineConfig]:
    """The PBX's active lines, validated; raises :class:`DialplanInvalid` listing every line that cannot be rendered.

    A bad row (written by a migration, a script, or SQL typed by hand, bypassing the admin API) is never skipped:
    skipping it would silently take that number off the PBX.
    """
    configs = [line_config(row) for row in await repo.active_lines(session, where.pbx_id, first=where.first)]
    problems: list[LineProblem] = []
    for config in configs:
        try:
            validate_line(config)
        except DialplanValidationError as exc:
            problems.append(LineProblem(exc.line_id if exc.line_id is not None else config.id, exc.field, exc.message))
    if not problems:
        try:
            validate_lines(configs)
        except DialplanValidationError as exc:
            problems.append(LineProblem(exc.line_id, exc.field, exc.message))
    if problems:
        raise DialplanInvalid(problems)
    return configs


def checksum(rendered: RenderedDialplan) -> str:
    """SHA-256 of both files (length-prefixed, so moving text from one file to the other changes it)."""
    digest = hashlib.sha256()
    for data in files.as_bytes(rendered).values():
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def unified_diff(old: RenderedDialplan | None, new: RenderedDialplan, old_label: str) -> str:
    """Both files' unified diffs, one after the other; empty when nothing changed."""
    parts: list[str] = []
    for name, attr in ((EXTENSIONS_FILE, "extensions"), (QUEUES_FILE, "queues")):
        before = getattr(old, attr) if old is not None else ""
        parts.extend(
            difflib.unified_diff(
                before.splitlines(keepends=True),
                getattr(new, attr).splitlines(keepends=True),
                fromfile=f"{name} ({old_label})",
                tofile=f"{name} (rendered now)",
            )
        )
    return "".join(parts)


def _text_of(version: DialplanVersion) -> RenderedDialplan:
    return RenderedDialplan(extensions=version.extensions_text, queues=version.queues_text)


async def preview(session: AsyncSession, where: DialplanTarget) -> Preview:
    """Render the PBX's lines from the database and compare with its applied version; writes nothing."""
    rendered = render(await lines_from_db(session, where))
    digest = checksum(rendered)
    applied = await repo.applied_version(session, where.pbx_id, first=where.first)
    if applied is None:
        diff = unified_diff(None, rendered, "nothing applied yet")
    else:
        diff = unified_diff(_text_of(applied), rendered, f"version {applied.id}, applied")
    return Preview(
        rendered=rendered,
        checksum=digest,
        applied_version=applied,
        diff=diff,
        pending=applied is None or applied.checksum != digest,
    )


# --- AMI --------------------------------------------------------------------------------------------------------


def command_failure(response: Any) -> str | None:
    """Why a ``Command`` action's answer is not a success, or None.

    Asterisk answers ``Response: Success`` even when the CLI command itself failed (``module reload`` of a module
    that refuses) and puts the CLI text in ``Output:`` lines (Asterisk 13+) or, before 13, in the body of a
    ``Response: Follows``; so the text is read too.
    """
    first = response[0] if isinstance(response, list) else response
    output = "\n".join(
        part.strip() for part in (str(first.get("Output") or ""), str(getattr(first, "content", "") or "")) if part
    ).strip()
    if str(first.get("Response", "")) == "Error":
        return f"Asterisk answered Response: Error ({output or first.get('Message') or 'no reason given'})"
    if _FAILURE_OUTPUT.search(output):
        return f"Asterisk said: {output}"
    return None


async def reload_pbx(connection: AmiConnection) -> str | None:
    """Send the reloads in order, stopping at the first failure; None when Asterisk confirmed every one."""
    for command in RELOAD_COMMANDS:
        try:
            response = await connection.send({"Action": "Command", "Command": command}, timeout=RELOAD_TIMEOUT_S)
        except ActionRefused as exc:
            # For Command, Message is only "Command output follows"; the Output lines are not kept by the refusal.
            detail = exc.message if exc.message and exc.message != "Command output follows" else "the command failed"
            return f"{command}: Asterisk answered Response: Error ({detail})"
        except TimeoutError:
            return f"{command}: no answer from Asterisk within {RELOAD_TIMEOUT_S:.0f} s"
        except (ConnectionLost, OSError) as exc:
            return f"{command}: the AMI connection failed ({exc})"
        problem = command_failure(response)
        if problem is not None:
            return f"{command}: {problem}"
    return None


def _connection(runtime: Runtime, pbx_id: str) -> AmiConnection:
    listener = runtime.listeners.get(pbx_id)
    if listener is None or not listener.connection.connected:
        raise PbxNotConnected(
            f"PBX {pbx_id} is not connected, so the dialplan cannot be reloaded; nothing was written. "
            "Check GET /api/pbx and try again once it is connected.",
            details={"pbx_id": pbx_id},
        )
    return listener.connection


# --- apply / rollback ---------------------------------------------------------------------------------------------

_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


def _apply_lock(directory: Path) -> asyncio.Lock:
    """One apply at a time per directory (in this process: only the process holding the listener can apply)."""
    per_loop = _locks.setdefault(asyncio.get_running_loop(), {})
    key = str(directory.resolve())
    lock = per_loop.get(key)
    if lock is None:
        lock = per_loop[key] = asyncio.Lock()
    return lock


async def apply(runtime: Runtime, author_id: int | None, pbx_id: str | None = None) -> ApplyResult:
    """Render the committed lines of the PBX (default: the first) and put them in force there (see the module
    docstring for the steps).

    Raises ``UnknownPbx`` (422) for a PBX that is not configured, :class:`DialplanInvalid` (422) for a line that
    cannot be rendered and :class:`PbxNotConnected` (503) when this process is not connected to the PBX; all before
    anything is stored or written.
    """
    where = target(runtime.settings, pbx_id)
    async with _apply_lock(where.directory):
        async with runtime.sessions() as session:
            rendered = render(await lines_from_db(session, where))
        connection = _connection(runtime, where.pbx_id)
        return await _install(
            runtime, where, connection, rendered, author_id=author_id, action="apply", rollback_of=None
        )


async def rollback(runtime: Runtime, version_id: int, author_id: int | None) -> ApplyResult:
    """Put an earlier version's stored text back in force on its own PBX, byte for byte, as a new version."""
    async with runtime.sessions() as session:
        old = await repo.get_version(session, version_id)
    if old is None:
        raise NotFound(f"Dialplan version {version_id} does not exist.", details={"version": version_id})
    pbx_id = PbxIds.of(runtime.settings).shown(old.pbx_id)
    if pbx_id not in runtime.settings.pbx_ids:
        raise Conflict(
            f"Dialplan version {version_id} belongs to PBX {pbx_id}, which is no longer configured.",
            details={"version": version_id, "pbx_id": pbx_id},
        )
    where = target(runtime.settings, pbx_id)
    async with _apply_lock(where.directory):
        async with runtime.sessions() as session:  # read again: an apply may have finished it meanwhile
            old = await repo.get_version(session, version_id)
        if old is None:  # deleted under us: nothing in hotline deletes versions
            raise NotFound(f"Dialplan version {version_id} does not exist.", details={"version": version_id})
        if old.applied_at is None:
            raise Conflict(
                f"Dialplan version {version_id} was never in force (it is {old.status}); "
                "roll back to a version Asterisk accepted.",
                details={"version": version_id, "status": old.status},
            )
        rendered = _text_of(old)
        if checksum(rendered) != old.checksum:
            raise Conflict(
                f"The stored text of dialplan version {version_id} does not match its checksum; it is not re-applied.",
                details={"version": version_id},
            )
        connection = _connection(runtime, where.pbx_id)
        return await _install(
            runtime, where, connection, rendered, author_id=author_id, action="rollback", rollback_of=version_id
        )


async def _install(
    runtime: Runtime,
    where: DialplanTarget,
    connection: AmiConnection,
    rendered: RenderedDialplan,
    *,
    author_id: int | None,
    action: str,
    rollback_of: int | None,
) -> ApplyResult:
    directory = where.directory
    digest = checksum(rendered)
    wanted = files.as_bytes(rendered)
    previous_files = await asyncio.to_thread(files.read_snapshot, directory)

    async with runtime.sessions() as session:
        await repo.fail_stale_pending(session, STALE_PENDING, where.pbx_id, first=where.first)
        current = await repo.applied_version(session, where.pbx_id, first=where.first)
        if current is not None and current.checksum == digest and previous_files == wanted:
            await session.commit()
            return ApplyResult(
                "unchanged",
                current,
                f"Unchanged: the text is that of version {current.id}, already in force and on disk; "
                "no reload was sent.",
            )
        version = await repo.add_version(
            session,
            DialplanVersion(
                pbx_id=where.stored_id,
                author_id=author_id,
                extensions_text=rendered.extensions,
                queues_text=rendered.queues,
                checksum=digest,
                status="pending",
                result="",
            ),
        )
        after: dict[str, Any] = {"version": version.id, "checksum": digest, "pbx_id": where.pbx_id}
        if rollback_of is not None:
            after["rollback_of"] = rollback_of
        await repo.add_audit(
            session,
            user_id=author_id,
            action=action,
            entity_id=str(version.id),
            before={"version": current.id, "checksum": current.checksum} if current is not None else None,
            after=after,
        )
        await session.commit()
        version_id = version.id
    previous_id = current.id if current is not None else None
    in_force = f"version {previous_id} stays in force" if previous_id is not None else "no version is in force"

    try:
        await asyncio.to_thread(files.write_files, directory, wanted)
    except OSError as exc:
        restored = await _restore(directory, previous_files)
        reason = f"could not write the files into {directory}: {exc.strerror or exc}. {restored}; {in_force}."
        return await _finish(runtime, where, version_id, ok=False, result=reason)

    problem = await reload_pbx(connection)
    if problem is None:
        label = f"rolled back to the text of version {rollback_of}" if rollback_of is not None else "applied"
        return await _finish(
            runtime,
            where,
            version_id,
            ok=True,
            result=f"Version {version_id} {label}: files written, {' and '.join(RELOAD_COMMANDS)} confirmed.",
        )

    restored = await _restore(directory, previous_files)
    if restored.startswith("the previous files were restored"):
        again = await reload_pbx(connection)
        restored += " and reloaded" if again is None else f", but reloading them failed too: {again}"
    reason = f"{problem}. {restored[0].upper()}{restored[1:]}; {in_force}."
    log.warning("dialplan version %s (PBX %s) failed: %s", version_id, where.pbx_id, reason)
    return await _finish(runtime, where, version_id, ok=False, result=reason)


async def _restore(directory: Path, previous_files: files.Snapshot) -> str:
    try:
        await asyncio.to_thread(files.write_files, directory, previous_files)
    except OSError as exc:
        log.error("could not restore the previous dialplan files in %s: %s", directory, exc)
        return f"the previous files could NOT be restored ({exc.strerror or exc})"
    return "the previous files were restored byte for byte"


async def _finish(runtime: Runtime, where: DialplanTarget, version_id: int, *, ok: bool, result: str) -> ApplyResult:
    async with runtime.sessions() as session:
        if ok:
            await repo.supersede_applied(session, except_id=version_id, pbx_id=where.pbx_id, first=where.first)
            await repo.mark(session, version_id, status="applied", result=result, applied_at=datetime.now(UTC))
        else:
            await repo.mark(session, version_id, status="failed", result=result, applied_at=None)
        version = await repo.get_version(session, version_id)
        await session.commit()
    if version is None:  # deleted under us: nothing in hotline deletes versions
        raise NotFound(f"Dialplan version {version_id} disappeared while it was being applied.")
    return ApplyResult("applied" if ok else "failed", version, result)
