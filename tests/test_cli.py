"""The command line (``python -m numpy_shufflenet ...``): each command's output, and bad arguments refused by
argparse naming the option, before any work is done. (``grade`` is tested with the grader, in
``tests/course/test_autograde.py``.)"""

import subprocess
import sys

import pytest

from numpy_shufflenet.cli import main


# --------------------------------------------------------------------------------------------------------------
# table1, summary, --help
# --------------------------------------------------------------------------------------------------------------
def test_table1_command_prints_paper_and_released_figures(capsys):
    assert main(["table1"]) == 0
    out = capsys.readouterr().out
    for g, conv_only, paper in [(1, "142.50", "143="), (3, "136.50", "137="), (8, "136.83", "137=")]:
        assert conv_only in out and paper in out
    assert "137.46" in out and "524.05" in out and "conv" in out.lower()
    assert "!" not in out.split("Released")[0]           # every Table 1 row matches the paper


def test_summary_command(capsys):
    assert main(["summary", "--groups", "3", "--scale", "1.0", "--input-size", "224"]) == 0
    out = capsys.readouterr().out
    assert "137,460,672" in out and "1,864,728" in out and "stage3.7.branch.conv3" in out


def test_summary_command_rejects_small_input(capsys):
    assert main(["summary", "--input-size", "16"]) == 2
    assert "at least 32x32" in capsys.readouterr().err


def test_module_runs_as_a_program():
    done = subprocess.run([sys.executable, "-m", "numpy_shufflenet", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "table1" in done.stdout and "summary" in done.stdout


# --------------------------------------------------------------------------------------------------------------
# bad numbers and folders: argparse errors naming the option, before any work
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("option, value, expected", [
    ("--epochs", "0", "expected an integer >= 1, got 0"),
    ("--epochs", "-3", "expected an integer >= 1, got -3"),
    ("--epochs", "2.5", "expected an integer >= 1, got '2.5'"),
    ("--batch-size", "0", "expected an integer >= 1, got 0"),
    ("--train-size", "-1", "expected an integer >= 1, got -1"),
    ("--val-size", "0", "expected an integer >= 1, got 0"),
    ("--lr", "nan", "expected a finite number >= 0, got 'nan'"),
    ("--lr", "inf", "expected a finite number >= 0, got 'inf'"),
    ("--lr", "-0.1", "expected a finite number >= 0, got '-0.1'"),
    ("--lr", "fast", "expected a number >= 0, got 'fast'"),
    ("--seed", "-1", "expected an integer >= 0, got -1"),
])
def test_train_command_refuses_bad_numbers(option, value, expected, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", option, value, "--out", str(out), "--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: {expected}" in err and "Traceback" not in err
    assert not out.exists()                                       # nothing was done


@pytest.mark.parametrize("where, expected", [
    ("file", "expected an output folder, got {file}, which is a file"),
    ("under-file", "expected an output folder, got {file}/sub, which lies under the file {file}"),
])
def test_train_command_refuses_an_out_that_is_a_file(where, expected, tmp_path, capsys):
    file = tmp_path / "notes.txt"
    file.write_text("x")
    out = file if where == "file" else file / "sub"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--out", str(out), "--quiet"])
    assert exit_info.value.code == 2
    assert f"argument --out: {expected.format(file=file)}" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-2"])
def test_summary_command_refuses_depth_below_one(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["summary", "--depth", value])
    assert exit_info.value.code == 2
    assert f"argument --depth: expected an integer >= 1, got {value}" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------
# errors of the work itself: one line, no traceback
# --------------------------------------------------------------------------------------------------------------
def test_resume_command_reports_errors_without_a_traceback(run_dir, capsys):
    assert main(["train", "--resume", "--epochs", "1", "--out", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: resume: the run in") and "Traceback" not in err
