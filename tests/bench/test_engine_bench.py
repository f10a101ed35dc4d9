"""The engine benchmark runs end to end at a small size (it measures; this only checks it works)."""

from __future__ import annotations

import pytest

from bench import engine as bench

pytestmark = pytest.mark.django_db(transaction=True)


def test_benchmark_runs_at_a_small_size_and_reports_every_figure():
    results = bench.run(customers=400, groups=12, naive_customers=150, writes=5, repeat=1)
    assert results["full_refresh"]["members"] > 0
    assert set(results["full_refresh"]) >= {"bare_select_ms", "refresh_0pct_churn_ms", "refresh_10pct_churn_ms"}
    assert results["naive"]["customers"] == 150
    assert results["write"]["writes"] == 5
    assert results["write"]["statements_with_20_groups"] == results["write"]["statements_with_all_groups"]
