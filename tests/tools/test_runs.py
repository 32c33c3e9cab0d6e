"""tools/_runs.py, the helper of tools/demo.py and tools/longtail_study.py."""
import os

import pytest

from efl.engine import write_final_results

from tests.scripts import load_script

runs = load_script("tools/_runs.py")


def test_read_results_reads_what_the_training_run_writes(tmp_path):
    write_final_results(str(tmp_path), {"bbox": {"AP": 12.5, "APr": 3.0}}, wall_time_s=41.0)
    assert runs.read_results(str(tmp_path)) == {"bbox": {"AP": 12.5, "APr": 3.0}, "wall_time_s": 41.0}


def test_a_run_without_results_ends_the_program_naming_the_file(tmp_path):
    with pytest.raises(SystemExit, match=f"{tmp_path}.*final_results.json is missing"):
        runs.read_results(str(tmp_path))


def test_markdown_table_has_a_separator_cell_per_column():
    table = runs.markdown_table(["loss", "AP"], [["focal", "1.0"], ["efl", "2.0"]])
    assert table.splitlines() == ["| loss | AP |", "|---|---|", "| focal | 1.0 |", "| efl | 2.0 |"]


def test_user_overrides_drop_the_argparse_separator():
    assert runs.user_overrides(["--", "a=1", "b=2"]) == ["a=1", "b=2"]
    assert runs.REPO == os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
