"""Docker backend: the job runs in a container through the docker SDK, under the supervisor.

- The project root, the job's working directory (a reproduce worktree) and the run folder are
  bind-mounted at the *same paths* inside the container, so argv tokens such as `{run_dir}`,
  `CTUI_RUN_DIR` and the metrics API work unchanged.
- The argv list is the container's command (no shell in between); `spec.env` is the container's
  whole environment (the host's is not leaked in).
- The image is pinned: `check` resolves the job's image to its id (and repo digest, when it
  has one) and records both as `CTUI_IMAGE_ID` / `CTUI_IMAGE_DIGEST`, which the env manifest
  reads; `start` runs that exact id.
- `DOCKER_HOST` may point at another machine (`tcp://`, `ssh://`): logs come back through the
  API; the mounted paths must then exist there too (a shared filesystem, as with Slurm).
- Resources are sampled with psutil through the container's host PID (cheap), not the SDK's
  stats call (~1 s per call). With a remote engine there is nothing local to sample.

`import docker` happens only inside functions: it is not needed for `ctui runs`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ctui.errors import CtuiError, ExitCode, UnavailableError
from ctui.jobs.backends.base import Backend, Execution, LaunchSpec, StartError
from ctui.jobs.backends.local import Guarded

if TYPE_CHECKING:
    from ctui.config import JobConfig
    from ctui.project import Project

#: seconds to wait for the engine to answer a pre-flight ping
PING_TIMEOUT = 10
#: labels put on every container ctui starts (find a run's container without its id)
LABEL_RUN = "org.ctui.run_id"
LABEL_JOB = "org.ctui.job"
ENV_IMAGE_ID = "CTUI_IMAGE_ID"
ENV_IMAGE_DIGEST = "CTUI_IMAGE_DIGEST"


# -- the engine --------------------------------------------------------------------------------


def engine_address() -> str:
    """Where the engine is expected, in words (for error messages)."""
    return os.environ.get("DOCKER_HOST") or "the default socket (or current docker context)"


def client(timeout: int | None = PING_TIMEOUT) -> Any:
    """A docker SDK client from the environment (`DOCKER_HOST`, `DOCKER_TLS_VERIFY`, …).

    Raises UnavailableError (exit 2) when the SDK is missing or no engine answers.
    """
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        raise UnavailableError(
            "the docker Python package is not installed",
            hint='install it (pip install docker) to use backend = "docker"',
        ) from None
    kwargs: dict[str, Any] = {}
    if os.environ.get("DOCKER_HOST", "").startswith("ssh://"):
        try:
            import paramiko  # noqa: F401 - the SDK's own ssh transport
        except ImportError:
            kwargs["use_ssh_client"] = True  # the system's ssh, with the user's ssh config
    try:
        c = docker.from_env(timeout=timeout, **kwargs)
        c.ping()
    except (DockerException, OSError) as exc:
        raise UnavailableError(
            f"no Docker engine reachable at {engine_address()}: {_short(exc)}",
            hint="start Docker (or tests/ci/docker.sh), or point DOCKER_HOST at a running engine",
        ) from None
    return c


def is_local_engine(url: str | None = None) -> bool:
    """True when the engine runs on this machine (its container PIDs are ours to sample).

    `url` defaults to `DOCKER_HOST`; unset means the local socket."""
    url = url if url is not None else os.environ.get("DOCKER_HOST", "")
    if not url or url.startswith(("unix:", "http+unix:", "npipe:")):
        return True
    host = urlparse(url).hostname or ""
    return host in ("localhost", "127.0.0.1", "::1")


def engine_host(c: Any) -> str | None:
    """The engine's host name (`docker info` Name): another box when DOCKER_HOST is remote."""
    try:
        name = c.info().get("Name")
    except Exception:  # an engine that answers ping but not info: the name is only a label
        return None
    return str(name) if name else None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


# -- images ------------------------------------------------------------------------------------


def image_info(c: Any, ref: str, *, pull: bool = True) -> dict[str, Any]:
    """`{"image": ref, "image_id": "sha256:…", "digest": "repo@sha256:…" | None}`.

    A missing image is pulled once (when `pull`); still missing → CtuiError (exit 2).
    """
    from docker.errors import APIError, ImageNotFound

    try:
        img = c.images.get(ref)
    except ImageNotFound:
        if not pull:
            raise CtuiError(
                f"Docker image {ref!r} is not on the engine at {engine_address()}",
                hint="build or pull it first",
            ) from None
        try:
            img = c.images.pull(ref)
        except APIError as exc:
            raise CtuiError(
                f"Docker image {ref!r} is not on the engine and could not be pulled: {_short(exc)}",
                hint="build it, load it (docker load) or fix the image name in ctui.toml",
            ) from None
    except APIError as exc:
        raise CtuiError(f"Docker image {ref!r}: {_short(exc)}") from None
    digests = img.attrs.get("RepoDigests") or []
    return {"image": ref, "image_id": img.id, "digest": _pick_digest(ref, digests)}


