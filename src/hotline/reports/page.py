"""The first-week report as one HTML page a supervisor reads on screen and prints: headline figures, findings,
inline SVG charts and tables. No JavaScript, no external resource; every value from the database is escaped.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from hotline.reports import svg

_CSS = """
:root { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f; }
body { margin: 0 auto; max-width: 1100px; padding: 1rem 1.5rem; line-height: 1.4; }
h1 { font-size: 1.6rem; margin: .2rem 0; } h2 { font-size: 1.2rem; margin-top: 1.6rem; border-bottom: 1px solid #ccc; }
.muted { color: #666; font-size: .9rem; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: .6rem; margin: 1rem 0; }
.figure { border: 1px solid #ddd; border-radius: 6px; padding: .5rem .7rem; }
.figure .value { font-size: 1.4rem; font-weight: 600; } .figure .label { font-size: .8rem; color: #555; }
.findings { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.findings li { margin-bottom: .6rem; } .evidence { font-size: .8rem; color: #555; }
.strengths h3 { color: #2e7d32; } .weaknesses h3 { color: #b23c17; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
svg.chart { width: 100%; height: auto; border: 1px solid #eee; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; margin: .5rem 0; }
th, td { border-bottom: 1px solid #e3e3e3; padding: .25rem .4rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.table-wrap { overflow-x: auto; }
.findings > div, .charts > svg { min-width: 0; } li, code { overflow-wrap: anywhere; }
@media (max-width: 720px) {
  body { padding: .5rem; } .findings, .charts { grid-template-columns: 1fr; }
  .figures { grid-template-columns: repeat(2, 1fr); }
}
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; } .no-print { display: none; }
  h2 { break-after: avoid; } .figure, svg.chart, table, li { break-inside: avoid; }
  .charts { grid-template-columns: 1fr 1fr; }
}
"""


def _pct(value: Any) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _secs(value: Any) -> str:
    return "–" if value is None else f"{value:.0f} s"


def _e(value: Any) -> str:
    return escape("–" if value is None else str(value))


def _figure(label: str, value: str) -> str:
    return f'<div class="figure"><div class="value">{escape(value)}</div><div class="label">{escape(label)}</div></div>'


def _finding(f: dict[str, Any]) -> str:
    evidence = "; ".join(f"{k}: {v}" for k, v in f["evidence"].items() if not isinstance(v, list | dict))
    calls = urlencode({k: v for k, v in f["calls"].items() if v is not None})
    return (
        f'<li>{escape(f["text"])}<div class="evidence">{escape(evidence)}</div>'
        f'<div class="evidence">calls: <code>/api/calls?{escape(calls)}</code></div></li>'
    )


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def render(summary: dict[str, Any], found: dict[str, Any], *, title: str, generated_at: datetime) -> str:
    t = summary["totals"]
    period = summary["period"]
    cost_total = ", ".join(f"{c['total']} {c['currency']}" for c in summary["costs"]["lines"]) or "–"
    figures = [
        ("calls offered", str(t["offered"])),
        ("offered in hours", str(t["offered_in_hours"])),
        ("answered", str(t["answered"])),
        ("service level", _pct(t["service_level"])),
        ("average wait (ASA)", _secs(t["asa_s"])),
        ("handling time (AHT)", _secs(t["aht_s"])),
        ("abandoned", f"{t['abandoned']} ({_pct(t['abandonment_rate'])})"),
        ("short abandons", str(t["short_abandoned"])),
        ("while closed", str(t["closed"])),
        ("longest wait", _secs(t["longest_wait_s"])),
        ("occupancy", _pct(summary["occupancy"]["team"])),
        ("callbacks", str(t["callbacks"])),
    ]
    hours = summary["by_hour_of_day"]
    hour_labels = [f"{h['hour']:02d}" for h in hours]
    charts = [
        svg.bar_chart(
            "Calls per hour of day",
            hour_labels,
            [("offered", [h["offered"] for h in hours]), ("answered", [h["answered"] for h in hours])],
            chart_id="c-hours",
        ),
        svg.line_chart(
            "Service level per hour of day",
            hour_labels,
            [("service level", [None if h["service_level"] is None else h["service_level"] * 100 for h in hours])],
            unit="%",
            top=100,
            chart_id="c-sl",
        ),
        svg.bar_chart(
            "Waits",
            summary["waits"]["bins"],
            [("answered", summary["waits"]["answered"]), ("abandoned", summary["waits"]["abandoned"])],
            chart_id="c-waits",
        ),
        svg.bar_chart(
            "Calls per line",
            [line["name"] or "?" for line in summary["by_line"]],
            [
                ("offered", [line["offered"] for line in summary["by_line"]]),
                ("answered", [line["answered"] for line in summary["by_line"]]),
            ],
            chart_id="c-lines",
        ),
        svg.bar_chart(
            "Answered calls per operator",
            [o["operator"] for o in summary["by_operator"]],
            [("answered", [o["answered"] for o in summary["by_operator"]])],
            chart_id="c-ops",
        ),
        svg.bar_chart(
            "Talk time per topic (minutes)",
            [tp["topic"] for tp in summary["by_topic"]],
            [("talk", [tp["talk_s"] / 60 for tp in summary["by_topic"]])],
            chart_id="c-topics",
        ),
    ]
    lines_table = _table(
        ["line", "source", "offered", "answered", "SL", "abandoned", "closed", "ASA"],
        [
            [line["name"], line["source"], line["offered"], line["answered"], _pct(line["service_level"]),
             line["abandoned"], line["closed"], _secs(line["asa_s"])]
            for line in summary["by_line"]
        ],
    )  # fmt: skip
    ops_table = _table(
        ["operator", "answered", "AHT", "occupancy"],
        [[o["operator"], o["answered"], _secs(o["aht_s"]), _pct(o["occupancy"])] for o in summary["by_operator"]],
    )
    cost_table = _table(
        ["line", "tariff", "usage", "fee", "total", "per answered call"],
        [
            [c["line"], c["tariff"], c["usage"], c["fee"], f"{c['total']} {c['currency']}", c["per_answered"]]
            for c in summary["costs"]["lines"] + summary["costs"]["comparisons"]
        ],
    )
    strengths = "".join(_finding(f) for f in found["strengths"]) or "<li>Nothing stands out yet.</li>"
    weaknesses = "".join(_finding(f) for f in found["weaknesses"]) or "<li>Nothing stands out yet.</li>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{_CSS}</style></head>
<body>
<header><h1>{escape(title)}</h1>
<p class="muted">{_e(period["from_local"][:16].replace("T", " "))} – {_e(period["to_local"][:16].replace("T", " "))}
({_e(period["timezone"])}); generated
{escape(generated_at.isoformat(timespec="seconds"))}. Telephony cost: {escape(cost_total)}.</p></header>
<section class="figures" aria-label="headline figures">{"".join(_figure(k, v) for k, v in figures)}</section>
<section class="findings">
<div class="strengths"><h3>What works</h3><ul>{strengths}</ul></div>
<div class="weaknesses"><h3>What to improve</h3><ul>{weaknesses}</ul></div>
</section>
<h2>Charts</h2><section class="charts">{"".join(charts)}</section>
<h2>Lines</h2>{lines_table}
<h2>Operators</h2>{ops_table}
<h2>Cost</h2>{cost_table}
</body></html>
"""
