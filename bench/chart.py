"""Draws target/bench/chart.png from target/bench/results.json (written by
`cargo xtask bench`): per route, the project, its Rust floor and its Python
peer side by side (the project once per profile it was built with, as the
results list them): warm p50 (p99 as a whisker), cold total (init + first
request, log scale) and peak RSS."""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = ["#c0392b", "#e59866", "#7f8c8d", "#2e86c1", "#27ae60", "#8e44ad"]


def main(results_path: str, chart_path: str) -> None:
    with open(results_path) as f:
        results = json.load(f)
    routes = results["routes"]
    if not routes:
        print("no routes with peers in the results; no chart drawn")
        return
    implementations = [(key, label, COLOURS[i % len(COLOURS)]) for i, (key, label) in enumerate(results["implementations"])]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    width = 0.8 / len(implementations)
    names = [route["function"] for route in routes]
    panels = [
        ("warm request (ms, log): p50, whisker to p99", "warm_p50_ms", "warm_p99_ms", True),
        ("cold total = init + first request (ms, log)", "cold_total_ms", None, True),
        ("peak RSS (MB)", "peak_rss_mb", None, False),
    ]
    for axis, (title, key, whisker, log) in zip(axes, panels):
        for index, (implementation, label, colour) in enumerate(implementations):
            xs = [i + (index - (len(implementations) - 1) / 2) * width for i in range(len(routes))]
            values = [route["implementations"][implementation][key] for route in routes]
            errors = None
            if whisker:
                tops = [route["implementations"][implementation][whisker] for route in routes]
                errors = [[0] * len(values), [max(t - v, 0) for t, v in zip(tops, values)]]
            bars = axis.bar(xs, values, width, label=label, color=colour, yerr=errors, capsize=3)
            axis.bar_label(bars, fmt="%.3g", fontsize=6, padding=2)
        axis.set_xticks(range(len(routes)), names)
        axis.set_title(title, fontsize=10)
        if log:
            axis.set_yscale("log")
        axis.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    runs = results["cold_starts_per_implementation"]
    # Routes the bench gives more cold starts (their first request varies more).
    more = sorted(
        {
            f"{route['function']}: {implementation['cold_starts']}"
            for route in routes
            for implementation in route["implementations"].values()
            if implementation["cold_starts"] != runs
        }
    )
    fig.suptitle(
        f"cargo xtask bench ({runs} cold starts{' (' + ', '.join(more) + ')' if more else ''} x "
        f"{results['warm_requests_per_cold_start']} warm requests each, same run, local cloud)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(chart_path, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
