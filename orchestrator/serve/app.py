"""The REST API: thin routes over orchestrator.api. Every route names its user (a Bearer token); a user
reaches only their own keys and executions (another user's id is 404); admins manage users and what is
exposed. Executions run in the background of this process; their state lives in the store, so a
restarted server finds those that were running and watches their jobs again."""


import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles

from orchestrator.api import (
    CredentialError,
    DeploymentBusy,
    LoadError,
    NotFound,
    Orchestrator,
    PooledAnsibleExecutors,
    Refused,
    UsageError,
    User,
    Work,
)
from orchestrator.serve import models

log = logging.getLogger(__name__)
API = "/api/v1"
WORKER_NICE = 19  # the executions' Ansible takes only the CPU the server leaves: polls never wait behind it
WEB = Path(__file__).with_name("web")
FOLLOW_POLL = 0.2
REQUEST_THREADS = 8  # the threads that answer requests (see lifespan)
DISPATCH_POLL = 0.2  # how soon a queued execution starts once its deployment is free


class Server:
    """The state one server process keeps beside the store: the work it runs, by execution id."""

    def __init__(self, home: Path, data_roots: tuple[Path, ...]):
        # each execution starts with an Ansible worker already warm (started while the service was idle)
        self.executors = PooledAnsibleExecutors(WORKER_NICE)
        self.api = Orchestrator(home, executor_factory=self.executors, store_per_thread=True)
        self.api.data_roots = data_roots
        self.works: dict[str, Work] = {}
        self.lock = threading.Lock()

    def keep(self, work: Work) -> None:
        with self.lock:
            self.works = {i: w for i, w in self.works.items() if w.running}
            self.works[work.execution_id] = work

    def resume_interrupted(self) -> list[str]:
        """Executions of the service left running by a server that died: resumed, their submitted jobs
        watched again (not submitted again)."""
        resumed = []
        for owned in self.api.store.user_executions():
            try:
                view = self.api.user_execution(self._user(owned.user), owned.execution_id, detail=False)
            except (UsageError, CredentialError):
                continue
            if view.status != "interrupted":
                continue
            try:
                self.keep(self.api.resume_user_execution(self._user(owned.user), owned.execution_id))
                resumed.append(owned.execution_id)
            except (UsageError, LoadError, DeploymentBusy, CredentialError):
                continue  # left interrupted: `orch run --resume` or a later restart takes it up
        return resumed

    def dispatch(self, stop: threading.Event) -> None:
        """Start queued executions as their deployments become free, until `stop` (its own thread: the
        store's per-thread connection keeps it out of the replies' way)."""
        while not stop.wait(DISPATCH_POLL):
            try:
                for work in self.api.start_queued():
                    self.keep(work)
            except Exception:  # a store hiccup must not end the queue for good
                log.exception("starting queued executions")

    def _user(self, name: str) -> User:
        return next(u for u in self.api.users() if u.name == name)


