"""scripts/build.py: reproducible zips, manifest hashes, Lambda's limits."""
from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("build", ROOT / "scripts" / "build.py")
build = importlib.util.module_from_spec(spec)
sys.modules["build"] = build  # dataclasses look their module up while the class is built
spec.loader.exec_module(build)


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory):
    """The same tree built twice into different folders (layer without third-party wheels)."""
    outs = [tmp_path_factory.mktemp(f"build{i}") for i in range(2)]
    manifests = [build.build(out, "x86_64", "3.12", with_deps=False) for out in outs]
    return outs, manifests


def zips(out: Path) -> list[Path]:
    return sorted(out.glob("**/*.zip"))


def test_two_builds_are_byte_identical(two_builds):
    (a, b), _ = two_builds
    names = [p.relative_to(a) for p in zips(a)]
    assert names == [p.relative_to(b) for p in zips(b)]
    assert len(names) >= 2
    for rel in names:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_every_function_folder_has_a_zip(two_builds):
    (out, _), (manifest, _) = two_builds
    folders = sorted(p.parent.name for p in (ROOT / "functions").glob("*/handler.py"))
    assert sorted(manifest["functions"]) == folders
    for name in folders:
        with zipfile.ZipFile(out / "functions" / f"{name}.zip") as zf:
            assert "handler.py" in zf.namelist()


def test_manifest_hash_is_base64_sha256_of_the_zip(two_builds):
    (out, _), (manifest, _) = two_builds
    entries = [manifest["layers"]["shared"], *manifest["functions"].values()]
    for entry in entries:
        data = (out / entry["path"]).read_bytes()
        assert entry["source_code_hash"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
        assert entry["size"] == len(data)


def test_entries_are_sorted_with_fixed_time_and_mode(two_builds):
    (out, _), _ = two_builds
    for path in zips(out):
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            assert [i.filename for i in infos] == sorted(i.filename for i in infos)
            for info in infos:
                assert info.date_time == build.FIXED_DATE
                assert (info.external_attr >> 16) & 0o777 == 0o644
                assert "__pycache__" not in info.filename and not info.filename.endswith(".pyc")


def test_layer_carries_the_package_and_the_contracts(two_builds):
    (out, _), _ = two_builds
    with zipfile.ZipFile(out / "layers" / "shared.zip") as zf:
        names = set(zf.namelist())
    assert "python/mangaassist/__init__.py" in names
    schemas = sorted(p.relative_to(ROOT / "schemas").as_posix() for p in (ROOT / "schemas").rglob("*.json"))
    assert {f"python/mangaassist/_schemas/{s}" for s in schemas} <= names


def test_pip_noise_is_removed_from_installed_dependencies(tmp_path, monkeypatch):
    """install_dependencies strips console scripts and machine-specific dist-info files."""

    def fake_pip(cmd, capture_output, text):
        target = Path(cmd[cmd.index("--target") + 1])
        (target / "bin").mkdir(parents=True)
        (target / "bin" / "tool").write_text("#!/home/someone/.venv/bin/python\n")
        info = target / "pkg-1.0.dist-info"
        info.mkdir()
        for name in ("METADATA", "RECORD", "INSTALLER", "REQUESTED", "direct_url.json"):
            (info / name).write_text(name)
        assert "--require-hashes" in cmd and "--only-binary=:all:" in cmd and "--no-compile" in cmd
        assert cmd[cmd.index("--python-version") + 1] == "3.12"
        return type("Done", (), {"returncode": 0, "stderr": ""})()

    monkeypatch.setattr(build.subprocess, "run", fake_pip)
    lock = tmp_path / "requirements.txt"
    lock.write_text("pkg==1.0 --hash=sha256:00\n")
    deps = build.install_dependencies(lock, "x86_64", "3.12", tmp_path / "cache")
    assert sorted(p.name for p in deps.rglob("*") if p.is_file()) == ["METADATA"]
    # A second build with the same lock reuses the folder instead of calling pip.
    monkeypatch.setattr(build.subprocess, "run", None)
    assert build.install_dependencies(lock, "x86_64", "3.12", tmp_path / "cache") == deps


def test_zip_over_lambdas_limit_fails_loudly(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "MAX_ZIPPED", 10)
    src = tmp_path / "big.bin"
    src.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(build.BuildError, match="Lambda's limit"):
        build.write_zip(tmp_path / "big.zip", [(src, "big.bin")])


def test_function_plus_layer_over_unzipped_limit_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "MAX_UNZIPPED", 100)
    with pytest.raises(build.BuildError, match="unzip to more than"):
        build.build(tmp_path, "x86_64", "3.12", with_deps=False)


@pytest.mark.parametrize("lock", ["requirements.txt", "requirements-dev.txt"])
def test_locks_are_hashed_and_name_no_local_index(lock):
    text = (ROOT / lock).read_text()
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==", text, flags=re.M)
    assert pins, "the lock pins packages"
    assert text.count("--hash=sha256:") >= len(pins)
    assert not re.search(r"^\s*(-i|--index-url|--extra-index-url|-f|--find-links)\b", text, flags=re.M)
    assert "file://" not in text and "/opt/" not in text


