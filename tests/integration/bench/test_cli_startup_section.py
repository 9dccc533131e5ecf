"""BENCHMARKS.md's "CLI start-up" section is written by bench.cli_startup, and a rewrite
of the file by bench.run (which does not measure it) keeps it."""

from pathlib import Path

from bench.cli_startup import HEADING, keep_section, replace_section, table

REPORT = "# Benchmarks\n\n## Targets\n\nT\n\n## How each figure is measured\n\nM\n"


def test_the_section_goes_before_the_method_then_is_replaced_in_place() -> None:
    first = replace_section(REPORT, f"{HEADING}\n\nold figures\n")
    assert first.index("## Targets") < first.index(HEADING) < first.index("## How each")
    second = replace_section(first, f"{HEADING}\n\nnew figures\n")
    assert "old figures" not in second
    assert second.count(HEADING) == 1
    assert second.index(HEADING) < second.index("new figures") < second.index("## How each")


def test_a_rewrite_by_bench_run_keeps_the_section(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(replace_section(REPORT, f"{HEADING}\n\nkept figures\n"))
    rewritten = keep_section(path, REPORT.replace("T\n", "new targets\n"))
    assert "new targets" in rewritten
    assert "kept figures" in rewritten
    assert keep_section(tmp_path / "missing.md", REPORT) == REPORT


def test_the_table_has_a_column_per_implementation() -> None:
    lines = table(
        3,
        [
            ("before", {"ten ps": (90.4, 70.2), "ten x": None}),
            ("ours", {"ten ps": (60.0, 50.0), "ten x": (1.0, 0.6)}),
        ],
        (11.2, 10.0),
    )
    assert lines[0] == "| command: ms wall (CPU), median of 3 | before | ours |"
    assert lines[2] == "| `ten ps` | 90 (70) | 60 (50) |"
    assert lines[3] == "| `ten x` | n/a | 1 (1) |"
    assert lines[4] == "| floor: `python -c pass` | 11 (10) | |"
