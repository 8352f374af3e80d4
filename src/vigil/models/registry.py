"""The model registry: versioned artefacts on disk, each with a manifest saying what it is.

Layout: ``<root>/<name>/<version>/`` holds ``manifest.json`` and the model itself —
``trees.json`` (LightGBM's ``dump_model``, what the engine compiles and serves) plus
``model.txt`` (LightGBM's own format, for TreeSHAP offline), or ``linear.json`` (logistic
regression) — and ``test_scores.parquet`` (the test part's scores, for the report). A
version is written to a hidden temporary folder and renamed into place, so a failure leaves
nothing half-written. Versions are ``v0001``, ``v0002``… per model name.

The manifest: name, version, kind, features, training data (time range of each part, row
counts, sha256 of the data trained on, its source), parameters, metrics, calibration,
feature importance, training seconds, ``created_at`` and ``status`` (``candidate`` until
promoted; promoting a version demotes the one promoted before it).

>>> import tempfile
>>> from vigil.models.linear import LinearModel
>>> from vigil.models.model import Model
>>> reg = Registry(tempfile.mkdtemp())
>>> lm = LinearModel(["amount"], fill=[0.0], mean=[0.0], scale=[1.0], coef=[1.0], intercept=0.0)
>>> v = reg.save(Model("card", "logreg", lm, calibration=(1.0, 0.0)), {"metrics": {}})
>>> v, reg.manifest("card", v)["status"]
('v0001', 'candidate')
>>> reg.promote("card", v)["status"], reg.load("card").version
('promoted', 'v0001')
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from vigil.models.linear import LinearModel
from vigil.models.model import Model
from vigil.models.trees import CompiledTrees

MANIFEST = "manifest.json"
CANDIDATE, PROMOTED = "candidate", "promoted"
_VERSION = re.compile(r"^v(\d{4,})$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class Registry:
    """Versioned model artefacts under one folder (see the module doc).

    >>> Registry("/nonexistent/registry").list()
    []
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # -- writing --------------------------------------------------------------------------

    def save(
        self,
        model: Model,
        manifest: dict[str, Any],
        *,
        booster: str | None = None,
        test_scores: pl.DataFrame | None = None,
    ) -> str:
        """Store ``model`` as the next version of its name; returns the version."""
        _check_name(model.name)
        folder = self.root / model.name
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
        try:
            if isinstance(model.scorer, CompiledTrees):
                if booster is None:
                    raise ValueError("booster: a LightGBM model needs its model text")
                (staging / "model.txt").write_text(booster)
                (staging / "trees.json").write_text(json.dumps(_dump_of(booster)))
            else:
                (staging / "linear.json").write_text(json.dumps(model.scorer.to_dict()))
            if test_scores is not None:
                test_scores.write_parquet(staging / "test_scores.parquet")
            while True:
                version = _next_version(folder)
                record = {
                    **manifest,
                    "name": model.name,
                    "version": version,
                    "kind": model.kind,
                    "features": model.features,
                    "calibration": list(model.calibration),
                    "created_at": datetime.now(UTC).isoformat(),
                    "status": CANDIDATE,
                }
                _write_json(staging / MANIFEST, record)
                try:
                    # rename is atomic and refuses an existing target: a concurrent save of
                    # the same version number loses the race and takes the next one.
                    os.rename(staging, folder / version)
                except OSError:
                    if (folder / version).exists():
                        continue
                    raise
                model.version = version
                return version
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def promote(self, name: str, version: str) -> dict[str, Any]:
        """Make ``version`` the one served; the previously promoted one becomes a candidate."""
        target = self.manifest(name, version)
        for other in self.list(name):
            if other["status"] == PROMOTED and other["version"] != version:
                other["status"] = CANDIDATE
                _write_json(self.root / name / other["version"] / MANIFEST, other)
        target["status"] = PROMOTED
        target["promoted_at"] = datetime.now(UTC).isoformat()
        _write_json(self.root / name / version / MANIFEST, target)
        return target

    # -- reading --------------------------------------------------------------------------

    def list(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every manifest (of one name, or all), by name then version."""
        if not self.root.is_dir():
            return []
        names = [name] if name is not None else sorted(p.name for p in self.root.iterdir())
        out = []
        for n in names:
            folder = self.root / n
            if not folder.is_dir():
                continue
            for version in sorted(p.name for p in folder.iterdir() if _VERSION.match(p.name)):
                out.append(self.manifest(n, version))
        return out

    def manifest(self, name: str, version: str) -> dict[str, Any]:
        path = self.root / name / version / MANIFEST
        if not path.is_file():
            known = ", ".join(m["version"] for m in self.list(name)) if name else ""
            raise LookupError(
                f"model {name!r} version {version!r}: not in {self.root}"
                + (f" (versions: {known})" if known else "")
            )
        return json.loads(path.read_text())

    def promoted(self, name: str) -> str | None:
        """The promoted version of ``name``, or None."""
        for m in self.list(name):
            if m["status"] == PROMOTED:
                return str(m["version"])
        return None

    def load(self, name: str, version: str | None = None) -> Model:
        """The model of that version, or the promoted one; ``LookupError`` if there is none."""
        if version is None:
            version = self.promoted(name)
            if version is None:
                raise LookupError(f"model {name!r}: no promoted version in {self.root}")
        manifest = self.manifest(name, version)
        folder = self.root / name / version
        scorer: CompiledTrees | LinearModel
        if manifest["kind"] == "lightgbm":
            scorer = CompiledTrees(json.loads((folder / "trees.json").read_text()))
        else:
            scorer = LinearModel.from_dict(json.loads((folder / "linear.json").read_text()))
        return Model(
            name,
            manifest["kind"],
            scorer,
            calibration=tuple(manifest["calibration"]),  # type: ignore[arg-type]
            version=version,
        )

    def booster(self, name: str, version: str) -> Any:
        """LightGBM's own ``Booster`` of a stored version (for TreeSHAP contributions)."""
        import lightgbm as lgb

        return lgb.Booster(model_file=str(self.root / name / version / "model.txt"))

    def test_scores(self, name: str, version: str) -> pl.DataFrame | None:
        path = self.root / name / version / "test_scores.parquet"
        return pl.read_parquet(path) if path.is_file() else None


def _dump_of(booster: str) -> dict[str, Any]:
    import lightgbm as lgb

    return lgb.Booster(model_str=booster).dump_model()


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(f"name: {name!r} must be lower-case letters, digits, '-' or '_'")


def _next_version(folder: Path) -> str:
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := _VERSION.match(p.name))]
    return f"v{max(numbers, default=0) + 1:04d}"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write to a temporary file and rename over the target: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)
