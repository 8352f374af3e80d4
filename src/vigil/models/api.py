"""``/v1/admin/models``: the model registry, and a StandIn decision on request.

Mounted by :mod:`vigil.api.extensions` under ``/v1/admin`` behind the `admin` role, over the
registry the settings name (``models.registry_dir``, else ``<data_dir>/models``), the same as
``vigil models list|show|promote|standin``. A promoted version is served by an engine from its
next start; each answer says which versions this server runs now (``in_service``).

``POST /v1/admin/models/standin/decide`` answers one StandIn request (approve, review or
decline) from the stored user and card scores and the amount, and logs the inference to
``standin_inferences``, as ``vigil models standin`` does. It is an admin route, not an
`ingest` one, on purpose: StandIn transactions sent to ``POST /v1/transactions`` are already
decided in the engine (the ``standin_*`` reasons); this route is for an operator asking
about one request by hand (a call-centre override, a test of a new policy).

>>> sorted({r.path for r in router.routes})
['/models', '/models/standin/decide', '/models/{name}', '/models/{name}/{version}/promote']
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from vigil.api.deps import ServiceDep
from vigil.api.problems import ProblemError, problem_responses
from vigil.domain.types import Identifier
from vigil.models.registry import Registry
from vigil.models.scorer import registry_dir
from vigil.models.standin import StandinDecider, StandinPolicy, standin_policy_path

NAME = Path(pattern=r"^[a-z][a-z0-9_-]{0,63}$", description="Model name: transaction, user, card")
VERSION = Path(pattern=r"^v\d{4,}$", description="Version, e.g. v0003")
_MANIFEST_EXAMPLE = {
    "name": "transaction",
    "version": "v0002",
    "kind": "lightgbm",
    "status": "promoted",
    "created_at": "2024-05-01T10:00:00+00:00",
    "metrics": {"test": {"roc_auc": 0.97, "average_precision": 0.61}},
}


class ModelSummary(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_MANIFEST_EXAMPLE]})

    name: str
    version: str
    kind: str
    status: str
    created_at: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    in_service: bool = Field(description="This server's engine runs this version now")


class ModelVersions(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "transaction",
                    "promoted": "v0002",
                    "in_service": "v0002",
                    "versions": [{**_MANIFEST_EXAMPLE, "features": ["amount", "hour"]}],
                }
            ]
        }
    )

    name: str
    promoted: str | None
    in_service: str | None
    versions: list[dict[str, Any]] = Field(description="Every version's full manifest")


class Promoted(BaseModel):
    name: str
    version: str
    status: str
    in_service: bool = Field(description="False until this server restarts with it")


class StandinRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"card_id": "c-1", "user_id": "u-1", "amount": 20000, "event_id": "s-1"}]
        },
    )

    amount: float = Field(gt=0, allow_inf_nan=False)
    user_id: Identifier | None = None
    card_id: Identifier | None = None
    event_id: Identifier | None = Field(None, description="The StandIn event's id, for the log")


class StandinAnswer(BaseModel):
    decision: str = Field(description="approve, review or decline")
    risk: float
    user_score: float | None = Field(description="None: unscored, the median was used")
    card_score: float | None


def _registry(svc: Any) -> Registry:
    return Registry(registry_dir(svc.settings))


def _summary(manifest: dict[str, Any], serving: dict[str, str]) -> ModelSummary:
    return ModelSummary(
        name=manifest["name"],
        version=manifest["version"],
        kind=manifest["kind"],
        status=manifest["status"],
        created_at=str(manifest["created_at"]),
        metrics=manifest.get("metrics", {}),
        in_service=serving.get(manifest["name"]) == manifest["version"],
    )


router = APIRouter(prefix="/models", tags=["admin"], responses=problem_responses(401, 403))


@router.get("", summary="Every model version")
async def list_models(svc: ServiceDep) -> list[ModelSummary]:
    """Every stored version: status, test metrics, whether this server runs it. Needs `admin`."""
    manifests = await run_in_threadpool(_registry(svc).list)
    return [_summary(m, svc.engine.model_versions) for m in manifests]


@router.get("/{name}", summary="One model's versions", responses=problem_responses(404, 422))
async def get_model(name: Annotated[str, NAME], svc: ServiceDep) -> ModelVersions:
    """Each version's manifest (features, training data, metrics). Needs `admin`."""
    manifests = await run_in_threadpool(_registry(svc).list, name)
    if not manifests:
        raise ProblemError(404, f"name: no model {name!r} in the registry")
    promoted = next((m["version"] for m in manifests if m["status"] == "promoted"), None)
    return ModelVersions(
        name=name,
        promoted=promoted,
        in_service=svc.engine.model_versions.get(name),
        versions=manifests,
    )


@router.post(
    "/{name}/{version}/promote",
    summary="Promote a model version",
    responses=problem_responses(404, 422),
)
async def promote_model(
    name: Annotated[str, NAME], version: Annotated[str, VERSION], svc: ServiceDep
) -> Promoted:
    """Serve this version (engines load it at their next start); the one promoted before it
    becomes a candidate. Needs `admin`."""
    try:
        manifest = await run_in_threadpool(_registry(svc).promote, name, version)
    except LookupError as exc:
        raise ProblemError(404, f"version: {exc}") from None
    return Promoted(
        name=name,
        version=version,
        status=manifest["status"],
        in_service=svc.engine.model_versions.get(name) == version,
    )


@router.post(
    "/standin/decide",
    summary="Decide one StandIn request",
    responses=problem_responses(409, 422),
)
async def decide_standin(body: StandinRequest, svc: ServiceDep) -> StandinAnswer:
    """Approve, review or decline from the batch scores and the amount; the inference is
    logged. 409 until `vigil score profiles` has chosen a policy. Needs `admin`."""
    path = standin_policy_path(registry_dir(svc.settings))
    if not path.is_file():
        raise ProblemError(409, f"no StandIn policy at {path}: run `vigil score profiles` first")

    def decide() -> StandinAnswer:
        decider = StandinDecider(svc.store, StandinPolicy.load(path))
        d = decider.decide(
            body.event_id, user_id=body.user_id, card_id=body.card_id, amount=body.amount
        )
        return StandinAnswer(
            decision=d.decision, risk=d.risk, user_score=d.user_score, card_score=d.card_score
        )

    return await run_in_threadpool(decide)
