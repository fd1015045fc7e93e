"""The per-line parts of Asterisk's configuration: validated line settings in, include files out.

The static subroutine they call lives in ``dialplan/extensions_hotline.conf``; the names both sides agree on
are in DESIGN.md ("Asterisk integration contract").
"""

from hotline.dialplan.render import (
    EXTENSIONS_FILE,
    INBOUND_CONTEXT,
    LINE_SUBROUTINE,
    QUEUES_FILE,
    RenderedDialplan,
    Templates,
    default_templates_dir,
    load_templates,
    render,
)
from hotline.dialplan.validate import (
    CLOSED_ACTIONS,
    QUEUE_STRATEGIES,
    ClosedAction,
    DialplanValidationError,
    LineConfig,
    validate_line,
    validate_lines,
)
from hotline.domain.routing import queue_name  # one definition of a line's queue name (DESIGN's contract)

__all__ = [
    "CLOSED_ACTIONS",
    "EXTENSIONS_FILE",
    "INBOUND_CONTEXT",
    "LINE_SUBROUTINE",
    "QUEUES_FILE",
    "QUEUE_STRATEGIES",
    "ClosedAction",
    "DialplanValidationError",
    "LineConfig",
    "RenderedDialplan",
    "Templates",
    "default_templates_dir",
    "load_templates",
    "queue_name",
    "render",
    "validate_line",
    "validate_lines",
]
