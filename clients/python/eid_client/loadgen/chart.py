"""``--chart out.png``: throughput and latency over the run, two panels.

matplotlib is an optional dependency (``pip install 'eid-client[chart]'``),
imported only here and only when a chart is asked for, with the Agg backend
(no display needed).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from eid_client._commands import UsageError
from eid_client._files import write_atomically


def write_chart(report: dict[str, Any], path: Path) -> None:
    """Draw ``report``'s timeline to ``path`` (PNG)."""
    try:
        import matplotlib  # optional and heavy: only for --chart
    except ImportError:
        raise UsageError(
            "--chart needs matplotlib: pip install 'eid-client[chart]' (or matplotlib)"
        ) from None
    matplotlib.use("Agg")
    from matplotlib import pyplot

    windows = report["timeline"]
    width = report["timeline_width_s"]
    mids = [w["start_s"] + width / 2 for w in windows]
    figure, (top, bottom) = pyplot.subplots(2, 1, sharex=True, figsize=(10, 6.5), dpi=100)
    try:
        top.plot(mids, [w["rps"] for w in windows], color="tab:blue", label="successful")
        errors = [w["errors"] / width for w in windows]
        if any(errors):
            top.plot(mids, errors, color="tab:red", label="failed")
        target = report["rps_target"]
        if target:
            top.axhline(target, color="grey", linestyle="--", linewidth=1, label="target rate")
        top.set_ylabel("throughput (calls/s)")
        top.set_ylim(bottom=0)
        top.legend(loc="lower right")
        top.grid(alpha=0.3)
        for key, colour in (("p50_ms", "tab:green"), ("p99_ms", "tab:orange")):
            points = [(m, w[key]) for m, w in zip(mids, windows, strict=True) if w[key] is not None]
            bottom.plot(
                [m for m, _ in points],
                [v for _, v in points],
                color=colour,
                marker=".",
                label=key.removesuffix("_ms"),
            )
        bottom.set_ylabel("latency (ms)")
        bottom.set_xlabel(f"time since the start of measuring (s), windows of {width:g} s")
        bottom.set_ylim(bottom=0)
        bottom.legend(loc="upper right")
        bottom.grid(alpha=0.3)
        s = report["summary"]
        figure.suptitle(
            f"eid-loadgen: {report['label']} on {report['target']}: "
            f"{s['rps']:,.0f} calls/s, p50 {s['p50_ms'] or 0:.1f} ms, "
            f"p99 {s['p99_ms'] or 0:.1f} ms"
        )
        figure.tight_layout()
        image = io.BytesIO()
        figure.savefig(image, format="png")
        # Not savefig(path): that writes through a link planted at the path (a shared /tmp).
        write_atomically(path, image.getvalue(), 0o644)
    finally:
        pyplot.close(figure)
