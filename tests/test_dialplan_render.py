"""Rendering of the per-line dialplan and queues: golden files, injection attempts, the contract with the
static subroutine, asterisklint over the whole dialplan, and the AMI user's event filters against the real
captures.

Set HOTLINE_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change (then review the diff).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hotline.dialplan import (
    QUEUE_STRATEGIES,
    DialplanValidationError,
    LineConfig,
    RenderedDialplan,
    queue_name,
    render,
    validate_lines,
)

ROOT = Path(__file__).resolve().parents[1]
DIALPLAN_DIR = ROOT / "dialplan"
GOLDEN_DIR = Path(__file__).with_name("golden") / "dialplan"

# The lines behind ../shared/ami-captures (README "The PBX behind the captures"), plus a closed-forward line.
FIXTURE_LINES = (
    LineConfig(id=1, number="5551000", name="Linia principală"),
    LineConfig(id=2, number="5552000", name="Admitere 2026", max_channels=2),
    LineConfig(id=3, number="5553000", name="Burse_studenti", overflow_to="0219990000"),
    LineConfig(
        id=4,
        number="+40215554000",
        name="Ștefan Țăranu-Şerbănescu v.2",
        closed_action="forward",
        forward_to="0219990000",
        recording=False,
        strategy="ringall",
        queue_timeout_s=45,
        member_ring_timeout_s=15,
    ),
)


def _rendered() -> RenderedDialplan:
    return render(FIXTURE_LINES)


@pytest.mark.parametrize(
    ("attr", "filename"), [("extensions", "extensions_rendered.conf"), ("queues", "queues_rendered.conf")]
)
def test_render_matches_golden_file(attr: str, filename: str) -> None:
    text: str = getattr(_rendered(), attr)
    golden = GOLDEN_DIR / filename
    if os.environ.get("HOTLINE_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(text.encode("utf-8"))
    assert text.encode("utf-8") == golden.read_bytes()


def test_render_is_deterministic_whatever_the_input_order() -> None:
    assert render(tuple(reversed(FIXTURE_LINES))) == _rendered()
    assert render(FIXTURE_LINES) == _rendered()


def test_rendered_extensions_follow_the_contract() -> None:
    text = _rendered().extensions
    assert text.count("[hotline-inbound]") == 1
    assert re.findall(r"^\[([^\]]+)\]", text, re.M) == ["hotline-inbound"]
    for line in FIXTURE_LINES:
        assert f"exten => {line.number},1," in text
        assert f" same => n,Gosub(hotline-line,s,1({line.id}))\n same => n,Hangup()\n" in text
    assert "exten => 5552000,1,Set(HOTLINE_MAX_CHANNELS=2)\n" in text
    assert " same => n,Set(HOTLINE_OVERFLOW_TO=0219990000)" in text


def test_rendered_queues_one_per_line() -> None:
    text = _rendered().queues
    sections = re.findall(r"^\[([^\]]+)\]", text, re.M)
    assert sections == [queue_name(line.id) for line in FIXTURE_LINES]
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped and not stripped.startswith(";") and not stripped.startswith("["):
            assert re.fullmatch(r"[a-z-]+ = [A-Za-z0-9]+", stripped), raw
    assert "strategy = rrmemory\ntimeout = 8\n" in text


def test_empty_configuration_renders_an_empty_context() -> None:
    rendered = render([])
    assert rendered.extensions.rstrip().endswith("[hotline-inbound]")
    assert "[hotline-" not in rendered.queues.replace("hotline-<line id>", "")


def test_unicode_name_goes_in_a_comment_only() -> None:
    text = _rendered().extensions
    name = FIXTURE_LINES[3].name
    (where,) = [raw for raw in text.splitlines() if name in raw]
    assert where == f"; line 4: {name}"


# --- validation ---------------------------------------------------------------------------------------------

_VALID = LineConfig(
    id=7, number="5557000", name="Valid line", forward_to="0219990000", overflow_to="0219990001"
)
_STRING_FIELDS = ("number", "name", "closed_action", "forward_to", "overflow_to", "strategy")
_INJECTIONS = (
    "\n",
    "\r",
    "\nexten => s,1,System(rm -rf /)",
    "\n[evil]\nexten => _X.,1,Dial(SIP/premium)",
    ";",
    ",",
    ")",
    "(",
    "${SHELL(rm -rf /)}",
    "$[1+1]",
    "[evil]",
    '"',
    "\\",
    "\\n",
)


@pytest.mark.parametrize("field", _STRING_FIELDS)
@pytest.mark.parametrize("payload", _INJECTIONS, ids=repr)
def test_injection_in_every_string_field_is_rejected(field: str, payload: str) -> None:
    for value in (payload, getattr(_VALID, field) + payload, payload + getattr(_VALID, field)):
        line = dataclasses.replace(_VALID, **{field: value})
        with pytest.raises(DialplanValidationError) as caught:
            render([line])
        assert caught.value.field == field
        assert caught.value.line_id == 7
        assert field in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"number": ""}, "number"),
        ({"number": "12345678901234567890123"}, "number"),
        ({"number": "555 1000"}, "number"),
        ({"number": "_X."}, "number"),
        ({"number": "++5551000"}, "number"),
        ({"number": "５５５"}, "number"),  # full-width digits
        ({"number": 5551000}, "number"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 81}, "name"),
        ({"name": "Line <1>"}, "name"),
        ({"name": "Line $1"}, "name"),
        ({"name": "Line\t1"}, "name"),
        ({"name": "Line @1"}, "name"),
        ({"closed_action": "transfer"}, "closed_action"),
        ({"closed_action": "forward", "forward_to": None}, "forward_to"),
        ({"forward_to": "outside"}, "forward_to"),
        ({"overflow_to": "0219990000@outside"}, "overflow_to"),
        ({"strategy": "roundrobin"}, "strategy"),
        ({"strategy": "RRMEMORY"}, "strategy"),
        ({"max_channels": 0}, "max_channels"),
        ({"max_channels": 1001}, "max_channels"),
        ({"max_channels": True}, "max_channels"),
        ({"max_channels": "2"}, "max_channels"),
        ({"queue_timeout_s": 0}, "queue_timeout_s"),
        ({"queue_timeout_s": 3601}, "queue_timeout_s"),
        ({"queue_timeout_s": 20.5}, "queue_timeout_s"),
        ({"member_ring_timeout_s": 0}, "member_ring_timeout_s"),
        ({"member_ring_timeout_s": 301}, "member_ring_timeout_s"),
        ({"recording": 1}, "recording"),
        ({"id": 0}, "id"),
        ({"id": -1}, "id"),
        ({"id": "1"}, "id"),
    ],
)
def test_invalid_values_are_rejected(changes: dict[str, object], field: str) -> None:
    line = dataclasses.replace(_VALID, **changes)  # type: ignore[arg-type]
    with pytest.raises(DialplanValidationError) as caught:
        render([line])
    assert caught.value.field == field


def test_duplicate_numbers_are_rejected() -> None:
    clash = dataclasses.replace(FIXTURE_LINES[1], id=9, number=FIXTURE_LINES[0].number)
    with pytest.raises(DialplanValidationError) as caught:
        render([*FIXTURE_LINES, clash])
    assert caught.value.field == "number"
    assert "line 1" in caught.value.message


def test_duplicate_ids_are_rejected() -> None:
    twin = dataclasses.replace(FIXTURE_LINES[0], number="5559999")
    with pytest.raises(DialplanValidationError) as caught:
        validate_lines([FIXTURE_LINES[0], twin])
    assert caught.value.field == "id"


@pytest.mark.parametrize("strategy", sorted(QUEUE_STRATEGIES))
def test_every_allowed_strategy_renders(strategy: str) -> None:
    assert f"strategy = {strategy}\n" in render([dataclasses.replace(_VALID, strategy=strategy)]).queues


def test_accepted_edge_values() -> None:
    lines = [
        dataclasses.replace(_VALID, id=1, number="+" + "9" * 20, name="Ă.ș_ț-1 x", max_channels=1000),
        dataclasses.replace(_VALID, id=2, number="1", queue_timeout_s=3600, member_ring_timeout_s=300),
    ]
    render(lines)


# --- the static subroutine and the rendered part agree ------------------------------------------------------


def test_subroutine_reads_only_variables_the_rendered_part_sets() -> None:
    static = (DIALPLAN_DIR / "extensions_hotline.conf").read_text(encoding="utf-8")
    code = "\n".join(raw for raw in static.splitlines() if not raw.lstrip().startswith(";"))
    read = set(re.findall(r"\$\{(HOTLINE_[A-Z_]+)\}", code))
    written = set(re.findall(r"Set\((HOTLINE_[A-Z_]+)=", _rendered().extensions))
    # HOTLINE_OUTBOUND_CONTEXT is the administrator's optional global, defaulted in the subroutine.
    assert read - written == {"HOTLINE_OUTBOUND_CONTEXT"}
    assert written <= read


def test_subroutine_announces_only_contract_routes() -> None:
    static = (DIALPLAN_DIR / "extensions_hotline.conf").read_text(encoding="utf-8")
    code = "\n".join(raw for raw in static.splitlines() if not raw.lstrip().startswith(";"))
    events = re.findall(r"UserEvent\((HotlineRoute,[^)\n]*)\)", code)
    routes = {re.search(r"Route: (\w+)", event).group(1) for event in events}  # type: ignore[union-attr]
    assert routes == {"queue", "closed", "busy", "overflow"}
    for event in events:
        assert re.fullmatch(
            r"HotlineRoute,Line: \$\{ARG1\},Route: (queue|closed|busy|overflow)"
            r"(,Target: \$\{HOTLINE_[A-Z_]+\})?",
            event,
        ), event
    assert "Queue(hotline-${ARG1},,,,${HOTLINE_QUEUE_TIMEOUT})" in code
    assert '${DB(hotline/open/${ARG1})}" = "0"' in code
    assert re.findall(r"^\[([^\]]+)\]", code, re.M) == ["hotline-line"]


# --- asterisklint -------------------------------------------------------------------------------------------


def test_asterisklint_finds_no_issue(tmp_path: Path) -> None:
    pytest.importorskip("asterisklint", reason="asterisklint is not installed (pip install asterisklint)")
    etc = tmp_path / "asterisk"
    (etc / "hotline").mkdir(parents=True)
    (etc / "hotline" / "extensions_hotline.conf").write_bytes(
        (DIALPLAN_DIR / "extensions_hotline.conf").read_bytes()
    )
    (etc / "hotline" / "extensions_rendered.conf").write_bytes(_rendered().extensions.encode("utf-8"))
    # As the Docker image lays it out, with the "outside" context a deployment adds for its trunk.
    (etc / "extensions.conf").write_text(
        "[general]\nstatic=yes\nwriteprotect=yes\n\n[globals]\n\n"
        "#include hotline/extensions_hotline.conf\n#tryinclude hotline/extensions_rendered.conf\n\n"
        "[outside]\nexten => _X.,1,NoOp(to the trunk)\n same => n,Hangup()\n",
        encoding="utf-8",
    )
    runner = "import os, sys; from asterisklint.main import main; sys.exit(main(sys.argv[1:], os.environ))"
    result = subprocess.run(
        [sys.executable, "-c", runner, "dialplan-check", str(etc / "extensions.conf")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ALINT_IGNORE": ""},
        check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert not re.search(r"\b[EW]_[A-Z_]+", report), report
    shown = subprocess.run(
        [sys.executable, "-c", runner, "dialplan-show", str(etc / "extensions.conf")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "Context 'hotline-inbound'" in shown
    assert "Context 'hotline-line'" in shown
    for line in FIXTURE_LINES:
        assert f"'{line.number}' =>" in shown


# --- the AMI user's event filters, checked against what Asterisk really sent --------------------------------


def _captures_dir() -> Path:
    configured = os.environ.get("HOTLINE_CAPTURES_DIR")
    return Path(configured) if configured else ROOT.parent / "shared" / "ami-captures"


def _manager_filters() -> list[re.Pattern[str]]:
    """The ``!`` filters of manager_hotline.conf as Python patterns (POSIX ERE: '.' matches newlines too)."""
    patterns = []
    for raw in (DIALPLAN_DIR / "manager_hotline.conf").read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"eventfilter = !(.+)", raw)
        if match:
            posix = match.group(1).replace("[:space:]", r"\s")
            patterns.append(re.compile(posix, re.S))
    return patterns


def test_manager_filters_drop_only_unused_events() -> None:
    captures = _captures_dir()
    if not captures.is_dir():
        pytest.skip(f"AMI captures not found at {captures}")
    filters = _manager_filters()
    assert len(filters) >= 5
    dropped_names: set[str] = set()
    kept_varsets: set[str] = set()
    for path in sorted(captures.glob("*.jsonl")):
        if path.name == "expected-calls.jsonl":
            continue
        for raw in path.read_text(encoding="utf-8").splitlines():
            frame = json.loads(raw)
            data: str = frame["data"]
            if frame["dir"] != "recv" or not data.startswith("Event: "):
                continue
            event = data.split("\r\n", 1)[0].removeprefix("Event: ")
            dropped = any(pattern.search(data) for pattern in filters)
            if event == "VarSet":
                variable = re.search(r"\r\nVariable: ([^\r]*)\r\n", data).group(1)  # type: ignore[union-attr]
                assert dropped == (variable not in {"QUEUESTATUS", "MIXMONITOR_FILENAME"}), variable
                if not dropped:
                    kept_varsets.add(variable)
            elif dropped:
                dropped_names.add(event)
    assert dropped_names == {"Newexten", "DeviceStateChange", "MusicOnHoldStart", "MusicOnHoldStop"}
    assert kept_varsets == {"QUEUESTATUS", "MIXMONITOR_FILENAME"}


def test_manager_user_reads_the_classes_of_the_captured_events() -> None:
    text = (DIALPLAN_DIR / "manager_hotline.conf").read_text(encoding="utf-8")
    read = set(re.search(r"^read = (.+)$", text, re.M).group(1).split(","))  # type: ignore[union-attr]
    write = set(re.search(r"^write = (.+)$", text, re.M).group(1).split(","))  # type: ignore[union-attr]
    assert {"system", "call", "agent", "user"} <= read
    assert {"system", "call", "agent", "command"} <= write
    assert "all" not in read | write
    assert "originate" not in write
    assert re.search(r"^timestampevents = yes$", text, re.M)
    assert not re.search(r"^secret", text, re.M)
