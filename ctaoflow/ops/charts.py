"""Small static SVG charts for reports: stacked bars and stacked columns, inline in HTML.

No dependency and no network: each chart is one ``<svg>`` string. Every segment carries
its number in a ``<title>`` (a tooltip) and in ``data-count``, so a reader (or a test)
sees the ledger's counts exactly.
"""

from __future__ import annotations

import datetime as dt
from html import escape

COLOURS = {"Unused": "#b0b7c0", "Assigned": "#5b8fd6", "Processed": "#3c9a5f",
           "Problematic": "#d9534f", "MaxReset": "#8b1e1e", "Removed": "#e2e2e2",
           "Submitting": "#a9c6ee", "Submitted": "#5b8fd6", "Done": "#3c9a5f",
           "Failed": "#d9534f", "Killed": "#e8a33d"}
FONT = 'font-family="sans-serif" font-size="11"'
Counts = dict[str, dict[str, int]]  # row or column label -> key -> count


def _colour(key: str) -> str:
    return COLOURS.get(key, "#888888")


def _legend(keys: list[str], y: int, colours: dict[str, str] = COLOURS) -> str:
    items, x = [], 0
    for key in keys:
        items.append(f'<rect x="{x}" y="{y}" width="10" height="10" '
                     f'fill="{colours.get(key, "#888888")}"/>'
                     f'<text x="{x + 14}" y="{y + 9}" {FONT}>{escape(key)}</text>')
        x += 24 + 7 * len(key)
    return "".join(items)


def _segment(x: float, y: float, w: float, h: float, label: str, key: str, n: int) -> str:
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
            f'fill="{_colour(key)}" data-key="{escape(key)}" data-count="{n}">'
            f"<title>{escape(label)}: {escape(key)} {n}</title></rect>")


def _keys(counts: Counts, order: tuple[str, ...]) -> list[str]:
    present = {k for row in counts.values() for k, n in row.items() if n}
    return [k for k in order if k in present] + sorted(present - set(order))


def bars(title: str, counts: Counts, order: tuple[str, ...] = (), width: int = 640) -> str:
    """Horizontal stacked bars: one bar per row label, its total at its end."""
    keys, label_w, bar_h = _keys(counts, order), 180, 18
    top = 36
    height = top + bar_h * len(counts) * 3 // 2 + 8
    scale = (width - label_w - 60) / max([sum(r.values()) for r in counts.values()] + [1])
    parts = [f'<text x="0" y="12" {FONT} font-weight="bold">{escape(title)}</text>',
             _legend(keys, 18)]
    for i, (label, row) in enumerate(counts.items()):
        y, x = top + i * bar_h * 3 // 2, float(label_w)
        parts.append(f'<text x="0" y="{y + 13}" {FONT}>{escape(label[:28])}</text>')
        for key in keys:
            if n := row.get(key, 0):
                parts.append(_segment(x, y, n * scale, bar_h, label, key, n))
                x += n * scale
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 13}" {FONT}>{sum(row.values())}</text>')
    return _svg(title, width, height, parts)


