"""The REST API's request and reply bodies (pydantic): the OpenAPI document is generated from them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.api.catalogue import RECORD_PATTERNS


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputSchemaOut(BaseModel):
    name: str
    type: str
    required: bool
    default: Any = None
    has_default: bool
    description: str
    constraints: list[dict[str, Any]]


class WorkflowOut(BaseModel):
    name: str = Field(description="app@environment@workflow")
    description: str
    inputs: list[InputSchemaOut]


class KeyIn(Strict):
    cluster_user: str | None = Field(default=None, max_length=64, pattern=r"^[a-z_][a-z0-9_.-]*$",
                                     description="The account on the cluster this key logs in as.")


class KeyOut(BaseModel):
    id: str
    public_key: str
    fingerprint: str
    created: str
    cluster_user: str | None


class VerifyIn(Strict):
    workflow: str = Field(min_length=1, max_length=200, description="The exposed workflow whose hosts to try.")


class KeyCheckOut(BaseModel):
    id: str
    ok: bool
    hosts: dict[str, str] = Field(description="Per host: ok, or why the login failed.")


class ExecutionIn(Strict):
    workflow: str = Field(min_length=1, max_length=200)
    inputs: dict[str, str | int | float | bool | list[str] | None] = Field(default_factory=dict)
    ssh_key: str | None = Field(default=None, max_length=64, description="The id of one of your ssh keys.")


class ExecutionCreated(BaseModel):
    id: str


class StepOut(BaseModel):
    id: str
    node: str
    operation: str | None
    status: str
    started: float | None
    ended: float | None


class ExecutionOut(BaseModel):
    id: str
    workflow: str
    status: str
    started: float
    ended: float | None
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    error: str | None
    ssh_key: str | None
    steps: list[StepOut] = []
    edges: list[list[str]] = []


class EventOut(BaseModel):
    id: int
    ts: float
    kind: str
    node: str | None
    operation: str | None
    message: str


class ResultsOut(BaseModel):
    execution: str
    status: str
    outputs: dict[str, Any]


class CancelOut(BaseModel):
    id: str
    status: str


class UserIn(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    admin: bool = False


class UserCreated(BaseModel):
    name: str
    admin: bool
    token: str = Field(description="Shown once: only its hash is kept.")


class UserOut(BaseModel):
    name: str
    admin: bool


class ExposeIn(Strict):
    deployment: str = Field(min_length=1, max_length=200)
    workflow: str = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.@-]+$")


class ExposedOut(BaseModel):
    name: str
    deployment: str
    workflow: str


class RegistryVersionOut(BaseModel):
    revision: str = Field(description="A git commit id, or 'working tree' for a folder that is not a git repository.")
    committed: float | None = Field(description="The commit's time, seconds since the epoch.")
    subject: str


class RegistryWorkflowOut(BaseModel):
    name: str
    description: str
    topology: str = Field(description="The topology file, inside the workflow's folder.")
    site: str | None = Field(description="The default site file, inside the workflow's folder.")
    versions: list[RegistryVersionOut] = Field(description="Newest first.")
    problem: str | None = Field(description="Why it cannot be deployed as it is.")


class RegistryOut(BaseModel):
    name: str
    source: str
    kind: str = Field(description="git or folder")
    workflows: list[RegistryWorkflowOut]
    problem: str | None = Field(description="Why its workflows cannot be read now.")


class Problem(BaseModel):
    detail: str | list[dict[str, Any]] = Field(
        description="What is wrong, in words; for a malformed request, one entry per field (its `loc` names it).")


def _whole(name: str) -> str:
    return f"^{RECORD_PATTERNS[name]}$"


_Line = Annotated[str, Field(min_length=1, max_length=200, pattern=_whole("line"))]


class RecordIn(Strict):
    """A dataset's record for the data catalogue: the fields of `orch catalogue add`'s file, in the catalogue's
    own shapes; `created` is the time it is added."""

    id: str = Field(pattern=_whole("id"), description="What a source catalogue:ID names.")
    title: str = Field(min_length=1, max_length=500, pattern=_whole("line"))
    locations: list[Annotated[str, Field(min_length=1, max_length=4096, pattern=_whole("location"))]] = Field(
        min_length=1, max_length=100, json_schema_extra={"uniqueItems": True},
        description="Where the data is: URLs (http/https), HOST:/path (HOST a host of the topology) or absolute paths.")
    size: int = Field(ge=0, description="Bytes: the sum of the files' sizes.")
    sha256: str = Field(pattern=_whole("sha256"),
                        description="The sha256 of the dataset's manifest: a data move's checksum attribute.")
    licence: _Line
    keywords: list[Annotated[str, Field(min_length=1, max_length=100, pattern=_whole("line"))]] = Field(max_length=100)
    created_by: _Line
    description: str | None = Field(default=None, max_length=4000, pattern=_whole("text"))


class RecordOut(BaseModel):
    id: str
    title: str
    locations: list[str]
    size: int
    sha256: str
    licence: str
    keywords: list[str]
    created_by: str
    created: str
    description: str = ""


class DeployIn(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="The deployment's name.")
    workflow: str = Field(min_length=1, max_length=200,
                          description="A registry's workflow: WORKFLOW or REGISTRY/WORKFLOW.")
    version: str | None = Field(default=None, min_length=1, max_length=100,
                                description="A git revision of the registry (its latest commit by default).")
    inputs: dict[str, str | int | float | bool | list[str] | None] = Field(
        default_factory=dict, description="On top of the workflow's site file.")


class WorkStarted(BaseModel):
    deployment: str
    execution_id: str


class DeploymentOut(BaseModel):
    name: str
    status: str
    updated: float | None = None
    execution: ExecutionOut | None = Field(default=None, description="The latest deploy, undeploy or run.")
