"""`make wheel` builds an abi3 wheel that installs into a fresh virtual environment with no Rust
toolchain on PATH and runs the README's quick start (issue 13, "Using what was built").

The wheel comes from `dist/` when `make wheel` already built it from the current sources;
otherwise this test builds it with maturin (reusing the release build of `target/`). The fresh
environment gets numpy from the package registry (pip's cache when warm)."""

import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.wheel


def _newest_source_time() -> float:
    paths = [ROOT / "Cargo.toml", ROOT / "pyproject.toml", *ROOT.glob("src/*.rs"), *ROOT.glob("crates/*/src/**/*.rs"),
             *ROOT.glob("python/akida/**/*")]
    return max(p.stat().st_mtime for p in paths if p.is_file())


def _wheel(tmp_path: Path) -> Path:
    built = sorted((ROOT / "dist").glob("openakida-*-abi3-*.whl"), key=lambda p: p.stat().st_mtime)
    if built and built[-1].stat().st_mtime >= _newest_source_time():
        return built[-1]
    maturin = Path(sys.executable).parent / "maturin"
    if not maturin.exists():
        pytest.fail("maturin is not installed next to the test interpreter; run `make wheel` first")
    out = tmp_path / "dist"
    subprocess.run([str(maturin), "build", "--release", "--quiet", "--out", str(out)], cwd=ROOT, check=True,
                   timeout=900)
    (wheel,) = out.glob("openakida-*-abi3-*.whl")
    return wheel


def _quick_start() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Quick start")
    block = re.search(r"```python\n(.*?)```", readme[start:], re.S)
    assert block, "the README has no quick start block"
    return block.group(1)


def test_wheel_installs_in_a_fresh_venv_without_rust_and_runs_the_quick_start(tmp_path):
    wheel = _wheel(tmp_path)
    assert "abi3" in wheel.name
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    # No Rust toolchain: only the fresh environment and the system directories.
    path = os.pathsep.join([str(env_dir / "bin"), "/usr/bin", "/bin"])
    assert shutil.which("cargo", path=path) is None and shutil.which("rustc", path=path) is None
    env = {"PATH": path, "HOME": os.environ.get("HOME", str(tmp_path)), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], env=env, check=True, timeout=600)
    script = tmp_path / "quickstart.py"
    script.write_text(_quick_start())
    run = subprocess.run([str(python), str(script)], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Layer (type)" in run.stdout and "LayerStatistics" in run.stdout
    assert (tmp_path / "model.fbz").is_file()
    # The installed package is the wheel's, not the source tree's.
    where = subprocess.run([str(python), "-c", "import akida; print(akida.__file__)"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, check=True)
    assert str(env_dir) in where.stdout
