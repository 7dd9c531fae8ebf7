"""``diffbypass`` loads its public names on first use (PEP 562), and misses none of them.

``import diffbypass.validation`` (what option dataclasses use) must not import torch; every name
of ``__all__`` must resolve to the object of the module it comes from, ``dir()`` must list them,
and the ``TYPE_CHECKING`` imports that static tools read must name the same sources as the table
the run time uses.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys

import pytest

import diffbypass


def test_importing_a_torch_free_submodule_starts_no_torch() -> None:
    """(Failed while ``diffbypass/__init__`` imported every estimator eagerly.)"""
    code = ("import sys\nimport diffbypass.validation\nfrom diffbypass import validation\n"
            "print(sorted(m for m in ('torch', 'numpy', 'diffbypass.bypass') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]"]


def _type_checking_imports() -> dict[str, str]:
    """``{name: source module}`` of the ``if TYPE_CHECKING:`` block of ``diffbypass/__init__``."""
    tree = ast.parse(inspect.getsource(diffbypass))
    block = next(node for node in tree.body if isinstance(node, ast.If)
                 and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
    sources: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.module is not None
        for alias in node.names:
            module = f"{node.module}.{alias.name}"
            is_module = node.module == "diffbypass" and importlib.util.find_spec(module)
            sources[alias.asname or alias.name] = module if is_module else node.module
    return sources


def test_every_public_name_resolves_to_its_source_and_is_listed() -> None:
    assert diffbypass._SOURCES == _type_checking_imports()
    assert sorted(diffbypass._SOURCES) == sorted(diffbypass.__all__)
    for name, source in diffbypass._SOURCES.items():
        module = importlib.import_module(source)
        expected = module if source == f"diffbypass.{name}" else getattr(module, name)
        assert getattr(diffbypass, name) is expected, name
    assert set(diffbypass.__all__) <= set(dir(diffbypass))
    namespace: dict[str, object] = {}
    exec("from diffbypass import *", namespace)
    assert set(diffbypass.__all__) <= set(namespace)


def test_a_submodule_is_an_attribute_and_an_unknown_name_is_an_attribute_error() -> None:
    assert diffbypass.bypass is importlib.import_module("diffbypass.bypass")
    with pytest.raises(AttributeError, match="module 'diffbypass' has no attribute 'Bypas'"):
        diffbypass.Bypas  # noqa: B018
    assert not hasattr(diffbypass, "nothing")


def test_a_killable_pool_worker_is_ready_with_what_the_package_imports() -> None:
    """A worker says it is ready once torch and the package are imported, so that a task's
    timeout never includes torch's start-up. (Failed when the package's names became lazy: a
    0.5 s timeout then killed the first task on a fresh worker, ``test_timeouts.py``.)"""
    from diffbypass import KillablePool

    with KillablePool(1) as pool:
        loaded = pool.submit(eval, "sorted(m for m in ('torch', 'diffbypass.bypass') "
                                   "if m in __import__('sys').modules)").result(timeout=120)
    assert loaded == ["diffbypass.bypass", "torch"]
