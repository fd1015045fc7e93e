"""Rendering of the per-line parts of the dialplan: ``[hotline-inbound]`` and one queue per line.

Pure: lines in, text out. The caller writes the text atomically, has Asterisk validate it, then sends
``dialplan reload`` / ``module reload app_queue.so``. Output is deterministic (lines sorted by id, nothing
time-dependent) so an unchanged configuration renders byte-for-byte the same and needs no reload.

Templates are ``string.Template`` files from ``dialplan/templates/`` (copied into the wheel as
``hotline/dialplan/templates``); substituted values are never re-read as template syntax.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Template

from hotline.dialplan.validate import LineConfig, validate_lines

EXTENSIONS_FILE = "extensions_rendered.conf"
QUEUES_FILE = "queues_rendered.conf"
INBOUND_CONTEXT = "hotline-inbound"
LINE_SUBROUTINE = "hotline-line"


@dataclass(frozen=True, slots=True)
class RenderedDialplan:
    """The two rendered include files, as text (UTF-8 when written: line names may hold non-ASCII letters)."""

    extensions: str
    queues: str


@dataclass(frozen=True, slots=True)
class Templates:
    """The four templates: file headers and one block per line for each file."""

    extensions: Template
    extensions_line: Template
    queues: Template
    queue: Template


def default_templates_dir() -> Path:
    """Where the templates are: inside the installed package, else in the source checkout's ``dialplan/``."""
    packaged = Path(__file__).with_name("templates")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "dialplan" / "templates"


def load_templates(directory: Path | None = None) -> Templates:
    """Read the templates from ``directory`` (default: :func:`default_templates_dir`)."""
    base = directory if directory is not None else default_templates_dir()

    def read(name: str) -> Template:
        return Template((base / name).read_text(encoding="utf-8"))

    return Templates(
        extensions=read("extensions_rendered.conf.tmpl"),
        extensions_line=read("extensions_line.tmpl"),
        queues=read("queues_rendered.conf.tmpl"),
        queue=read("queue.tmpl"),
    )


@lru_cache(maxsize=1)
def _default_templates() -> Templates:
    return load_templates()


def render(lines: Sequence[LineConfig], templates: Templates | None = None) -> RenderedDialplan:
    """Validate ``lines`` and render both include files.

    Raises :class:`~hotline.dialplan.validate.DialplanValidationError` before anything is rendered when one
    value could not be written safely.
    """
    validate_lines(lines)
    tpl = templates if templates is not None else _default_templates()
    ordered = sorted(lines, key=lambda line: line.id)
    extension_blocks = [tpl.extensions_line.substitute(_line_values(line)).strip("\n") for line in ordered]
    queue_blocks = [tpl.queue.substitute(_line_values(line)).strip("\n") for line in ordered]
    extensions = tpl.extensions.substitute(lines="\n\n".join(extension_blocks)).rstrip("\n") + "\n"
    queues = tpl.queues.substitute(queues="\n\n".join(queue_blocks)).rstrip("\n") + "\n"
    return RenderedDialplan(extensions=extensions, queues=queues)


def _line_values(line: LineConfig) -> dict[str, str]:
    """Template values of one line, as the static ``[hotline-line]`` subroutine reads them."""
    return {
        "id": str(line.id),
        "number": line.number,
        "name": line.name.strip(),
        "max_channels": str(line.max_channels or 0),  # 0 = no limit
        "closed_action": line.closed_action,
        "forward_to": line.forward_to or "",
        "overflow_to": line.overflow_to or "",
        "recording": "1" if line.recording else "0",
        "queue_timeout_s": str(line.queue_timeout_s),
        "strategy": line.strategy,
        "member_ring_timeout_s": str(line.member_ring_timeout_s),
    }
