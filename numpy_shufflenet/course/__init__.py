"""The course around the notebooks: students' checks, student copies, and the autograder.

* :mod:`.checks`: ``check_<exercise>(fn)``, what the notebooks' check cells call (feedback while students work).
* :mod:`.release`: instructor notebooks -> student copies (nbgrader's marker syntax and cell metadata).
* :mod:`.autograde`: grading a class's submissions into ``grades.csv`` and feedback files.

``from numpy_shufflenet import course`` gives the checks as ``course.check_<exercise>``; the instructor's tools
(:mod:`.release`, :mod:`.autograde`) are imported on demand.
"""

from . import checks
from .checks import *            # noqa: F401,F403  (every check_<exercise>: checks.__all__ lists them)
from .checks import __all__