def _pick_digest(ref: str, digests: Iterable[str]) -> str | None:
    """The repo digest matching the image's repository, else the first (images built or
    imported locally have none: their id is then what pins them)."""
    digests = list(digests)
    if not digests:
        return None
    repo = ref.split("@", 1)[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo = repo.rsplit(":", 1)[0]
    for d in digests:
        if d.split("@", 1)[0] == repo:
            return d
    return digests[0]


def pinned_ref(recorded: dict[str, Any]) -> str | None:
    """The most exact reference to a recorded image: its repo digest, else its id."""
    return recorded.get("digest") or recorded.get("image_id") or recorded.get("image")


def device_requests(gpus: str | list[int] | None) -> list[Any]:
    """`gpus = "all"` or indices → docker DeviceRequests (nothing for None)."""
    if gpus is None:
        return []
    from docker.types import DeviceRequest

    if gpus == "all":
        return [DeviceRequest(count=-1, capabilities=[["gpu"]])]
    return [DeviceRequest(device_ids=[str(g) for g in gpus], capabilities=[["gpu"]])]


def mount_paths(paths: Iterable[str]) -> list[str]:
    """The folders to bind, without any that sits inside another one already bound."""
    chosen: list[Path] = []
    for p in sorted({Path(x).resolve() for x in paths if x}, key=lambda q: len(q.parts)):
        if not any(p == c or c in p.parents for c in chosen):
            chosen.append(p)
    return sorted(str(p) for p in chosen)


# -- one running container ---------------------------------------------------------------------


class DockerExecution(Guarded, Execution):
    """A started container. A thread streams its output into the log file; another waits
    for its exit code (the SDK's blocking calls each get their own client)."""

    def watched(self) -> list[str]:
        """What the watchdog stops should the supervisor die unsaid: the container (the
        engine runs it, not the supervisor's process tree)."""
        return ["--container", str(self.container.id)]

    def __init__(self, container: Any, info: dict[str, Any], log_path: str, local: bool):
        self.container = container
        self._info = info
        self._local = local
        self._code: int | None = None
        self._done = threading.Event()
        self._host_pid: int | None = None
        self._log_path = log_path
        self._log_thread = threading.Thread(
            target=self._stream_logs, args=(log_path,), name="docker-logs", daemon=True
        )
        self._wait_thread = threading.Thread(target=self._wait, name="docker-wait", daemon=True)
        self._log_thread.start()
        self._wait_thread.start()

    def _stream_logs(self, log_path: str) -> None:
        """The container's stdout and stderr, told apart, into the log's writer (its streams
        in `output.idx`, the metrics read from them)."""
        from ctui.jobs.output import writer_for

        c = client(timeout=None)
        writer = writer_for(log_path)
        try:
            for stream, data in _log_frames(c.api, self.container.id):
                writer.write(data, "e" if stream == 2 else "o")
        except Exception as exc:  # the engine went away mid-run: say so in the log
            writer.write(b"\n", "c")
            writer.note(f"log stream from Docker ended: {_short(exc)}")
        finally:
            with contextlib.suppress(Exception):
                c.close()

    def _wait(self) -> None:
        c = client(timeout=None)
        try:
            result = c.api.wait(self.container.id)
            self._code = int(result.get("StatusCode", -1))
        except Exception as exc:
            # the engine (or the connection to it) went away: a failure, not a hang; 255, as
            # a negative code would read as "killed by a signal"
            self._code = 255
            self._note(f"lost the container: {_short(exc)}")
        finally:
            # the log holds everything once the stream has drained (it ends with the container)
            self._log_thread.join(timeout=10)
            self._done.set()
            with contextlib.suppress(Exception):
                c.close()

    def _note(self, text: str) -> None:
        from ctui.jobs.output import registered

        line = f"\n[ctui] {text}\n".encode()
        writer = registered(self._log_path)  # the supervisor's: the note is stream `c`
        if writer is not None:
            writer.write(line, "c")
            return
        with contextlib.suppress(OSError), open(self._log_path, "ab") as fh:
            fh.write(line)

    def info(self) -> dict[str, Any]:
        return {"docker": dict(self._info)}

    def host_pids(self) -> list[int]:
        if not self._local or self._done.is_set():
            return []
        if self._host_pid is None:
            with contextlib.suppress(Exception):
                self.container.reload()
                self._host_pid = int(self.container.attrs["State"]["Pid"]) or None
        return [self._host_pid] if self._host_pid else []

    def poll(self) -> int | None:
        return self._code if self._done.is_set() else None

    def wait(self, timeout: float | None = None) -> int | None:
        self._done.wait(timeout)
        return self.poll()

    def stop(self, grace: float) -> None:
        """SIGTERM (the image's stop signal) to the container, SIGKILL after `grace` s."""
        from docker.errors import APIError, NotFound

        with contextlib.suppress(NotFound, APIError):
            self.container.stop(timeout=max(0, int(round(grace))))

    def close(self) -> None:
        self._wait_thread.join(timeout=30)
        self._log_thread.join(timeout=10)
        with contextlib.suppress(Exception):
            self.container.remove(force=True)


def _log_frames(api: Any, container_id: str) -> Iterator[tuple[int, bytes]]:
    """`(stream, data)` frames of a container's log as it runs (1 stdout, 2 stderr). The
    SDK's `logs()` drops which stream a frame is from (its `demux` is only for attach and
    exec), so this reads the engine's multiplexed stream itself, as the SDK does inside: an
    8-byte header (stream, 3 zero bytes, big-endian length), then the data. A job never gets
    a TTY here (`tty=False`), so the stream is always multiplexed."""
    import struct

    params = {"stdout": 1, "stderr": 1, "follow": 1, "timestamps": 0, "tail": "all"}
    res = api._get(api._url("/containers/{0}/logs", container_id), params=params, stream=True)
    api._raise_for_status(res)
    api._disable_socket_timeout(api._get_raw_response_socket(res))
    try:
        while True:
            header = res.raw.read(8)
            if len(header) < 8:
                return
            stream, length = struct.unpack(">BxxxL", header)
            if not length:
                continue
            data = res.raw.read(length)
            if not data:
                return
            yield stream, data
    finally:
        res.close()


# -- the backend -------------------------------------------------------------------------------


class DockerBackend(Backend):
    name = "docker"
    supervised = True

    def check(self, job: JobConfig) -> None:
        """Engine answers and the image exists, before any run is created (exit 2 if not).

        Records the image's id and digest in the job's env, so the env manifest (captured
        next, from that env) and the container both carry them.
        """
        if not job.image:
            raise CtuiError(
                f"job {job.name!r} has no Docker image",
                hint='set image = "…" in the job\'s table in ctui.toml',
            )
        c = client()
        try:
            info = image_info(c, job.image)
        finally:
            with contextlib.suppress(Exception):
                c.close()
        job.env[ENV_IMAGE_ID] = info["image_id"]
        if info["digest"]:
            job.env[ENV_IMAGE_DIGEST] = info["digest"]
        else:
            job.env.pop(ENV_IMAGE_DIGEST, None)

    def start(self, spec: LaunchSpec) -> Execution:
        if not spec.argv:
            raise StartError("the job's command is empty")
        if not spec.image:
            raise StartError("backend docker needs an image", hint="set image in ctui.toml")
        from docker.errors import APIError, DockerException

        from ctui.manifest.redact import strip_url_credentials

        try:
            c = client()
        except UnavailableError as exc:
            raise StartError(exc.message, hint=exc.hint) from None
        # run exactly the image `check` resolved (a tag may have moved since)
        ref = spec.env.get(ENV_IMAGE_ID) or spec.image
        try:
            info = image_info(c, ref)
        except CtuiError as exc:
            raise StartError(exc.message, hint=exc.hint) from None
        info["image"] = spec.image
        binds = mount_paths([spec.project_root, spec.cwd, spec.run_dir])
        kwargs: dict[str, Any] = {
            "command": list(spec.argv),
            "environment": dict(spec.env),
            "working_dir": spec.cwd,
            "volumes": {p: {"bind": p, "mode": "rw"} for p in binds},
            "labels": {LABEL_RUN: spec.run_id, LABEL_JOB: spec.job},
            "name": f"ctui-{spec.run_id}",
            "init": True,  # a real PID 1: SIGTERM reaches the job, zombies are reaped
            "detach": True,
            "stdin_open": False,
            "tty": False,
        }
        if os.getuid() != 0:
            # files the job writes into the mounted project belong to the user, not root
            kwargs["user"] = f"{os.getuid()}:{os.getgid()}"
            # that uid has no home in the image; caches (pip, torch, HF) need a writable one
            kwargs["environment"].setdefault("HOME", "/tmp")
        # gpus unset: the container sees no GPU (a container sees only what it is given)
        requests = device_requests(spec.gpus)
        if requests:
            kwargs["device_requests"] = requests
        try:
            container = c.containers.create(info["image_id"], **kwargs)
        except (APIError, DockerException) as exc:
            raise StartError(f"could not create the container: {_short(exc)}") from None
        try:
            container.start()
        except (APIError, DockerException) as exc:
            with contextlib.suppress(Exception):
                container.remove(force=True)
            raise StartError(
                f"could not start the container: {_short(exc)}",
                hint="check the job's command: it runs inside the image, not on this host",
            ) from None
        info["container_id"] = container.id
        info["name"] = container.name
        info["engine"] = engine_host(c)  # another box when DOCKER_HOST is remote
        info["engine_url"] = strip_url_credentials(os.environ.get("DOCKER_HOST") or "local")
        return DockerExecution(container, info, spec.log_path, is_local_engine())

    def job_env(self, spec: LaunchSpec) -> dict[str, str]:
        """The container's environment: the image's own `ENV` lines, then `spec.env`."""
        env: dict[str, str] = {}
        with contextlib.suppress(Exception):
            c = client()
            try:
                img = c.images.get(spec.env.get(ENV_IMAGE_ID) or spec.image)
                for item in (img.attrs.get("Config") or {}).get("Env") or []:
                    name, _, value = str(item).partition("=")
                    env[name] = value
            finally:
                c.close()
        return {**env, **spec.env}

    def job_python(self, spec: LaunchSpec) -> Callable[[], dict[str, Any]] | None:
        """Ask the interpreter *in the image* (one short container per image, cached by the
        image id, which never changes for the same content)."""
        from ctui.manifest import interpreter

        words = interpreter.command_words(spec.argv, spec.shell)
        named = bool(words) and interpreter.is_python_name(words[0])
        name = words[0] if named else "python3"
        image = spec.env.get(ENV_IMAGE_ID) or spec.image or ""
        how = "the command's interpreter, in the image" if named else (
            f"python3 in the image (the command {words[0] if words else ''!r} is not Python)"
        )  # fmt: skip
        interp = interpreter.Resolved(argv=[name], how=how, key=f"docker:{image}:{name}")
        cache_dir = Path(spec.options.get("state_dir") or spec.project_root) / "cache"

        def run(argv: list[str]) -> tuple[int, bytes, bytes]:
            from docker.errors import ContainerError

            c = client()
            try:
                out = c.containers.run(
                    image, argv[1:], entrypoint=[argv[0]], environment=dict(spec.env),
                    volumes={p: {"bind": p, "mode": "ro"} for p in mount_paths([spec.cwd])},
                    working_dir=spec.cwd, network_disabled=True, remove=True, stderr=False,
                )  # fmt: skip
                return 0, out, b""
            except ContainerError as exc:
                return exc.exit_status or 1, b"", bytes(exc.stderr or b"")
            except Exception as exc:
                return 127, b"", _short(exc).encode()
            finally:
                c.close()

        def describe() -> dict[str, Any]:
            try:
                info = dict(interpreter.probe(interp, spec.env, Path(spec.cwd),
                                              cache_dir=cache_dir, run=run))  # fmt: skip
            except interpreter.Absent as exc:
                if named:
                    raise
                # a non-Python command in an image without Python: the image pins the env
                raise interpreter.NoPython(f"no python3 in the image: {exc}") from None
            info["how"] = how
            return info

        return describe

    def stop(self, project: Project, run: dict[str, Any], grace: float) -> None:
        """Stop a run's container from outside its supervisor (the supervisor is gone, so
        nobody else will remove the container either)."""
        stop_container(run, grace, remove=True)


def stop_container(run: dict[str, Any], grace: float = 10.0, *, remove: bool = False) -> bool:
    """Stop the container of `run` (by recorded id, else by its run-id label): SIGTERM, then
    SIGKILL after `grace` s; `remove` deletes it afterwards. True if there was one."""
    from docker.errors import APIError, NotFound

    c = client()
    cid = (run.get("docker") or {}).get("container_id")
    try:
        if cid:
            containers = [c.containers.get(cid)]
        else:
            containers = c.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run['id']}"})
        for ct in containers:
            ct.stop(timeout=max(0, int(round(grace))))
            if remove:
                ct.remove(force=True)
        return bool(containers)
    except NotFound:
        return False
    except APIError as exc:
        raise CtuiError(
            f"could not stop the container: {_short(exc)}", code=ExitCode.FAILED
        ) from None
    finally:
        c.close()


BACKEND = DockerBackend()