def create_app(home: Path, data_roots: tuple[Path, ...] = (), *, resume: bool = True) -> FastAPI:
    server = Server(home, tuple(Path(r) for r in data_roots))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Replies are short reads; many threads only contend for the interpreter lock (every store call
        # releases and takes it back), so a few threads answer faster than anyio's default forty.
        anyio.to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
        app.state.warmed = await anyio.to_thread.run_sync(server.api.warm)
        server.executors.start()
        if resume:
            app.state.resumed = server.resume_interrupted()
        stop = threading.Event()
        dispatcher = threading.Thread(target=server.dispatch, args=(stop,), name="orch-queue", daemon=True)
        dispatcher.start()
        try:
            yield
        finally:
            stop.set()
            dispatcher.join(timeout=5)
            server.executors.close()

    errors = {status: {"model": models.Problem, "description": meaning} for status, meaning in (
        (400, "the body could not be read"), (401, "no token, or not a valid one"), (403, "an admin's token is needed"),
        (404, "not found (or not yours)"), (409, "the deployment is busy or not in a state to do this"),
        (422, "a request the service will not carry out: the field or input is named"))}
    app = FastAPI(title="orch", version=version("orch"), lifespan=lifespan, responses=errors,
                  description="HPC Workflows as a Service: run registered workflows with your own credentials.")
    app.state.server = server
    app.state.resumed = []
    bearer = HTTPBearer(auto_error=False)

    async def current_user(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> User:
        # on the event loop, not in a request thread: one indexed read, where a thread's hop there and back
        # costs more (two wake-ups and two handovers of the interpreter lock, per request, under load)
        user = server.api.authenticate(credentials.credentials if credentials else None)
        if user is None:
            raise HTTPException(401, "a valid token is needed: Authorization: Bearer <token>",
                                headers={"WWW-Authenticate": "Bearer"})
        return user

    async def current_admin(user: Annotated[User, Depends(current_user)]) -> User:
        if not user.admin:
            raise HTTPException(403, "an admin's token is needed")
        return user

    UserDep = Annotated[User, Depends(current_user)]
    AdminDep = Annotated[User, Depends(current_admin)]

    # the library's errors as replies: the most specific class first (NotFound and Refused are UsageErrors)
    for error, status in ((NotFound, 404), (Refused, 422), (LoadError, 422), (DeploymentBusy, 409),
                          (UsageError, 409), (CredentialError, 422)):
        app.add_exception_handler(error, _reply_with(status))

    # -- workflows -------------------------------------------------------------------------------

    @app.get(f"{API}/workflows", response_model=list[models.WorkflowOut], tags=["workflows"])
    def workflows(user: UserDep) -> list[models.WorkflowOut]:
        return [models.WorkflowOut(name=w.name, description=w.description,
                                   inputs=[models.InputSchemaOut(**_fields(i)) for i in w.inputs])
                for w in server.api.workflows()]

    # -- ssh keys --------------------------------------------------------------------------------

    @app.post(f"{API}/ssh_keys", response_model=models.KeyOut, status_code=201, tags=["ssh keys"])
    def create_key(user: UserDep, body: models.KeyIn | None = None) -> models.KeyOut:
        return _key(server.api.create_user_key(user, cluster_user=body.cluster_user if body else None))

    @app.get(f"{API}/ssh_keys", response_model=list[models.KeyOut], tags=["ssh keys"])
    def keys(user: UserDep) -> list[models.KeyOut]:
        return [_key(k) for k in server.api.user_keys(user)]

    @app.delete(f"{API}/ssh_keys/{{key_id}}", status_code=204, tags=["ssh keys"])
    def delete_key(user: UserDep, key_id: str) -> None:
        server.api.delete_user_key(user, key_id)

    @app.post(f"{API}/ssh_keys/{{key_id}}/verify", response_model=models.KeyCheckOut, tags=["ssh keys"])
    def verify_key(user: UserDep, key_id: str, body: models.VerifyIn) -> models.KeyCheckOut:
        check = server.api.verify_user_key(user, key_id, body.workflow)
        return models.KeyCheckOut(id=check.key, ok=check.ok, hosts=check.hosts)

    # -- executions ------------------------------------------------------------------------------

    @app.post(f"{API}/executions", response_model=models.ExecutionCreated, status_code=202, tags=["executions"])
    def start(user: UserDep, body: models.ExecutionIn) -> models.ExecutionCreated:
        submitted = server.api.start_user_execution(user, body.workflow, body.inputs, body.ssh_key)
        if submitted.work is not None:
            server.keep(submitted.work)
        return models.ExecutionCreated(id=submitted.execution_id)

    @app.get(f"{API}/executions", response_model=list[models.ExecutionOut], tags=["executions"])
    def executions(user: UserDep, workflow: str | None = None) -> list[models.ExecutionOut]:
        return [_execution(v) for v in server.api.user_executions(user, workflow)]

    # The two replies a watching page asks for twice a second are answered on the event loop too: a few
    # indexed reads and the plan view kept since the deployment's last change (`warm` at start, or the first
    # view after a change, which holds every reply anyway: a load holds the interpreter). Through a request
    # thread each paid its hops under load: 50 clients while 10 executions ran, p99 150-230 ms against 26 ms.
    @app.get(f"{API}/executions/{{execution_id}}", response_model=models.ExecutionOut, tags=["executions"])
    async def execution(user: UserDep, execution_id: str) -> models.ExecutionOut:
        return _execution(server.api.user_execution(user, execution_id))

    @app.get(f"{API}/executions/{{execution_id}}/logs", response_model=list[models.EventOut], tags=["executions"],
             responses={200: {"content": {"text/event-stream": {}}}})
    async def logs(user: UserDep, execution_id: str, after: Annotated[int, Query(ge=0)] = 0,
                   accept: Annotated[str | None, Header()] = None,
                   last_event_id: Annotated[str | None, Header()] = None):
        if accept and "text/event-stream" in accept:
            start_after = int(last_event_id) if last_event_id and last_event_id.isdigit() else after
            server.api.user_log_page(user, execution_id, 0)  # not theirs, or no such execution: 404 now
            return StreamingResponse(_sse(server.api, user, execution_id, start_after), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-store"})
        return [_event(e) for e in server.api.user_events(user, execution_id, after)]

    @app.delete(f"{API}/executions/{{execution_id}}", response_model=models.CancelOut, status_code=202,
                tags=["executions"])
    def cancel(user: UserDep, execution_id: str) -> models.CancelOut:
        return models.CancelOut(id=execution_id, status=server.api.cancel_user_execution(user, execution_id))

    @app.get(f"{API}/executions/{{execution_id}}/results", response_model=models.ResultsOut, tags=["executions"])
    def results(user: UserDep, execution_id: str) -> models.ResultsOut:
        view = server.api.user_execution(user, execution_id, detail=False)
        return models.ResultsOut(execution=view.id, status=view.status, outputs=view.outputs or {})

    @app.get(f"{API}/executions/{{execution_id}}/results/{{output}}", tags=["executions"],
             responses={200: {"content": {"application/octet-stream": {}}}})
    def result_file(user: UserDep, execution_id: str, output: str) -> FileResponse:
        path = server.api.user_result_file(user, execution_id, output)
        return FileResponse(path, filename=path.name)

    # -- the data catalogue ----------------------------------------------------------------------

    @app.get(f"{API}/catalogue", response_model=list[models.RecordOut], tags=["catalogue"])
    def catalogue(user: UserDep) -> list[models.RecordOut]:
        return [models.RecordOut(**r.as_dict()) for r in server.api.catalogue()]

    @app.get(f"{API}/catalogue/{{record_id}}", response_model=models.RecordOut, tags=["catalogue"])
    def catalogue_record(user: UserDep, record_id: str) -> models.RecordOut:
        return models.RecordOut(**server.api.catalogue_record(record_id).as_dict())

    @app.post(f"{API}/catalogue", response_model=models.RecordOut, status_code=201, tags=["catalogue"])
    def catalogue_add(admin: AdminDep, body: models.RecordIn) -> models.RecordOut:
        given = body.model_dump(exclude_none=True)
        return models.RecordOut(**server.api.catalogue_add(given).as_dict())

    @app.delete(f"{API}/catalogue/{{record_id}}", status_code=204, tags=["catalogue"])
    def catalogue_remove(admin: AdminDep, record_id: str) -> None:
        server.api.catalogue_remove(record_id)

    # -- the web page ----------------------------------------------------------------------------

    app.mount("/web", StaticFiles(directory=WEB), name="web")
    app.add_middleware(ServerTiming)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(WEB / "index.html")

    # -- admin -----------------------------------------------------------------------------------

    @app.post(f"{API}/admin/users", response_model=models.UserCreated, status_code=201, tags=["admin"])
    def create_user(admin: AdminDep, body: models.UserIn) -> models.UserCreated:
        token = server.api.create_user(body.name, admin=body.admin)
        return models.UserCreated(name=body.name, admin=body.admin, token=token)

    @app.get(f"{API}/admin/users", response_model=list[models.UserOut], tags=["admin"])
    def users(admin: AdminDep) -> list[models.UserOut]:
        return [models.UserOut(name=u.name, admin=u.admin) for u in server.api.users()]

    @app.post(f"{API}/admin/exposed", response_model=models.ExposedOut, status_code=201, tags=["admin"])
    def expose(admin: AdminDep, body: models.ExposeIn) -> models.ExposedOut:
        exposed = server.api.expose(body.deployment, body.workflow, body.name)
        return models.ExposedOut(name=exposed.name, deployment=exposed.deployment, workflow=exposed.workflow)

    # A developer deploys workflows from the registry (never from a path of this server) and undeploys them.

    @app.post(f"{API}/admin/deployments", response_model=models.WorkStarted, status_code=202, tags=["admin"])
    def deploy(admin: AdminDep, body: models.DeployIn) -> models.WorkStarted:
        listed = {name for r in server.api.registries() for w in r.workflows for name in (w.name, f"{r.name}/{w.name}")}
        if body.workflow not in listed:
            raise NotFound(f"workflow: no workflow '{body.workflow}' in the registry")
        work = server.api.start_registry_deploy(body.name, body.workflow, body.inputs, version=body.version)
        server.keep(work)
        return models.WorkStarted(deployment=work.deployment, execution_id=work.execution_id)

    @app.get(f"{API}/admin/deployments", response_model=list[models.DeploymentOut], tags=["admin"])
    def deployments(admin: AdminDep) -> list[models.DeploymentOut]:
        return [models.DeploymentOut(name=d.name, status=d.status, updated=d.updated) for d in server.api.list()]

    @app.get(f"{API}/admin/deployments/{{name}}", response_model=models.DeploymentOut, tags=["admin"])
    def deployment(admin: AdminDep, name: str) -> models.DeploymentOut:
        known = {d.name: d for d in server.api.list()}
        if name not in known:
            raise NotFound(f"no deployment '{name}'")
        latest = server.api.executions(name)
        execution = None
        if latest:
            e = max(latest, key=lambda view: view.started)
            execution = models.ExecutionOut(id=e.id, workflow=e.workflow, status=e.status, started=e.started,
                                            ended=e.ended, inputs=e.inputs, outputs=e.outputs, error=e.error,
                                            ssh_key=None)
        return models.DeploymentOut(name=name, status=known[name].status, updated=known[name].updated,
                                    execution=execution)

    @app.delete(f"{API}/admin/deployments/{{name}}", response_model=models.WorkStarted, status_code=202,
                tags=["admin"])
    def undeploy(admin: AdminDep, name: str) -> models.WorkStarted:
        """Undeploy in the background; once it is over the deployment is forgotten (404), unless it failed."""
        if name not in {d.name for d in server.api.list()}:
            raise NotFound(f"no deployment '{name}'")
        work = server.api.start_undeploy(name)
        server.keep(work)
        return models.WorkStarted(deployment=work.deployment, execution_id=work.execution_id)

    @app.get(f"{API}/registry", response_model=list[models.RegistryOut], tags=["admin"])
    def registry(admin: AdminDep) -> list[models.RegistryOut]:
        return [models.RegistryOut(**_fields(r)) for r in server.api.registries()]

    return app


class ServerTiming:
    """Adds `Server-Timing: app;dur=MS` to every reply: the time from the request's arrival to its reply's
    headers, inside this process. A client can tell the time the server took from the time it waited
    (benchmarks/serve_load.py reports both)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        began = time.perf_counter()

        async def timed(message):
            if message["type"] == "http.response.start":
                took = (time.perf_counter() - began) * 1000
                message.setdefault("headers", []).append((b"server-timing", f"app;dur={took:.1f}".encode()))
            await send(message)

        return await self.app(scope, receive, timed)


def _reply_with(status: int):
    async def reply(request: Request, exc: Exception) -> JSONResponse:
        detail = "; ".join(str(p) for p in exc.problems) if isinstance(exc, LoadError) else str(exc)
        return JSONResponse({"detail": detail}, status_code=status)

    return reply


def _fields(record) -> dict:
    from dataclasses import asdict

    return asdict(record)


def _key(view) -> models.KeyOut:
    return models.KeyOut(id=view.id, public_key=view.public_key, fingerprint=view.fingerprint, created=view.created,
                         cluster_user=view.user)


def _execution(view) -> models.ExecutionOut:
    return models.ExecutionOut(
        id=view.id, workflow=view.workflow, status=view.status, started=view.started, ended=view.ended,
        inputs=view.inputs, outputs=view.outputs, error=view.error, ssh_key=view.key,
        steps=[models.StepOut(**_fields(s)) for s in view.steps], edges=[list(e) for e in view.edges])


def _event(event) -> models.EventOut:
    return models.EventOut(id=event.id, ts=event.ts, kind=event.kind, node=event.node, operation=event.operation,
                           message=event.message)


async def _sse(api: Orchestrator, user: User, execution_id: str, after: int) -> AsyncIterator[str]:
    """The execution's events as server-sent events until it is over. It waits on the event loop between
    pages, not in a request thread, so followers never take threads from the other replies (and a
    follower that goes away is simply cancelled)."""
    while True:
        over, events = await anyio.to_thread.run_sync(api.user_log_page, user, execution_id, after)
        for event in events:
            after = event.id
            yield f"id: {event.id}\nevent: {event.kind}\ndata: {json.dumps(_event(event).model_dump())}\n\n"
        if over:
            break
        await anyio.sleep(FOLLOW_POLL)
    yield "event: end\ndata: {}\n\n"