def test_dev_lock_pins_runtime_packages_at_the_same_versions():
    def pins(name):
        return dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", (ROOT / name).read_text(), flags=re.M))

    runtime, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    assert {k: dev.get(k) for k in runtime} == runtime


def test_build_version_is_one_id_for_the_whole_build(two_builds):
    (out, _), (manifest, other) = two_builds
    assert re.fullmatch(r"[0-9a-f]{12}", manifest["build_version"])
    assert manifest["build_version"] == other["build_version"], "the same zips give the same version"
    entries = {f"layers/{n}": e for n, e in manifest["layers"].items()} | {
        f"functions/{n}": e for n, e in manifest["functions"].items()}
    changed = {**entries, "functions/health": {**entries["functions/health"], "source_code_hash": "changed"}}
    assert build.build_version(entries) == manifest["build_version"]
    assert build.build_version(changed) != manifest["build_version"], "any changed zip gives a new version"
    # The order the artifacts come in does not matter.
    assert build.build_version(dict(reversed(list(entries.items())))) == manifest["build_version"]


@pytest.fixture
def own_lock_builds(tmp_path, monkeypatch):
    """Two builds in which pip is replaced: the layer's lock installs nothing, a function's own lock
    installs a fake package ``jwtish`` (so the test runs offline and fast)."""
    installed = []

    def fake_install(lock, arch, python_version, cache):
        installed.append(lock)
        target = cache / f"fake-{lock.parent.name}"
        if lock == ROOT / "requirements.txt":
            target.mkdir(parents=True, exist_ok=True)
            return target
        (target / "jwtish").mkdir(parents=True, exist_ok=True)
        (target / "jwtish" / "__init__.py").write_text("VERSION = '1'\n")
        (target / "jwtish-1.0.dist-info").mkdir(exist_ok=True)
        (target / "jwtish-1.0.dist-info" / "METADATA").write_text("Name: jwtish\n")
        return target

    monkeypatch.setattr(build, "install_dependencies", fake_install)
    outs = [tmp_path / "a", tmp_path / "b"]
    manifests = [build.build(out, "x86_64", "3.12", with_deps=True) for out in outs]
    return outs, manifests, installed


def own_lock_functions() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "functions").glob(f"*/{build.FUNCTION_LOCK}"))


def test_a_function_with_its_own_lock_ships_what_it_installs(own_lock_builds):
    (out, _), _, installed = own_lock_builds
    owners = own_lock_functions()
    assert "authorizer" in owners, "the authorizer has its own lock (PyJWT, cryptography)"
    assert {ROOT / "functions" / name / build.FUNCTION_LOCK for name in owners} <= set(installed)
    for name in owners:
        with zipfile.ZipFile(out / "functions" / f"{name}.zip") as zf:
            names = set(zf.namelist())
        assert {"handler.py", "jwtish/__init__.py", "jwtish-1.0.dist-info/METADATA"} <= names, name
        assert not names & {build.FUNCTION_LOCK, build.FUNCTION_LOCK_SOURCE}, "lock files are not code"
    with zipfile.ZipFile(out / "functions" / "health.zip") as zf:
        assert not any(n.startswith("jwtish") for n in zf.namelist()), "only the function with the lock gets it"
    with zipfile.ZipFile(out / "layers" / "shared.zip") as zf:
        assert not any("jwtish" in n for n in zf.namelist()), "the layer does not carry a function's dependencies"


def test_a_function_with_its_own_lock_still_builds_byte_identical(own_lock_builds):
    (a, b), (first, second), _ = own_lock_builds
    for name in own_lock_functions():
        assert (a / "functions" / f"{name}.zip").read_bytes() == (b / "functions" / f"{name}.zip").read_bytes()
    assert first["build_version"] == second["build_version"]


def test_a_function_file_that_its_requirements_also_install_fails_loudly(tmp_path):
    folder, deps = tmp_path / "fn", tmp_path / "deps"
    (folder / "jwt").mkdir(parents=True)
    (deps / "jwt").mkdir(parents=True)
    for base in (folder, deps):
        (base / "jwt" / "__init__.py").write_text("")
    (folder / "handler.py").write_text("")
    with pytest.raises(build.BuildError, match="jwt/__init__.py"):
        build.function_files(folder, deps)
# --- byte-identical across checkouts, umasks and time zones, dependencies included -------------
def wheel(folder: Path, name: str, tag: str, files: dict[str, bytes], console_script: bool = False) -> Path:
    """A minimal, valid wheel: the files, METADATA, WHEEL, an entry point if asked, and RECORD."""
    info = f"{name}-1.0.dist-info"
    files = {**files, f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n".encode(),
             f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: "
                              f"{'true' if tag.startswith('py3') else 'false'}\nTag: {tag}\n".encode()}
    if console_script:
        files[f"{info}/entry_points.txt"] = f"[console_scripts]\n{name}-tool = {name}:main\n".encode()
    record = "".join(f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
                     f"{len(data)}\n" for path, data in files.items()) + f"{info}/RECORD,,\n"
    path = folder / f"{name}-1.0-{tag}.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for arcname, data in [*files.items(), (f"{info}/RECORD", record.encode())]:
            zf.writestr(arcname, data)
    return path


