#!/usr/bin/env python3
"""Plots of the benchmark results in bench-results/ (run by `make bench` after the benchmarks, with
matplotlib from the venv of Benchmarks/plot.sh):

- bench-results/throughput.png: Laminar against the peers measured in the same run (bench-http,
  bench-ingest), one panel per comparison, ratio printed on each bar;
- bench-results/stall-latency.png: HDR percentile plot of the open-loop reader of bench-stall,
  alone and beside the put load, for each key count measured.

A result file that is missing is left out of the plots (and said so).
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench-results")


def load(name):
    path = os.path.join(RESULTS, name)
    if not os.path.exists(path):
        print(f"plot: {path} missing, left out", file=sys.stderr)
        return None
    with open(path) as f:
        return json.load(f)


def bars(ax, title, unit, laminar, peers):
    """laminar, peers: [(label, value)]; each Laminar bar is labelled with its ratio to every peer."""
    pairs = laminar + peers
    values = [v for _, v in pairs]
    ax.bar([l for l, _ in pairs], values, color=["#1f77b4"] * len(laminar) + ["#999999"] * len(peers))
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(unit)
    ax.ticklabel_format(axis="y", style="plain")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    for i, (_, v) in enumerate(pairs):
        text = f"{v:,.0f}"
        if i < len(laminar):
            text += "".join(f"\n{v / pv:.2f}x {pl}" for pl, pv in peers if pv)
        ax.annotate(text, (i, v), ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, max(values) * 1.35)
    ax.tick_params(axis="x", labelsize=8)


def throughput():
    http, ingest = load("http.json"), load("ingest.json")
    panels = []
    if http:
        panels.append(("HTTP/2 GET, h2load -c16 -m32", "req/s",
                       [("Laminar GET", http["get_rps"])], [("nghttpd", http["nghttpd_rps"]), ("h2o", http["h2o_rps"])]))
        panels.append(("durable PUT (fsync per commit)", "req/s",
                       [("Laminar PUT", http["put_rps"])], [("etcd Put", http["etcd_put_rps"])]))
    if ingest:
        panels.append(("events, 1000 per POST, fsync always", "events/s",
                       [("Laminar binary", ingest["binary_events_per_s"]),
                        ("Laminar NDJSON", ingest["ndjson_events_per_s"])],
                       [("Redis XADD", ingest["redis_xadd_per_s"])]))
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4))
    for ax, (title, unit, laminar, peers) in zip(axes if len(panels) > 1 else [axes], panels):
        bars(ax, title, unit, laminar, peers)
    fig.suptitle("Laminar against peers of the same run (make bench, 2 cores)", fontsize=11)
    fig.tight_layout()
    out = os.path.join(RESULTS, "throughput.png")
    fig.savefig(out, dpi=110)
    print(f"plot: wrote {out}")


def read_hgrm(path):
    """(percentile, value ms) pairs of a classic HdrHistogram percentile distribution."""
    points = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 4:
                continue
            try:
                value, pct = float(parts[0]), float(parts[1])
            except ValueError:
                continue
            if pct < 1.0:
                points.append((pct, value))
    return points


def stall_latency():
    # the default client configuration only (STALL_ISOLATE's runs end in -fifo, -nice, -cgroup)
    files = sorted(f for f in os.listdir(RESULTS) if f.startswith("stall-") and f.endswith(".hgrm")
                   and not f[:-len(".hgrm")].endswith(("-fifo", "-nice", "-cgroup")))
    if not files:
        print("plot: no bench-results/stall-*.hgrm, latency plot left out", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ticks = [0.5, 0.9, 0.99, 0.999, 0.9999]
    for name in files:
        points = read_hgrm(os.path.join(RESULTS, name))
        if not points:
            continue
        xs = [1 / (1 - p) for p, _ in points]
        ax.plot(xs, [v for _, v in points], label=name[len("stall-"):-len(".hgrm")].replace("-", " keys, ", 1))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([1 / (1 - t) for t in ticks])
    ax.set_xticklabels([f"{100 * t:g}%" for t in ticks])
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency (ms, from the scheduled send)")
    ax.set_title("GET of one key, open loop (make bench-stall): alone and beside put-only load", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = os.path.join(RESULTS, "stall-latency.png")
    fig.savefig(out, dpi=110)
    print(f"plot: wrote {out}")


if __name__ == "__main__":
    throughput()
    stall_latency()
