"""Benchmark conventions: each benchmark names its provider in
``benchmark.extra_info["provider"]`` and its comparison group with
``@pytest.mark.benchmark(group=...)`` (or ``benchmark.group``). A peer too slow to time
on the whole batch is timed on a part of it and sets ``benchmark.extra_info["scale"]``
(whole batch / part). After the run, a table gives every provider's median time for the
whole batch relative to orthocore's in the same group (> 1: orthocore is faster)."""

from __future__ import annotations

import collections


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups = collections.defaultdict(dict)
    for bench in session.benchmarks:
        if bench.stats is None or not bench.stats.rounds:
            continue
        scale = bench.extra_info.get("scale", 1.0)
        groups[bench.group][bench.extra_info.get("provider", bench.name)] = bench.stats.median * scale
    terminalreporter.section("time relative to orthocore (median; > 1 means orthocore is faster)")
    for group, medians in sorted(groups.items()):
        ours = medians.get("orthocore")
        terminalreporter.write_line(f"{group}")
        for provider, median in sorted(medians.items(), key=lambda item: item[1]):
            ratio = f"{median / ours:6.2f}x" if ours else "   n/a"
            terminalreporter.write_line(f"    {provider:<28} {median * 1e3:9.3f} ms  {ratio}")
