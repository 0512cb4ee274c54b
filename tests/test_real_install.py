"""Real installs: pip installs plugin packages into a folder, and subprocesses see them through PYTHONPATH.

examples/plugins/ember-example (a Callback and a hookimpl module), a package
that fails to import, one that pins ``ember<0.1``, one that raises inside a
hook, and a package scaffolded by ``ember plugins new``. Nothing is mocked:
the entry points are the ones pip writes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from textwrap import dedent

import pytest
from packaging.version import Version

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "plugins" / "ember-example"

TRAIN = """
import json, sys
import ember
from ember.testing import TinyModel

class Watcher(ember.Callback):
    def on_exception(self, trainer, pl_module, exception):
        print("on_exception:", type(exception).__name__)

kwargs = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
trainer = ember.Trainer(
    max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False, enable_checkpointing=False,
    enable_progress_bar=False, enable_model_summary=False, default_root_dir=".", callbacks=[Watcher()], **kwargs
)
trainer.fit(TinyModel())
print("PLUGINS", json.dumps(sorted(name for name, _ in trainer.plugin_manager.list_name_plugin())))
print("MODULES", json.dumps(sorted(m for m in sys.modules if m.startswith("ember_"))))
"""


def pip_install(target: Path, *sources: Path) -> None:
    """``pip install --target``, offline when this environment's setuptools can build wheels itself."""
    try:
        offline = Version(version("setuptools")) >= Version("70.1")
    except PackageNotFoundError:
        offline = False
    isolation = ["--no-build-isolation"] if offline else []
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps"]
    subprocess.run([*command, *isolation, "--target", str(target), *map(str, sources)], check=True, timeout=600)


def make_package(
    root: Path,
    dist: str,
    source: str,
    entry_points: dict[str, str],
    requires: str = "",
    hookspecs: dict[str, str] | None = None,
) -> Path:
    """A one-module distribution with ``ember.plugins`` (and ``ember.hookspecs``) entry points, ready for pip."""
    package = root / dist
    package.mkdir()
    module = dist.replace("-", "_")
    (package / f"{module}.py").write_text(dedent(source))
    entries = "".join(f'{name} = "{value}"\n' for name, value in entry_points.items())
    if hookspecs:
        entries += '\n[project.entry-points."ember.hookspecs"]\n'
        entries += "".join(f'{name} = "{value}"\n' for name, value in hookspecs.items())
    dependencies = f'"{requires}"' if requires else ""
    (package / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{dist}"\nversion = "0.2.0"\ndependencies = [{dependencies}]\n\n'
        f'[project.entry-points."ember.plugins"]\n{entries}\n[tool.setuptools]\npy-modules = ["{module}"]\n'
    )
    return package


def copy_example(root: Path) -> Path:
    """A copy of the example, so the build leaves nothing behind in the repository."""
    return Path(shutil.copytree(EXAMPLE, root / "ember-example", ignore=shutil.ignore_patterns("build", "*.egg-info")))


Run = Callable[..., subprocess.CompletedProcess[str]]


def runner(site: Path, cwd: Path) -> Run:
    def run(
        *args: str, env: dict[str, str] | None = None, folder: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("EMBER_")}
        environment.update(PYTHONPATH=str(site), **(env or {}))
        return subprocess.run(
            list(args), capture_output=True, text=True, cwd=folder or cwd, env=environment, timeout=600
        )

    return run


