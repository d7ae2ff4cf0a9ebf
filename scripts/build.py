#!/usr/bin/env python3
"""Build deterministic Lambda zips: one per function folder and one shared layer.

Two builds of the same tree give byte-identical zips: entries are sorted, timestamps and
permissions are fixed, and nothing machine-specific (``__pycache__``, ``.pyc``, pip's
``RECORD``/``INSTALLER``/``direct_url.json``, console scripts with absolute shebangs) goes in.
The layer's third-party packages are installed from the hashed runtime lock for the Lambda
platform, so what was tested is what is deployed. A function that needs a heavy dependency only
it uses (the authorizer's PyJWT and cryptography) has its own hashed lock,
``functions/<name>/requirements.txt``: it is installed the same way into that function's zip, at
its root (Lambda's ``/var/task``), and the lock files themselves stay out of the zip.

Writes ``build/functions/<name>.zip``, ``build/layers/shared.zip`` and ``build/manifest.json``
(each zip's base64 sha256, as ``source_code_hash`` wants it, and its sizes, and ``build_version``:
one id for the whole build, which Terraform gives every function as ``BUILD_VERSION``).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Lambda's limits: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
MAX_ZIPPED = 50 * 1024 * 1024
MAX_UNZIPPED = 250 * 1024 * 1024  # function and all its layers together

# Zip's epoch; any fixed value works, this one is what every zip tool accepts.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
SKIP_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".DS_Store"}
SKIP_SUFFIXES = (".pyc", ".pyo")
# A function's own lock and what it was compiled from: build inputs, not code.
FUNCTION_LOCK, FUNCTION_LOCK_SOURCE = "requirements.txt", "requirements.in"
# pip metadata that varies with the machine or the install, not with the package.
PIP_NOISE = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}

PLATFORMS = {
    # Lambda's Python 3.12/3.13 runtimes run on Amazon Linux 2023 (glibc 2.34).
    "x86_64": ["manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64"],
    "arm64": ["manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64"],
}


class BuildError(Exception):
    pass


@dataclass(frozen=True)
class Artifact:
    path: Path
    sha256_b64: str
    size: int
    unzipped_size: int

    def manifest_entry(self, base: Path) -> dict:
        return {
            "path": self.path.relative_to(base).as_posix(),  # relative to the manifest
            "source_code_hash": self.sha256_b64,
            "size": self.size,
            "unzipped_size": self.unzipped_size,
        }


def iter_files(folder: Path):
    """Every file below ``folder`` that belongs in a zip, as (absolute path, posix relative path)."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_NAMES)
        for name in sorted(filenames):
            if name in SKIP_NAMES or name.endswith(SKIP_SUFFIXES):
                continue
            path = Path(dirpath) / name
            yield path, path.relative_to(folder).as_posix()


def write_zip(dest: Path, files: list[tuple[Path, str]]) -> Artifact:
    """Write ``files`` (source, archive name) to ``dest`` reproducibly."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    unzipped = 0
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for source, arcname in sorted(files, key=lambda item: item[1]):
            info = zipfile.ZipInfo(arcname, date_time=FIXED_DATE)
            info.external_attr = (0o100000 | FILE_MODE) << 16  # regular file, rw-r--r--
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever machine builds it
            data = source.read_bytes()
            unzipped += len(data)
            zf.writestr(info, data, compresslevel=9)
    digest = hashlib.sha256(dest.read_bytes()).digest()
    artifact = Artifact(dest, base64.b64encode(digest).decode(), dest.stat().st_size, unzipped)
    if artifact.size > MAX_ZIPPED:
        raise BuildError(f"{dest.name} is {artifact.size:,} bytes zipped; Lambda's limit is {MAX_ZIPPED:,}")
    return artifact


def lock_digest(lock: Path, platforms: list[str], python_version: str) -> str:
    key = lock.read_bytes() + json.dumps([platforms, python_version]).encode()
    return hashlib.sha256(key).hexdigest()[:16]


def install_dependencies(lock: Path, arch: str, python_version: str, cache: Path) -> Path:
    """pip-install the hashed lock for Lambda's platform into a cached folder and return it."""
    platforms = PLATFORMS[arch]
    target = cache / f"deps-{arch}-py{python_version}-{lock_digest(lock, platforms, python_version)}"
    if target.is_dir():
        return target
    staging = target.with_suffix(".partial")
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--require-hashes", "--no-deps", "--no-compile", "--only-binary=:all:",
        "--implementation", "cp", "--python-version", python_version,
        *[arg for p in platforms for arg in ("--platform", p)],
        "--target", str(staging), "-r", str(lock),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"pip install of {lock} failed:\n{result.stderr}")
    # Console scripts carry this machine's interpreter path and are useless in Lambda.
    shutil.rmtree(staging / "bin", ignore_errors=True)
    for noise in staging.glob("*.dist-info/*"):
        if noise.name in PIP_NOISE:
            noise.unlink()
    staging.rename(target)
    return target


