"""Evaluation output only: a terminal table, results.json for machines, a recall plot and a
self-contained HTML page. The judgements (figures, floors, comparisons) are in ``metrics``.

The HTML page is one file (the plot is an embedded PNG) so it can be attached to a CI run or
mailed; every piece of text in it comes from documents or questions and is escaped.
"""

from __future__ import annotations

import base64
import io
import json
from html import escape
from pathlib import Path
from typing import Any

from qa.eval.metrics import CURVE_K, failed, reported_names

SNIPPET = 300  # characters of a passage shown per failed question in the HTML page


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def format_table(result: dict, max_failed: int = 25) -> str:
    """Metrics per language, latency, unanswerable questions and the misses, as plain text."""
    groups = list(result["metrics"])
    rows = [["metric", *groups], ["questions", *(str(result["metrics"][g]["n"]) for g in groups)]]
    rows += [
        [m, *(_fmt(result["metrics"][g].get(m)) for g in groups)]
        for m in reported_names(result["k"])
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lat = result["latency_ms"]
    if lat.get("n"):
        lines.append(
            f"\nlatency per query (ms, n={lat['n']}): p50 {lat['p50']:.1f}  "
            f"p95 {lat['p95']:.1f}  p99 {lat['p99']:.1f}  max {lat['max']:.1f}"
        )
    un = result["unanswerable"]
    if un["n"]:
        lines.append(
            f"unanswerable questions: {un['n']}, top score mean {_fmt(un['top_score_mean'], 4)} "
            f"max {_fmt(un['top_score_max'], 4)} (answerable: median "
            f"{_fmt(un['answerable_top_score_median'], 4)}, "
            f"min {_fmt(un['answerable_top_score_min'], 4)})"
        )
    misses = failed(result)
    if misses:
        lines.append(
            f"\nmissed at 5 ({len(misses)}; file rank / answer rank, '-' = not in top "
            f"{max(result['k'], CURVE_K)}):"
        )
        for r in misses[:max_failed]:
            ranks = f"{r['file_rank'] or '-'}/{r['answer_rank'] or '-'}"
            lines.append(f"  {r['id']:<24} {r['lang']:<3} {ranks:>7}  {r['question'][:80]}")
        if len(misses) > max_failed:
            lines.append(f"  ... and {len(misses) - max_failed} more (see the HTML report)")
    return "\n".join(lines)


def format_compare(cmp: dict) -> str:
    """The comparison of two results, one metric a line, with the paired test's p-value."""
    head = f"{'metric':<10} {cmp['a'][:24]:>24} {cmp['b'][:24]:>24} {'B - A':>8} {'p':>8}"
    lines = [
        f"A = {cmp['a']}, B = {cmp['b']}: {cmp['n']} shared answerable questions, "
        f"paired test: {cmp['test']}",
        head,
    ]
    lines.append("-" * len(head))
    for metric, row in cmp["rows"].items():
        p = row["p"]
        mark = " *" if p is not None and p < 0.05 else ""
        lines.append(
            f"{metric:<10} {row['a']:>24.3f} {row['b']:>24.3f} {row['delta']:>+8.3f} "
            f"{'–' if p is None else '<0.001' if p < 0.001 else f'{p:.4f}':>8}{mark}"
        )
    lines.append("* p < 0.05; – : the same score on every question")
    return "\n".join(lines)


def save_result(result: dict, path: Path) -> Path:
    """results.json: all metrics and every question with what came back (UTF-8, diffable).

    Not ``write_json``: that name is the index's ``write_json(path, obj)``, durable writes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def recall_plot_png(result: dict) -> bytes:
    """recall@k for k = 1..10, one line per language group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
    ks = list(range(1, CURVE_K + 1))
    for group, values in result["recall_curve"].items():
        if any(v is not None for v in values):
            n = result["metrics"][group]["n"]
            ax.plot(
                ks,
                [float("nan") if v is None else v for v in values],
                marker="o",
                label=f"{group} (n={n})",
                linewidth=2.5 if group == "all" else 1.5,
            )
    ax.set(
        xlabel="k (passages returned)",
        ylabel="recall@k (gold file in top k)",
        xticks=ks,
        ylim=(0, 1.02),
        title="Recall of the gold source file by language",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _metrics_html(result: dict) -> str:
    groups = list(result["metrics"])
    head = "".join(f"<th>{escape(g)}</th>" for g in groups)
    rows = [
        "<tr><td>questions</td>"
        + "".join(f"<td>{result['metrics'][g]['n']}</td>" for g in groups)
        + "</tr>"
    ]
    for m in reported_names(result["k"]):
        cells = "".join(f"<td>{_fmt(result['metrics'][g].get(m))}</td>" for g in groups)
        rows.append(f"<tr><td>{escape(m)}</td>{cells}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def _returned_html(rec: dict, limit: int = 5) -> str:
    items = []
    for r in rec["results"][:limit]:
        cls = "ans" if r["has_answer"] else "gold" if r["from_gold"] else ""
        text = r["text"] if len(r["text"]) <= SNIPPET else r["text"][:SNIPPET] + " …"
        items.append(
            f'<li class="{cls}"><b>{r["rank"]}.</b> {escape(r["source"])}:'
            f'{r["line_start"]}-{r["line_end"]} <span class="s">score {r["score"]:.4f}</span>'
            f'<br><span class="t">{escape(text)}</span></li>'
        )
    return "<ol>" + "".join(items) + "</ol>" if items else "<p>nothing returned</p>"


def _failed_html(result: dict) -> str:
    misses = failed(result)
    if not misses:
        return "<p>None: every answerable question has its answer in the top 5.</p>"
    blocks = []
    for r in misses:
        blocks.append(
            f'<div class="q"><h3>{escape(r["id"])} [{escape(r["lang"])}] '
            f"{escape(r['question'])}</h3><p>gold: {escape(r['source'] or '')} · answer "
            f"<q>{escape(r['answer'] or '')}</q> · file rank {r['file_rank'] or '–'} · "
            f"answer rank {r['answer_rank'] or '–'}</p>{_returned_html(r)}</div>"
        )
    return "".join(blocks)


def _unanswerable_html(result: dict) -> str:
    un = result["unanswerable"]
    if not un["n"]:
        return "<p>The gold file has no unanswerable questions.</p>"
    rows = "".join(
        f"<tr><td>{escape(q['id'])}</td><td>{escape(q['lang'])}</td>"
        f"<td>{escape(q['question'])}</td><td>{_fmt(q['top_score'], 4)}</td>"
        f"<td>{escape(q['top_source'] or '')}</td></tr>"
        for q in un["questions"]
    )
    return (
        f"<p>Answerable questions' top score: median "
        f"{_fmt(un['answerable_top_score_median'], 4)}, min "
        f"{_fmt(un['answerable_top_score_min'], 4)}.</p><table><tr><th>id</th><th>lang</th>"
        f"<th>question</th><th>top score</th><th>top source</th></tr>{rows}</table>"
    )


CSS = """body{font:14px/1.45 system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}td:first-child,th:first-child{text-align:left}.q{border-top:1px solid #ddd}
li.ans{background:#e6f6e6}li.gold{background:#fff6dc}.s{color:#777}.t{color:#333;
white-space:pre-wrap}h3{font-size:15px;margin:.8em 0 .2em}"""


def write_html(result: dict, path: Path) -> Path:
    """One self-contained page: metrics, latency, recall plot, unanswerable, failed questions."""
    png = base64.b64encode(recall_plot_png(result)).decode("ascii")
    meta: dict[str, Any] = {
        k: result.get(k) for k in ("name", "gold", "target", "model", "index_version", "created")
    }
    meta_html = "".join(f"<li>{escape(k)}: {escape(str(v))}</li>" for k, v in meta.items() if v)
    lat = result["latency_ms"]
    lat_html = (
        f"<p>Per-query latency over {lat['n']} single queries: p50 {lat['p50']:.1f} ms, "
        f"p95 {lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms.</p>"
        if lat.get("n")
        else ""
    )
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>qa eval: {escape(str(result.get('name') or 'results'))}</title>"
        f"<style>{CSS}</style></head><body><h1>Retrieval evaluation</h1><ul>{meta_html}</ul>"
        f"<h2>Metrics</h2>{_metrics_html(result)}{lat_html}"
        f'<img alt="recall@k by language" src="data:image/png;base64,{png}">'
        f"<h2>Unanswerable questions</h2>{_unanswerable_html(result)}"
        f"<h2>Failed questions (hit@5 or answer@5 miss)</h2>"
        f"<p>Green: holds the answer; yellow: from the gold file without it.</p>"
        f"{_failed_html(result)}</body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
