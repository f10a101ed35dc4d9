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
    timed = results["always_current"]
    assert timed["groups"] > 0 and timed["customers_due"] > 0
    assert set(timed) >= {"full_refresh_ms", "day_of_sweeps_ms", "ratio", "largest_sweep_ms", "write_p95_ms"}
    assert timed["changes_by_time"] > 0  # a day of this data moves some customers by time alone