def hashed_lock(wheels: list[Path]) -> str:
    """A hashed lock naming local wheels, as pip-compile --generate-hashes names registry ones."""
    return "".join(f"{p.name.split('-')[0]} @ {p.as_uri()} --hash=sha256:{hashlib.sha256(p.read_bytes()).hexdigest()}\n"
                   for p in wheels)


def checkout(where: Path, lock: str, mode: int, mtime: float) -> Path:
    """What `make build` reads, laid out as a checkout, with files of ``mode`` last changed at
    ``mtime`` (another clone, on another machine, on another day)."""
    for part in ("functions", "layers", "schemas"):
        shutil.copytree(ROOT / part, where / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (where / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "build.py", where / "scripts" / "build.py")
    (where / "requirements.txt").write_text(lock)
    for own in (where / "functions").glob("*/requirements.txt"):  # a function's own lock: the same local wheels
        own.write_text(lock)
    for path in where.rglob("*"):
        if path.is_file():
            path.chmod(mode)
            os.utime(path, (mtime, mtime))
    return where


def build_in(tree: Path, out: Path, *, umask: int, tz: str, offline: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "TZ": tz, "PIP_CACHE_DIR": str(out.parent / "pip-cache"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if offline:
        env["PIP_NO_INDEX"] = "1"  # the wheels are local: pip never asks an index
    return subprocess.run([sys.executable, str(tree / "scripts" / "build.py"), "--out", str(out)], cwd=tree.parent,
                          env=env, capture_output=True, text=True, preexec_fn=lambda: os.umask(umask), timeout=600)


def build_twice(tmp_path: Path, lock: str, *, offline: bool) -> tuple[Path, Path]:
    """Two checkouts in different folders, files of different modes, built under different umasks
    and time zones: the same bytes are expected."""
    outs = []
    for label, mode, umask, tz, mtime in (("a", 0o644, 0o022, "UTC", 1_700_000_000),
                                          ("b/deeper/clone", 0o600, 0o077, "Pacific/Chatham", 1_800_000_000)):
        tree = checkout(tmp_path / label / "mangaassist", lock, mode, mtime)
        out = tmp_path / label / "out"
        done = build_in(tree, out, umask=umask, tz=tz, offline=offline)
        assert done.returncode == 0, done.stderr
        outs.append(out)
    return outs[0], outs[1]


def assert_identical(a: Path, b: Path) -> None:
    names = [p.relative_to(a) for p in zips(a)]
    assert names and names == [p.relative_to(b) for p in zips(b)]
    for rel in names:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "manifest.json").read_text() == (b / "manifest.json").read_text()


def test_builds_are_byte_identical_across_checkouts_umasks_and_time_zones_with_dependencies(tmp_path):
    """The layer's dependencies go through the same path as `make build` (pip for Lambda's platform,
    hashed, then pip's machine-specific files stripped): here a pure wheel and a platform wheel
    with a console script, from local files, so the test needs no network."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    lock = hashed_lock([
        wheel(wheels, "tinypure", "py3-none-any", {"tinypure/__init__.py": b"VALUE = 1\n"}),
        wheel(wheels, "tinynative", "cp312-cp312-manylinux2014_x86_64",
              {"tinynative/__init__.py": b"def main():\n    pass\n",
               "tinynative/_speed.cpython-312-x86_64-linux-gnu.so": bytes(range(256))}, console_script=True),
    ])
    a, b = build_twice(tmp_path, lock, offline=True)
    assert_identical(a, b)
    with zipfile.ZipFile(a / "layers" / "shared.zip") as zf:
        names = set(zf.namelist())
        modes = {(info.external_attr >> 16) & 0o777 for info in zf.infolist()}
    assert {"python/tinypure/__init__.py", "python/tinynative/_speed.cpython-312-x86_64-linux-gnu.so",
            "python/tinynative-1.0.dist-info/METADATA", "python/mangaassist/__init__.py"} <= names
    assert not any(n.startswith("python/bin/") or n.endswith(("/RECORD", "/INSTALLER", "/direct_url.json"))
                   for n in names), "pip's machine-specific files are stripped"
    assert modes == {0o644}


@pytest.mark.skipif(os.environ.get("MANGAASSIST_REGISTRY_TESTS") != "1",
                    reason="downloads the layer's wheels from the package registry: MANGAASSIST_REGISTRY_TESTS=1")
def test_full_layer_builds_are_byte_identical_across_checkouts_umasks_and_time_zones(tmp_path):
    """requirements.txt as `make build` installs it, from the registry (~1 minute for both builds)."""
    a, b = build_twice(tmp_path, (ROOT / "requirements.txt").read_text(), offline=False)
    assert_identical(a, b)
    with zipfile.ZipFile(a / "layers" / "shared.zip") as zf:
        names = set(zf.namelist())
    assert "python/boto3/__init__.py" in names and any(n.startswith("python/nacl/_sodium") for n in names)
