"""The house's rules that no linter states: short functions, one name per module, layers as folders."""

import ast
import collections
import configparser
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "nst_tf"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _functions(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.end_lineno - node.lineno + 1


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_function_is_over_sixty_lines(path):
    long = [(name, lines) for name, lines in _functions(path) if lines > 60]
    assert not long, long


def test_no_two_modules_share_a_name():
    names = collections.Counter(path.name for path in MODULES if path.name not in ("__init__.py", "__main__.py"))
    assert [name for name, count in names.items() if count > 1] == []


def test_the_layers_contract_names_every_folder_of_the_package():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    contract = config["importlinter:contract:layers"]
    layers = {name.strip() for line in contract["layers"].split("\n") for name in line.split("|") if name.strip()}
    children = {
        path.stem
        for path in PACKAGE.iterdir()
        if path.name != "__init__.py" and (path.suffix == ".py" or (path / "__init__.py").exists())
    }  # nst_tf/images/ holds data, no modules
    assert layers == children
    assert contract["exhaustive"] == "true"


def test_every_public_name_is_found_where_the_package_says():
    import nst_tf

    for name in nst_tf.__all__:
        value = getattr(nst_tf, name)
        assert name.isupper() or value.__name__ == name, name
    assert nst_tf.presets.PRESETS and nst_tf.cs231n.style_loss
    with pytest.raises(AttributeError, match="module 'nst_tf' has no attribute 'stylise'"):
        nst_tf.stylise


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "__init__.py"], ids=lambda p: p.name)
def test_no_module_imports_from_its_own_packages_init(path):
    """``from . import name`` takes submodules only: a registry or a name lives in a module of its own."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None:
            for alias in node.names:
                assert (path.parent / f"{alias.name}.py").exists() or (path.parent / alias.name).is_dir(), alias.name
