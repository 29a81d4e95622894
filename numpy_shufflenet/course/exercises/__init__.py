"""The exercise catalogue: every exercise of the course as one record, one module per notebook.

``CATALOGUE`` maps each exercise's name (the ``grade_id`` of its solution cell) to its
:class:`~numpy_shufflenet.course.exercise.Exercise`; :func:`exercises_of` lists a notebook's, in its order.
"""

from . import nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08, nb09

__all__ = ["CATALOGUE", "exercises_of", "NOTEBOOKS"]

NOTEBOOKS = (nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08, nb09)
CATALOGUE = {ex.name: ex for module in NOTEBOOKS for ex in module.EXERCISES}


def exercises_of(notebook_stem):
    """The exercises of the notebook ``notebook_stem`` (e.g. ``"04_gradient_check_exercises"``), in order."""
    return [ex for ex in CATALOGUE.values() if ex.notebook == notebook_stem]
