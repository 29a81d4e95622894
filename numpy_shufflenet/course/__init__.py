"""The course around the notebooks: the exercise catalogue and its checks, student copies, and the autograder.

* :mod:`.exercise`: the exercise record and the one driver (cases, outcomes, verdicts, universal checks);
* :mod:`.exercises`: the catalogue, one module per notebook (``CATALOGUE``, ``exercises_of``);
* :mod:`.checks`: ``check_<exercise>(fn)``, what the notebooks' check cells call;
* :mod:`.student_kernels`: a student's functions as a kernel set (notebook 09);
* :mod:`.release`: instructor notebooks -> student copies (nbgrader's marker syntax and cell metadata);
* :mod:`.autograde`: grading a class's submissions into ``grades.csv`` and feedback files.

``from numpy_shufflenet import course`` gives the checks as ``course.check_<exercise>``; the instructor's tools
(:mod:`.release`, :mod:`.autograde`) are imported on demand.
"""

from . import checks
from .checks import *            # noqa: F401,F403  (every check_<exercise>: checks.__all__ lists them)
from .exercise import CheckFailed, ExerciseNotDone
from .exercises import CATALOGUE, exercises_of
from .exercises.nb09 import checked_unit, tiny_shufflenet
from .student_kernels import StudentKernels

__all__ = checks.__all__ + ["CATALOGUE", "exercises_of", "ExerciseNotDone", "CheckFailed", "StudentKernels",
                            "checked_unit", "tiny_shufflenet"]
