"""The API reference lists every public name, and every public name is documented.

The generator (``docs/ext/apigen.py``) is called directly; Sphinx itself runs in
``make docs-check``, where ``docs/ext/coverage_check.py`` repeats the first check against what
autodoc actually documented.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "ext"))

import apigen  # noqa: E402
import coverage_check  # noqa: E402


def _importable(name: str) -> apigen.Loaded:
    loaded = apigen.load(name)
    if loaded.missing:
        pytest.skip(loaded.missing)
    assert not loaded.error, loaded.error
    return loaded


def listed_names(page: str) -> set[str]:
    """The entries of the ``autosummary`` tables of a generated page."""
    names: set[str] = set()
    for block in page.split(".. autosummary::")[1:]:
        for line in block.splitlines()[1:]:
            if line and not line.startswith("   "):
                break
            entry = line.strip()
            if entry and not entry.startswith(":"):
                names.add(entry)
    return names


def own_docstring(package: types.ModuleType, public: str) -> str:
    """The documentation a reader sees for ``package.public`` (empty when there is none)."""
    obj = getattr(package, public)
    if inspect.ismodule(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return (obj.__doc__ or "").strip()
    if inspect.isclass(obj):
        doc = (obj.__dict__.get("__doc__") or "").strip()  # not inherited from a base class
        if dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):
            return ""  # the signature dataclasses writes when there is no docstring
        return doc
    # data (constants, type aliases): a docstring after the assignment or a #: comment
    return apigen.attribute_doc(package, public)


@pytest.mark.parametrize("package", apigen.PACKAGES)
def test_every_public_name_is_on_the_api_page(package: str) -> None:
    loaded = _importable(package)
    page = apigen.render_page(loaded)
    missing = sorted(set(loaded.names) - listed_names(page))
    assert not missing, f"{package}.__all__ names missing from docs/api/{package}.rst: {missing}"


@pytest.mark.parametrize("package", apigen.PACKAGES)
def test_every_public_name_has_a_docstring(package: str) -> None:
    loaded = _importable(package)
    undocumented = []
    # the package's public names, and those of its public modules (lvseg.data.load_dataset)
    for full in coverage_check.expected_objects(loaded, apigen.PACKAGES):
        parent, _, public = full.rpartition(".")
        if not own_docstring(sys.modules[parent], public):
            undocumented.append(full)
    assert not undocumented, (
        f"public names of {package} without documentation: {undocumented}. Classes, functions "
        "and modules need a docstring; data needs a docstring after the assignment or a #: "
        "comment before it"
    )


# ------------------------------------------------------------------- the generator and the check
@pytest.fixture
def fake_package(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """``fakepkg``: a class, a function, a constant, a public module and a subpackage.

    ``fakepkg.sub`` has a page of its own; ``fakepkg.tools`` is documented with its members.
    """
    sub = types.ModuleType("fakepkg.sub", "A subpackage with its own page.")
    tools = types.ModuleType("fakepkg.tools", "A public module.")
    tools.helper, tools.__all__ = len, ["helper"]
    pkg = types.ModuleType("fakepkg", "A fake package.")
    pkg.__file__ = "fakepkg/__init__.py"

    class Thing:
        """A class."""

    def act() -> None:
        """A function."""

    pkg.Thing, pkg.act, pkg.LIMIT, pkg.sub, pkg.tools = Thing, act, 3, sub, tools
    pkg.__all__ = ["Thing", "act", "LIMIT", "sub", "tools"]
    for module in (pkg, sub, tools):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    return pkg


def test_page_groups_names_and_links_documented_subpackages(fake_package: types.ModuleType) -> None:
    page = apigen.render_page(apigen.load("fakepkg"), ("fakepkg", "fakepkg.sub"))
    assert ".. automodule:: fakepkg\n   :no-members:" in page
    sections = re.findall(r"^(\w[\w ]+)\n-+$", page, flags=re.M)
    assert sections == [
        "Classes", "Functions", "Data", "Modules", "Subpackages with their own page"
    ]
    assert listed_names(page) == {"Thing", "act", "LIMIT", "sub", "tools"}
    # the documented subpackage is linked, not given a second stub under :toctree:
    linked = page.split("Subpackages with their own page")[1]
    assert ":toctree:" not in linked and "   sub\n" in linked


def test_coverage_check_names_what_autodoc_did_not_document(
    fake_package: types.ModuleType,
) -> None:
    loaded = apigen.load("fakepkg")
    packages = ("fakepkg", "fakepkg.sub")
    documented = {"fakepkg.Thing", "fakepkg.sub", "fakepkg.tools"}  # modules: their own names
    assert coverage_check.missing_names(loaded, documented, packages) == [
        "fakepkg.LIMIT", "fakepkg.act", "fakepkg.tools.helper"
    ]
    everything = documented | {"fakepkg.act", "fakepkg.LIMIT", "fakepkg.tools.helper"}
    assert coverage_check.missing_names(loaded, everything, packages) == []


def test_package_that_is_not_installed_is_skipped_with_a_note() -> None:
    loaded = apigen.load("diffbypass_no_such_package")
    assert loaded.module is None and not loaded.error
    assert loaded.missing == "diffbypass_no_such_package is not installed"
    page = apigen.render_page(loaded)
    assert ".. note::" in page and "autosummary" not in page


def test_broken_import_and_missing_all_are_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "brokenpkg").mkdir()
    (tmp_path / "brokenpkg" / "__init__.py").write_text("import no_such_dependency_xyz\n")
    (tmp_path / "noallpkg").mkdir()
    (tmp_path / "noallpkg" / "__init__.py").write_text('"""No __all__."""\n')
    (tmp_path / "badallpkg").mkdir()
    (tmp_path / "badallpkg" / "__init__.py").write_text('__all__ = ["gone"]\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    broken = apigen.load("brokenpkg")
    assert broken.missing == "" and "no_such_dependency_xyz" in broken.error
    assert apigen.load("noallpkg").error == "noallpkg has no __all__; list its public names there"
    assert apigen.load("badallpkg").error == (
        "badallpkg.__all__ lists names the package lacks: ['gone']"
    )


def test_data_documentation_is_found_in_the_defining_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "datapkg").mkdir()
    (tmp_path / "datapkg" / "consts.py").write_text(
        'LIMIT = 3\n"""The limit."""\n\n#: The name.\nNAME = "n"\n\nBARE = 1.5\n'
    )
    (tmp_path / "datapkg" / "__init__.py").write_text(
        "from datapkg.consts import BARE, LIMIT, NAME\n"
        '__all__ = ["BARE", "LIMIT", "NAME"]\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import datapkg  # type: ignore[import-not-found]

    assert apigen.attribute_doc(datapkg, "LIMIT") == "The limit."
    assert apigen.attribute_doc(datapkg, "NAME") == "The name."
    assert apigen.attribute_doc(datapkg, "BARE") == ""
    assert own_docstring(datapkg, "BARE") == ""


def test_stale_pages_and_stubs_are_removed(tmp_path: Path, fake_package: types.ModuleType) -> None:
    generated = tmp_path / "generated"
    generated.mkdir()
    for stub in ("fakepkg.Thing", "fakepkg.Renamed"):
        (generated / f"{stub}.rst").write_text("stub\n")
    (tmp_path / "oldpkg.rst").write_text(".. Generated by docs/ext/apigen.py from oldpkg\n")
    (tmp_path / "handwritten.rst").write_text("Not generated.\n")
    apigen.write_pages(tmp_path, ("fakepkg", "fakepkg.sub"))
    assert sorted(p.name for p in generated.iterdir()) == ["fakepkg.Thing.rst"]
    assert sorted(p.name for p in tmp_path.glob("*.rst")) == [
        "fakepkg.rst", "fakepkg.sub.rst", "handwritten.rst"
    ]
