"""Benchmark tables in the terminal: one row per method, or per metric when there are
many metrics and few methods."""

from ppx import terminal


def _capture(monkeypatch):
    seen = []
    monkeypatch.setattr(terminal, "print_table", lambda t, rows, cols: seen.append((rows, cols)))
    return seen


def test_few_metrics_print_one_row_per_method(monkeypatch):
    seen = _capture(monkeypatch)
    terminal.bench_tables({"meta": {}, "world": {"ppx": {"mae": 1.0}, "lgb": {"mae": 2.0}}})
    rows, cols = seen[0]
    assert cols == ["method", "mae"] and [r["method"] for r in rows] == ["ppx", "lgb"]


def test_many_metrics_print_one_row_per_metric(monkeypatch):
    seen = _capture(monkeypatch)
    metrics = {f"m{i}": float(i) for i in range(8)}
    terminal.bench_tables({"olist": {"ppx": metrics, "olist_promise": {"m0": 5.0}}})
    rows, cols = seen[0]
    assert cols == ["metric", "ppx", "olist_promise"]
    assert rows[0] == {"metric": "m0", "ppx": 0.0, "olist_promise": 5.0}
    assert rows[-1] == {"metric": "m7", "ppx": 7.0, "olist_promise": None}