def columns(title: str, counts: Counts, order: tuple[str, ...] = (), width: int = 640,
            height: int = 200) -> str:
    """Vertical stacked columns, left to right in the order of ``counts`` (time bins)."""
    keys, bottom, top = _keys(counts, order), height - 30, 36
    step = (width - 40) / max(len(counts), 1)
    scale = (bottom - top) / max([sum(c.values()) for c in counts.values()] + [1])
    parts = [f'<text x="0" y="12" {FONT} font-weight="bold">{escape(title)}</text>',
             _legend(keys, 18), f'<line x1="30" y1="{bottom}" x2="{width}" y2="{bottom}" '
             'stroke="#444"/>']
    every = max(1, len(counts) // 6)  # a few time labels, not all
    for i, (label, column) in enumerate(counts.items()):
        x, y = 34 + i * step, float(bottom)
        for key in keys:
            if n := column.get(key, 0):
                y -= n * scale
                parts.append(_segment(x, y, min(step * 0.8, 40), n * scale, label, key, n))
        if i % every == 0:
            parts.append(f'<text x="{x:.1f}" y="{bottom + 14}" {FONT}>{escape(label)}</text>')
    return _svg(title, width, height, parts)


def _svg(title: str, width: int, height: int, parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" aria-label="{escape(title)}">'
            + "".join(parts) + "</svg>")


NICE_BINS = [dt.timedelta(minutes=m) for m in (1, 5, 15, 60, 360, 1440, 10080)]


def time_bins(events: list[tuple[dt.datetime, str]], most: int = 24) -> Counts:
    """(time, key) events counted per time bin, at most ``most`` bins of a round width,
    labelled by their start (UTC); empty bins between are kept."""
    if not events:
        return {}
    first, last = min(t for t, _ in events), max(t for t, _ in events)
    width = next((w for w in NICE_BINS if (last - first) / w < most), NICE_BINS[-1])
    origin = dt.datetime.min + (first - dt.datetime.min) // width * width
    count = int((last - origin) // width) + 1
    fmt = "%Y-%m-%d" if width >= NICE_BINS[5] else "%m-%d %H:%M"  # distinct labels
    bins: Counts = {(origin + i * width).strftime(fmt): {} for i in range(count)}
    labels = list(bins)
    for t, key in events:
        row = bins[labels[int((t - origin) // width)]]
        row[key] = row.get(key, 0) + 1
    return bins


STATUS_COLOURS = {"New": "#e2e2e2", "Active": "#5b8fd6", "Flush": "#a9c6ee",
                  "Stopped": "#e8a33d", "Completed": "#3c9a5f", "Removed": "#b0b7c0",
                  "Problems": "#d9534f"}


def graph(nodes: list[tuple[str, list[str]]], status: dict[str, str],
          links: dict[str, str] | None = None, width: int = 960) -> str:
    """The transformation graph left to right: ``nodes`` (name, parents) parents first,
    one column per wave, each box coloured by ``status[name]`` and linked to
    ``links[name]`` when given."""
    wave: dict[str, int] = {}
    for name, parents in nodes:
        wave[name] = 1 + max((wave[p] for p in parents if p in wave), default=-1)
    columns: dict[int, list[str]] = {}
    for name, _ in nodes:
        columns.setdefault(wave[name], []).append(name)
    box_w, box_h, gap_x, gap_y, top = 170, 34, 50, 14, 36
    width = max(width, len(columns) * (box_w + gap_x))
    height = top + max(len(c) for c in columns.values()) * (box_h + gap_y) + 24
    at = {name: (x * (box_w + gap_x), top + y * (box_h + gap_y))
          for x, names in columns.items() for y, name in enumerate(names)}
    parts = [f'<text x="0" y="12" {FONT} font-weight="bold">Transformations</text>',
             _legend([s for s in STATUS_COLOURS if s in set(status.values())], 18,
                     STATUS_COLOURS)]
    for name, parents in nodes:
        x, y = at[name]
        parts += [f'<line x1="{at[p][0] + box_w}" y1="{at[p][1] + box_h / 2}" x2="{x}" '
                  f'y2="{y + box_h / 2}" stroke="#888"/>' for p in parents if p in at]
    for name, _ in nodes:
        (x, y), state = at[name], status.get(name, "New")
        box = (f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="5" '
               f'fill="{STATUS_COLOURS.get(state, "#888888")}" data-status="{escape(state)}">'
               f'<title>{escape(name)}: {escape(state)}</title></rect>'
               f'<text x="{x + 6}" y="{y + 21}" {FONT}>{escape(name[:26])}</text>')
        href = (links or {}).get(name)
        parts.append(f'<a href="{escape(href)}">{box}</a>' if href else box)
    return _svg("Transformations", width, height, parts)


def cumulative(title: str, events: list[tuple[dt.datetime, str]], key: str,
               width: int = 640, height: int = 200) -> str:
    """The running total of ``key`` events over time (UTC): a production's progress."""
    times = sorted(t for t, k in events if k == key)
    bottom, left = height - 30, 40
    parts = [f'<text x="0" y="12" {FONT} font-weight="bold">{escape(title)}</text>',
             f'<line x1="{left}" y1="{bottom}" x2="{width}" y2="{bottom}" stroke="#444"/>']
    if times:
        span = max((times[-1] - times[0]).total_seconds(), 1.0)
        points = " ".join(
            f"{left + (t - times[0]).total_seconds() / span * (width - left - 10):.1f},"
            f"{bottom - (i + 1) / len(times) * (bottom - 30):.1f}" for i, t in enumerate(times))
        parts += [f'<polyline points="{points}" fill="none" stroke="{_colour(key)}" '
                  f'stroke-width="2" data-count="{len(times)}"/>',
                  f'<text x="{left}" y="{bottom + 14}" {FONT}>{times[0]:%m-%d %H:%M}</text>',
                  f'<text x="{width - 70}" y="{bottom + 14}" {FONT}>{times[-1]:%m-%d %H:%M}</text>',
                  f'<text x="0" y="34" {FONT}>{len(times)}</text>']
    else:
        parts.append(f'<text x="{left}" y="{bottom / 2}" {FONT}>no job {escape(key)} yet</text>')
    return _svg(title, width, height, parts)