def train(
    run: Run, folder: Path, env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    script = folder / "train.py"
    script.write_text(TRAIN)
    return run(sys.executable, str(script), json.dumps(kwargs), env=env, folder=folder)


def listing(run: Run, env: dict[str, str] | None = None, folder: Path | None = None) -> tuple[int, dict[str, dict]]:
    result = run(sys.executable, "-m", "ember", "plugins", "list", "--json", env=env, folder=folder)
    return result.returncode, {entry["name"]: entry for entry in json.loads(result.stdout)}


def marked(output: str, label: str) -> list[str]:
    return json.loads(next(line for line in output.splitlines() if line.startswith(label))[len(label) :])


def expected_code(entries: dict[str, dict]) -> int:
    return 1 if any(e["status"] in ("failed", "incompatible") for e in entries.values()) else 0


# ----------------------------------------------------------------------------- the example
@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("example")
    pip_install(root / "site", copy_example(root))
    (root / "work").mkdir()
    return runner(root / "site", root / "work")


def test_list_shows_the_installed_example(example: Run) -> None:
    code, entries = listing(example)
    counter, hooks = entries["example_counter"], entries["example_hooks"]
    assert counter == {
        "name": "example_counter",
        "distribution": "ember-example",
        "version": "0.1.0",
        "source": "entrypoint",
        "status": "active",
        "reason": None,
        "hooks": ["on_train_end", "on_train_batch_end", "state_dict", "load_state_dict"],
        "object": "ember_example.counter:BatchCounter",
    }
    assert (hooks["status"], hooks["hooks"]) == ("active", ["on_fit_start", "on_train_epoch_end"])
    assert code == expected_code(entries)


def test_the_console_script_shows_the_plugin_in_the_version_header(example: Run) -> None:
    result = example(str(Path(sys.executable).parent / "ember"), "--version")
    assert "plugins: ember-example-0.1.0" in result.stdout.splitlines()


def test_show_tells_where_a_plugin_comes_from(example: Run) -> None:
    out = example(sys.executable, "-m", "ember", "plugins", "show", "example_counter").stdout
    assert "example_counter = ember_example.counter:BatchCounter [ember.plugins]" in out
    assert "ember-example 0.1.0 (entrypoint)" in out and "state_key:     BatchCounter" in out
    assert "Counts training batches" in out


def test_a_trainer_runs_the_example_plugins(example: Run, tmp_path: Path) -> None:
    result = train(example, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ember-example: fit starts, 1 epoch(s)" in result.stdout
    assert "ember-example: epoch 0 done" in result.stdout
    assert "example_counter: 2 training batches" in result.stdout
    assert {"example_counter", "example_hooks"} <= set(marked(result.stdout, "PLUGINS "))


def test_autoload_off_loads_nothing_and_imports_nothing(example: Run, tmp_path: Path) -> None:
    off = {"EMBER_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = train(example, tmp_path, env=off)
    assert "ember-example" not in result.stdout and marked(result.stdout, "MODULES ") == []
    _, entries = listing(example, env=off)
    assert entries["example_counter"]["status"] == entries["example_hooks"]["status"] == "disabled"


def test_ember_plugins_loads_just_the_named_ones(example: Run, tmp_path: Path) -> None:
    result = train(example, tmp_path, env={"EMBER_DISABLE_PLUGIN_AUTOLOAD": "1", "EMBER_PLUGINS": "example_counter"})
    assert "example_counter: 2 training batches" in result.stdout and "fit starts" not in result.stdout
    assert "ember_example.hooks" not in marked(result.stdout, "MODULES ")


def test_trainer_disable_plugins_blocks_before_import(example: Run, tmp_path: Path) -> None:
    result = train(example, tmp_path, disable_plugins=["example_hooks"])
    assert "example_counter: 2 training batches" in result.stdout and "fit starts" not in result.stdout
    assert "ember_example.hooks" not in marked(result.stdout, "MODULES ")


def test_environment_blocks_before_import(example: Run, tmp_path: Path) -> None:
    env = {"EMBER_DISABLE_PLUGINS": "example_counter"}
    result = train(example, tmp_path, env=env)
    assert "training batches" not in result.stdout and "fit starts" in result.stdout
    assert "ember_example.counter" not in marked(result.stdout, "MODULES ")
    _, entries = listing(example, env=env)
    assert entries["example_counter"]["status"] == "blocked"


def test_pyproject_blocks_and_configures_plugins(example: Run, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.ember]\ndisable_plugins = ["example_hooks"]\n')
    (tmp_path / "sub").mkdir()
    _, entries = listing(example, folder=tmp_path / "sub")
    assert entries["example_hooks"]["status"] == "blocked"
    assert str(tmp_path / "pyproject.toml") in entries["example_hooks"]["reason"]
    (tmp_path / "pyproject.toml").write_text('[tool.ember.example_counter]\nlabel = "counted"\n')
    assert "counted: 2 training batches" in train(example, tmp_path).stdout


def test_the_examples_own_tests_pass_with_ember_testing(example: Run, tmp_path: Path) -> None:
    copy = copy_example(tmp_path)
    result = example(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(copy / "tests"), folder=copy)
    assert " passed" in result.stdout and result.returncode == 0, result.stdout[-3000:]


# ------------------------------------------------------------ ember fit chooses it by name
FIT_CONFIG = """
trainer:
  max_epochs: 1
  limit_train_batches: 2
  limit_val_batches: 1
  logger: false
  enable_checkpointing: false
  enable_progress_bar: false
  enable_model_summary: false
  default_root_dir: .
model: ember.testing.models.TinyModel
"""


def test_ember_fit_chooses_and_configures_an_installed_plugin_by_name(example: Run, tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(FIT_CONFIG)
    name = ["--trainer.callbacks+=example_counter", "--trainer.callbacks.example_counter.label", "counted"]
    result = example(sys.executable, "-m", "ember", "fit", "--config", "run.yaml", *name, folder=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "counted: 2 training batches" in result.stdout
    assert "example_counter: 2 training batches" not in result.stdout  # the configured one replaced the autoloaded one
    assert "#   ember-example 0.1.0: example_counter, example_hooks" in (tmp_path / "config.yaml").read_text()


def test_ember_fit_checks_an_installed_plugins_arguments(example: Run, tmp_path: Path) -> None:
    (tmp_path / "run.yaml").write_text(
        FIT_CONFIG.replace("trainer:\n", "trainer:\n  callbacks:\n    - example_counter: {lable: counted}\n")
    )
    result = example(sys.executable, "-m", "ember", "fit", "--config", "run.yaml", folder=tmp_path)
    assert result.returncode == 2 and not (tmp_path / "config.yaml").exists()
    assert (
        "unknown key 'lable' at trainer.callbacks[0].init_args.lable (run.yaml:4); did you mean `label`?"
        in result.stderr
    )


# ------------------------------------------------------------------------ broken packages
BROKEN = """
import no_such_dependency

class Plugin:
    pass
"""

OLD = """
raise RuntimeError("an incompatible plugin must not be imported")
"""


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("mixed")
    broken = make_package(root, "ember-broken", BROKEN, {"broken": "ember_broken:Plugin"})
    old = make_package(root, "ember-old", OLD, {"old": "ember_old:Plugin"}, requires="ember<0.1")
    pip_install(root / "site", copy_example(root), broken, old)
    (root / "work").mkdir()
    return runner(root / "site", root / "work")


def test_broken_and_incompatible_packages_are_reported(mixed: Run) -> None:
    code, entries = listing(mixed)
    broken, old = entries["broken"], entries["old"]
    assert (broken["status"], broken["distribution"], broken["version"]) == ("failed", "ember-broken", "0.2.0")
    assert "No module named 'no_such_dependency'" in broken["reason"]
    assert old["status"] == "incompatible" and "requires ember<0.1" in old["reason"]
    assert entries["example_counter"]["status"] == "active"
    assert code == 1


def test_the_traceback_is_shown_on_request(mixed: Run) -> None:
    result = mixed(sys.executable, "-m", "ember", "plugins", "show", "broken")
    assert result.returncode == 1
    assert "Traceback" in result.stdout and "import no_such_dependency" in result.stdout
    assert "Traceback" in mixed(sys.executable, "-m", "ember", "plugins", "list", "--traceback").stdout


def test_a_trainer_warns_and_runs_without_them(mixed: Run, tmp_path: Path) -> None:
    result = train(mixed, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "plugin 'broken' (ember-broken 0.2.0) was left out (failed): cannot import" in result.stderr
    assert "plugin 'old' (ember-old 0.2.0) was left out (incompatible)" in result.stderr
    assert "example_counter: 2 training batches" in result.stdout
    assert "ember_old" not in marked(result.stdout, "MODULES ")


@pytest.mark.parametrize("how", ["environment", "argument"])
def test_strict_mode_fails_before_training_starts(mixed: Run, tmp_path: Path, how: str) -> None:
    if how == "environment":
        result = train(mixed, tmp_path, env={"EMBER_STRICT_PLUGINS": "1"})
    else:
        result = train(mixed, tmp_path, strict_plugins=True)
    assert result.returncode != 0
    assert "PluginError" in result.stderr and "'broken' (ember-broken 0.2.0)" in result.stderr
    assert "ModuleNotFoundError" in result.stderr  # the cause, chained
    assert "fit starts" not in result.stdout


# -------------------------------------------------------------------- a failing hook
RAISER = """
import ember

class Raiser(ember.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        raise KeyError("raised by the plugin")
"""


def test_an_exception_in_a_plugin_hook_names_the_plugin(tmp_path: Path) -> None:
    package = make_package(tmp_path, "ember-raiser", RAISER, {"raiser": "ember_raiser:Raiser"})
    pip_install(tmp_path / "site", package)
    result = train(runner(tmp_path / "site", tmp_path), tmp_path)
    assert result.returncode != 0 and "KeyError" in result.stderr
    assert "raised in hook 'on_train_epoch_start' of plugin 'raiser' (from ember-raiser 0.2.0)" in result.stderr
    assert "on_exception: KeyError" in result.stdout


# ----------------------------------------------------------------------- ember plugins new
def test_a_scaffolded_plugin_installs_and_passes_its_tests(tmp_path: Path) -> None:
    run = runner(tmp_path / "site", tmp_path)
    created = run(sys.executable, "-m", "ember", "plugins", "new", "epoch-counter", "--directory", str(tmp_path))
    assert created.returncode == 0, created.stderr
    package = tmp_path / "ember-epoch-counter"
    pip_install(tmp_path / "site", package)
    _, entries = listing(run)
    assert entries["epoch_counter"]["status"] == "active"
    result = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests"), folder=package)
    assert "3 passed" in result.stdout, result.stdout[-3000:]


# ------------------------------------------------- plugins that extend ember (issue: new hooks, trust policy)
SPECS = """
import ember

class Hooks:
    @ember.hookspec
    def specs_on_epoch_loss(self, trainer, value):
        '''Called by ember-specs at the end of each training epoch with the epoch's loss.'''

class Announcer(ember.Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        trainer.plugin_manager.hook.specs_on_epoch_loss(trainer=trainer, value=1.5)
"""

IMPL = """
import ember

@ember.hookimpl
def specs_on_epoch_loss(value):
    print("impl received", value)
"""

MARKED = """
import os, pathlib
pathlib.Path(os.environ["MARKER"]).write_text("imported")

import ember

class Plugin(ember.Callback):
    pass
"""


@pytest.fixture(scope="module")
def extending(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    """Two sites: one with a spec-declaring and an implementing distribution, one with the implementing one only."""
    root = tmp_path_factory.mktemp("extending")
    specs = make_package(
        root, "ember-specs", SPECS, {"announcer": "ember_specs:Announcer"}, hookspecs={"specs": "ember_specs:Hooks"}
    )
    impl = make_package(root, "ember-impl", IMPL, {"impl": "ember_impl"}, requires="ember-specs")
    allowed = make_package(
        root,
        "ember-allowed",
        "import ember\nclass Plugin(ember.Callback):\n    pass\n",
        {"allowed": "ember_allowed:Plugin"},
    )
    denied = make_package(root, "ember-denied", MARKED, {"denied": "ember_denied:Plugin"})
    pip_install(root / "full", specs, impl, allowed, denied)
    pip_install(root / "partial", impl)
    (root / "work").mkdir()
    return runner(root / "full", root / "work"), runner(root / "partial", root / "work")


def test_a_plugin_calls_the_hooks_it_declared_and_another_distribution_implements(extending, tmp_path: Path) -> None:
    full, _ = extending
    result = train(full, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "impl received 1.5" in result.stdout


def test_ember_hooks_lists_declared_hooks_with_their_distribution(extending) -> None:
    full, _ = extending
    lines = full(sys.executable, "-m", "ember", "hooks").stdout.splitlines()
    line = next(line for line in lines if line.startswith("specs_on_epoch_loss(trainer, value)"))
    assert line.endswith("[declared by ember-specs 0.2.0]")


def test_an_implementation_of_a_missing_distributions_hook_is_left_out_as_needing_it(extending, tmp_path) -> None:
    _, partial = extending
    code, entries = listing(partial)
    assert entries["impl"]["status"] == "needs" and entries["impl"]["reason"].startswith("needs ember-specs")
    result = train(partial, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "plugin 'impl' (ember-impl 0.2.0) was left out (needs): needs ember-specs" in result.stderr


def test_in_strict_mode_a_missing_declaring_distribution_is_an_error(extending, tmp_path: Path) -> None:
    _, partial = extending
    result = train(partial, tmp_path, env={"EMBER_STRICT_PLUGINS": "1"})
    assert result.returncode != 0 and "PluginError" in result.stderr and "needs ember-specs" in result.stderr


def test_the_fit_header_names_active_third_party_plugins_with_versions(extending, tmp_path: Path) -> None:
    full, _ = extending
    result = train(full, tmp_path, env={"MARKER": str(tmp_path / "marker")})
    header = next(line for line in result.stdout.splitlines() if line.startswith("plugins: "))
    assert {"ember-specs-0.2.0", "ember-impl-0.2.0", "ember-allowed-0.2.0"} <= set(header[9:].split(", "))


def test_an_allow_list_never_imports_an_unlisted_plugin(extending, tmp_path: Path) -> None:
    full, _ = extending
    (tmp_path / "pyproject.toml").write_text('[tool.ember]\nallow_plugins = ["ember-allowed"]\n')
    marker = tmp_path / "marker"
    env = {"MARKER": str(marker)}
    result = train(full, tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    code, entries = listing(full, env=env, folder=tmp_path)
    assert entries["allowed"]["status"] == "active"
    assert entries["denied"]["status"] == "not allowed" and "allow_plugins" in entries["denied"]["reason"]
    assert not marker.exists()
    assert "ember_denied" not in marked(result.stdout, "MODULES ")


def test_a_missing_required_plugin_stops_before_any_model_code(extending, tmp_path: Path) -> None:
    full, _ = extending
    (tmp_path / "pyproject.toml").write_text('[tool.ember]\nrequired_plugins = ["ember-allowed>=1.0", "ember-x"]\n')
    result = train(full, tmp_path, env={"MARKER": str(tmp_path / "marker")})
    assert result.returncode != 0 and "PluginError" in result.stderr
    assert "ember-allowed>=1.0 is required but ember-allowed 0.2.0 is installed" in result.stderr
    assert "ember-x is required" in result.stderr
    code, _ = listing(full, env={"MARKER": str(tmp_path / "marker")}, folder=tmp_path)
    assert code == 1


def test_trace_logs_each_plugin_load_and_hook_call(extending, tmp_path: Path) -> None:
    full, _ = extending
    result = train(full, tmp_path, env={"EMBER_TRACE_PLUGINS": "1", "MARKER": str(tmp_path / "marker")})
    assert "ember trace: loaded plugin 'impl' (ember_impl) from ember-impl 0.2.0 in" in result.stderr
    assert "ember trace: specs_on_epoch_loss [impl]" in result.stderr


# ------------------------------------------------------------- ember plugins install / uninstall
def scratch_environment(root: Path) -> Path:
    """A venv that sees this environment's packages (ember, torch, pip) but installs into its own site-packages."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    query = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.run([python, "-c", query], capture_output=True, text=True, check=True).stdout.strip())
    parents = [p for p in sys.path if p.endswith("site-packages")]
    (site / "parent_environment.pth").write_text(
        "import site; " + "; ".join(f"site.addsitedir({p!r})" for p in parents)
    )
    return python


def wheel(root: Path, package: Path) -> Path:
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(root)]
    subprocess.run([*command, str(package)], check=True, timeout=600)
    return next(root.glob(f"{package.name.replace('-', '_')}-*.whl"))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("install")
    plain = make_package(root, "ember-not-a-plugin", "VALUE = 1\n", {})
    good = make_package(
        root, "ember-good", "import ember\nclass Plugin(ember.Callback):\n    pass\n", {"good": "ember_good:Plugin"}
    )
    return scratch_environment(root), wheel(root / "wheels", plain), wheel(root / "wheels", good)


def ember_in(python: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("EMBER_", "PYTHONPATH"))}
    environment["PIP_NO_INDEX"] = "1"
    return subprocess.run([str(python), "-m", *arguments], capture_output=True, text=True, env=environment, timeout=600)


def test_installing_a_package_without_an_entry_point_leaves_pip_freeze_unchanged(scratch) -> None:
    python, plain, _ = scratch
    before = ember_in(python, "pip", "freeze").stdout
    result = ember_in(python, "ember", "plugins", "install", str(plain))
    assert result.returncode == 1
    assert "ember-not-a-plugin declares no ember.plugins entry point" in result.stderr
    assert "rolled back" in result.stderr
    assert ember_in(python, "pip", "freeze").stdout == before


def test_a_plugin_installs_loads_and_uninstalls_by_entry_point_name(scratch) -> None:
    python, _, good = scratch
    before = ember_in(python, "pip", "freeze").stdout
    result = ember_in(python, "ember", "plugins", "install", str(good))
    assert result.returncode == 0, result.stderr[-3000:]
    listed = json.loads(ember_in(python, "ember", "plugins", "list", "--json").stdout)
    assert {"name": "good", "status": "active"}.items() <= next(e for e in listed if e["name"] == "good").items()
    assert ember_in(python, "ember", "plugins", "uninstall", "good").returncode == 0
    assert ember_in(python, "pip", "freeze").stdout == before
