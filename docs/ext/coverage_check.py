"""Fail the build when a public name is missing from the API reference.

After Sphinx has read every page (``env-check-consistency``), each documented package's
``__all__`` is compared with the Python objects the reference actually describes (the ``py``
domain: what ``autoclass``/``autofunction``/``automodule``... registered). A missing name raises
a :class:`~sphinx.errors.SphinxError`, which stops the build with an error even without ``-W``.
Packages that are not installed are skipped (``apigen`` has already logged that).

Like optax's ``docs/ext/coverage_check.py``, but run inside every build instead of as a separate
builder. The same comparison against the generated page source runs in
``tests/docs/test_api_coverage.py``.
"""

from __future__ import annotations

import inspect
from typing import Any

from sphinx.errors import SphinxError

import apigen


class CoverageError(SphinxError):
    category = "API reference coverage"


def expected_objects(loaded: apigen.Loaded, packages: tuple[str, ...] = ()) -> dict[str, str]:
    """Map each public name of a package to the object name its documentation registers.

    A module is described under its own name (``diffbypass.plugins``), anything else under the
    public path (``diffbypass.Bypass``, not ``diffbypass.bypass.Bypass``). A public module that is
    not one of the ``packages`` with a page of their own is documented with its members, so its
    own ``__all__`` is expected too (``lvseg.data.load_dataset``).
    """
    if loaded.module is None:
        return {}
    expected = {}
    for public in loaded.names:
        obj = getattr(loaded.module, public)
        if not inspect.ismodule(obj):
            expected[f"{loaded.name}.{public}"] = f"{loaded.name}.{public}"
            continue
        expected[f"{loaded.name}.{public}"] = obj.__name__
        if obj.__name__ not in packages and obj.__name__.startswith(loaded.name + "."):
            inner = apigen.Loaded(obj.__name__, obj, names=list(getattr(obj, "__all__", [])))
            expected.update(expected_objects(inner, packages))
    return expected


def missing_names(
    loaded: apigen.Loaded, documented: set[str], packages: tuple[str, ...] = ()
) -> list[str]:
    """The public names of ``loaded`` (and of its public modules) not among ``documented``."""
    return sorted(
        public
        for public, full in expected_objects(loaded, packages).items()
        if full not in documented
    )


def _check(app: Any, env: Any) -> None:
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    documented = set(env.get_domain("py").objects)
    problems = []
    for name in app.config.apigen_packages:
        loaded = apigen.load(name)
        if loaded.missing:
            continue
        if loaded.error:
            problems.append(f"{name}: {loaded.error}")
            continue
        packages = tuple(app.config.apigen_packages)
        missing = missing_names(loaded, documented, packages)
        if missing:
            problems.append(f"{name}: not in the API reference: {', '.join(missing)}")
        else:
            count = len(expected_objects(loaded, packages))
            logger.info("[coverage_check] %s: all %d public names documented", name, count)
    if problems:
        # Sphinx prints only the category of an exception, so the details go to the log first.
        for problem in problems:
            logger.error("[coverage_check] %s", problem)
        raise CoverageError(
            f"{len(problems)} package(s) with public names missing from the API reference (see "
            "the ERROR lines above; docs/ext/apigen.py writes the pages from __all__, so look "
            "for import or autodoc failures)"
        )


def setup(app: Any) -> dict[str, Any]:
    app.setup_extension("apigen")
    app.connect("env-check-consistency", _check)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
