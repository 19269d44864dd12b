"""fastdnn.files and fastdnn.errors: the file rules and the errors every part of fastdnn shares, defined once."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

from fastdnn.errors import DataError, FileInUseError, FileProblem, ModelFileError
from fastdnn.files import OutputLock


def test_a_file_in_use_is_a_library_error_naming_the_file_not_the_commands(tmp_path):
    """OutputLock guards the library's sweep as well as the commands: it raised the command's CLIError."""
    from fastdnn.cli.common import CLIError, describe

    out = tmp_path / "r.csv"
    with OutputLock(out, "results file"):
        with pytest.raises(FileInUseError) as info:
            OutputLock(out, "results file").__enter__()
    assert isinstance(info.value, FileProblem) and not isinstance(info.value, CLIError)
    assert info.value.path == str(out)
    assert describe(info.value) == f"{out}: another fastdnn run is writing this results file; wait for it or choose " \
                                   "another file"


@pytest.mark.parametrize("cls", [DataError, ModelFileError, FileInUseError])
def test_each_file_problem_is_one_line_naming_its_file_and_crosses_processes(cls, tmp_path):
    """Data and model files' errors are one class under two names (with their own except clauses), and a
    worker process's error reaches its parent whole: unpickling called __init__ with the message alone."""
    error = cls(tmp_path / "x.npz", "is corrupted: something")
    assert isinstance(error, ValueError) and str(error) == f"{tmp_path / 'x.npz'}: is corrupted: something"
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is cls and (again.path, again.problem, str(again)) == (error.path, error.problem, str(error))


def test_saving_an_unfitted_model_raises_the_not_fitted_error_scikit_learn_catches(tmp_path):
    """io raised the estimator's own NotFittedError where the estimator raises scikit-learn's kind too."""
    sklearn_exceptions = pytest.importorskip("sklearn.exceptions")

    import fastdnn

    with pytest.raises(sklearn_exceptions.NotFittedError):
        fastdnn.save_model(fastdnn.DNNClassifier(), tmp_path / "m.npz")
    with pytest.raises(sklearn_exceptions.NotFittedError):
        fastdnn.DNNClassifier().predict(np.zeros((1, 2)))


def test_the_file_rules_and_errors_load_nothing_heavy():
    """Every command imports them at its start (through fastdnn.cli.common): they must not pull numpy in."""
    code = "import sys, fastdnn.files, fastdnn.errors; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
