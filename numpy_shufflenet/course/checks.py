"""``course.check_<exercise>(fn)``: the faces the notebooks' check cells call, one per catalogued exercise.

Each runs :func:`numpy_shufflenet.course.exercise.check` on its record of
:data:`numpy_shufflenet.course.exercises.CATALOGUE`: the cases of seed 0 and of a fresh seed, one line when every
case is right, :class:`~numpy_shufflenet.course.exercise.ExerciseNotDone` while the function is a stub, and
:class:`~numpy_shufflenet.course.exercise.CheckFailed` with the diagnosis when an answer is wrong. A check returns
nothing, so a check cell shows no ``Out``; the notebooks tag their check cells ``raises-exception``, so that
*Run All* goes on past an unfinished exercise (Jupyter and nbclient honour the tag), while a grader that awards
a check cell's points when it does not raise (nbgrader, ``grade``) gives an unfinished exercise nothing.
``course.check_x(fn, seed=s)`` repeats the cases of one seed.
"""

from .exercise import check
from .exercises import CATALOGUE

__all__ = []


def _face(exercise):
    def check_exercise(fn, *, seed=None):
        return check(exercise, fn, seed=seed)

    check_exercise.__name__ = check_exercise.__qualname__ = f"check_{exercise.name}"
    check_exercise.__doc__ = (f"Check ``{exercise.function}``: {exercise.title} (notebook {exercise.notebook}, "
                              f"{exercise.points:g} points). Prints one line when it is right; raises with the "
                              f"diagnosis when it is not.")
    return check_exercise


for _exercise in CATALOGUE.values():
    if _exercise.kind == "function":
        globals()[f"check_{_exercise.name}"] = _face(_exercise)
        __all__.append(f"check_{_exercise.name}")