def layer_files(deps: Path | None) -> list[tuple[Path, str]]:
    files = []
    if deps is not None:
        files += [(p, f"python/{rel}") for p, rel in iter_files(deps)]
    package = ROOT / "layers" / "shared" / "python"
    files += [(p, f"python/{rel}") for p, rel in iter_files(package)]
    # The contracts travel inside the package so every function validates against them.
    files += [(p, f"python/mangaassist/_schemas/{rel}") for p, rel in iter_files(ROOT / "schemas")]
    return files


def function_files(folder: Path, deps: Path | None) -> list[tuple[Path, str]]:
    """A function's zip: its folder (less its lock files) and, when it has a lock, what that installs."""
    files = [(p, rel) for p, rel in iter_files(folder) if rel not in (FUNCTION_LOCK, FUNCTION_LOCK_SOURCE)]
    if deps is not None:
        own = {rel for _, rel in files}
        installed = list(iter_files(deps))
        clash = sorted(own & {rel for _, rel in installed})
        if clash:
            raise BuildError(f"{folder.name}: its own files and its requirements both have {', '.join(clash)}")
        files += installed
    return files


def build_version(entries: dict[str, dict]) -> str:
    """The first 12 hex digits of a sha256 over every artifact's name and hash, in name order.

    The same zips give the same version on any machine; any changed zip gives a new one.
    """
    digest = hashlib.sha256()
    for name in sorted(entries):
        digest.update(f"{name}={entries[name]['source_code_hash']}\n".encode())
    return digest.hexdigest()[:12]


def function_names() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "functions").glob("*/handler.py"))


def build(out: Path, arch: str, python_version: str, with_deps: bool = True) -> dict:
    deps = None
    if with_deps:
        deps = install_dependencies(ROOT / "requirements.txt", arch, python_version, out / ".cache")
    layer = write_zip(out / "layers" / "shared.zip", layer_files(deps))
    functions = {}
    for name in function_names():
        folder = ROOT / "functions" / name
        own_deps = None
        if with_deps and (folder / FUNCTION_LOCK).is_file():
            own_deps = install_dependencies(folder / FUNCTION_LOCK, arch, python_version, out / ".cache")
        artifact = write_zip(out / "functions" / f"{name}.zip", function_files(folder, own_deps))
        if artifact.unzipped_size + layer.unzipped_size > MAX_UNZIPPED:
            raise BuildError(f"{name}: function and layer unzip to more than {MAX_UNZIPPED:,} bytes")
        functions[name] = artifact.manifest_entry(out)
    layers = {"shared": layer.manifest_entry(out)}
    artifacts = {f"layers/{n}": e for n, e in layers.items()} | {f"functions/{n}": e for n, e in functions.items()}
    manifest = {
        "architecture": arch,
        "python_version": python_version,
        "build_version": build_version(artifacts),
        "layers": layers,
        "functions": functions,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    parser.add_argument("--arch", choices=sorted(PLATFORMS), default=os.environ.get("LAMBDA_ARCH", "x86_64"))
    parser.add_argument("--python-version", default=os.environ.get("LAMBDA_PYTHON", "3.12"))
    parser.add_argument("--no-deps", action="store_true",
                        help="no third-party packages, in the layer or in a function with its own lock (tests)")
    args = parser.parse_args(argv)
    try:
        manifest = build(args.out.resolve(), args.arch, args.python_version, with_deps=not args.no_deps)
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    rows = [("layers/shared", manifest["layers"]["shared"])] + [
        (f"functions/{n}", e) for n, e in manifest["functions"].items()
    ]
    print(f"build_version {manifest['build_version']}")
    for name, entry in rows:
        print(f"{name:<32} {entry['size']:>12,} B zipped {entry['unzipped_size']:>13,} B unzipped  "
              f"{entry['source_code_hash']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
