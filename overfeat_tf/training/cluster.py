"""The machines of a multi-worker run: `TF_CONFIG`, meeting, the chief.

A multi-worker run is one process per machine, each given the same
`TF_CONFIG` (TensorFlow's cluster description) but its own task index:

    {"cluster": {"worker": ["host1:port", "host2:port"]},
     "task": {"type": "worker", "index": 0}}

Before TensorFlow starts its collective runtime (which waits for missing
peers forever, holding the GIL), every worker meets every other one over
plain TCP on its own `TF_CONFIG` port, with a timeout, and they exchange a
fingerprint of their resolved configs: a worker that cannot be reached is
named by its address, and workers that would train different recipes are
refused before the first step, naming the keys that differ.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import socket
import threading
import time

from overfeat_tf.errors import InvalidValueError, OverfeatError


class WorkerError(OverfeatError, RuntimeError):
    """A worker of a multi-worker run cannot be reached, or disagrees."""


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The tasks of `TF_CONFIG`, chief first, and which one this process is.

    Attributes:
        tasks: `(type, index, "host:port")` of every task, the chief (the
            "chief" task, else worker 0) first.
        index: this process's position in `tasks`.
    """

    tasks: tuple[tuple[str, int, str], ...]
    index: int

    @property
    def address(self) -> str:
        return self.tasks[self.index][2]

    @property
    def is_chief(self) -> bool:
        """The chief writes the run's files; the others only train."""
        return self.index == 0

    @property
    def name(self) -> str:
        task_type, task_index, address = self.tasks[self.index]
        return f"{task_type} {task_index} ({address})"


def tf_config_for(worker_hosts: str, task_index: int) -> str:
    """`TF_CONFIG` for `overfeat train --worker-hosts h1:p1,h2:p2 --task-index I`.

    Raises:
        ValueError: a host that is not `host:port`, or an index out of range.
    """
    hosts = [host.strip() for host in worker_hosts.split(",") if host.strip()]
    for host in hosts:
        _check_address(host, "--worker-hosts")
    if len(set(hosts)) != len(hosts):
        raise InvalidValueError(
            f"--worker-hosts lists an address twice. Received: {worker_hosts!r}"
        )
    if not 0 <= task_index < len(hosts):
        raise InvalidValueError(
            f"--task-index must be in [0, {len(hosts)}) for the {len(hosts)} "
            f"--worker-hosts. Received: --task-index {task_index}"
        )
    return json.dumps(
        {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": task_index}}
    )


def read_tf_config(environ=os.environ) -> Cluster:
    """The cluster of the `TF_CONFIG` environment variable.

    Raises:
        ValueError: no `TF_CONFIG`, or one that is not what TensorFlow
            documents (naming the key at fault).
    """
    text = environ.get("TF_CONFIG")
    if not text:
        raise InvalidValueError(
            'train.strategy="multi_worker" needs the TF_CONFIG environment '
            "variable (one per machine) or overfeat train --worker-hosts "
            "h1:p1,h2:p2 --task-index I."
        )
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        task_type, task_index = task["type"], int(task.get("index", 0))
    except (ValueError, TypeError, KeyError) as error:
        raise InvalidValueError(
            'TF_CONFIG must be JSON like {"cluster": {"worker": ["host:port", '
            '...]}, "task": {"type": "worker", "index": 0}} '
            f"({type(error).__name__}: {error}). Received: TF_CONFIG={text!r}"
        ) from None
    unknown = set(cluster) - {"chief", "worker"}
    if unknown or task_type not in ("chief", "worker"):
        raise InvalidValueError(
            "TF_CONFIG: only 'chief' and 'worker' tasks train synchronously "
            f"here. Received: cluster jobs {sorted(cluster)}, task type "
            f"{task_type!r}"
        )
    tasks = [
        (job, i, address)
        for job in ("chief", "worker")
        for i, address in enumerate(cluster.get(job, []))
    ]
    for _, _, address in tasks:
        _check_address(address, "TF_CONFIG")
    if (task_type, task_index) not in {(job, i) for job, i, _ in tasks}:
        raise InvalidValueError(
            f"TF_CONFIG: task {task_type} {task_index} is not in its cluster {cluster}."
        )
    index = [(job, i) for job, i, _ in tasks].index((task_type, task_index))
    return Cluster(tuple(tasks), index)


def _check_address(address, source: str) -> None:
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidValueError(
            f"{source}: {address!r} is not host:port (e.g. 10.0.0.2:12345)."
        )


def fingerprint(settings: dict) -> dict:
    """A short digest of every value of a nested dict, by dotted key."""
    flat = {}

    def visit(prefix, value):
        if isinstance(value, dict):
            for key, item in value.items():
                visit(f"{prefix}{key}.", item)
        else:
            text = json.dumps(value, sort_keys=True, default=str)
            flat[prefix[:-1]] = hashlib.sha256(text.encode()).hexdigest()[:16]

    visit("", settings)
    return flat


def meet(cluster: Cluster, settings: dict, timeout: float) -> None:
    """Waits until every task of `cluster` has answered, comparing `settings`.

    Each task listens on its own port and connects to every other one,
    sending the fingerprint of its `settings`; the port is free again when
    this returns, for TensorFlow's server.

    Raises:
        WorkerError: a task did not answer within `timeout` seconds (named
            by its address), or the settings of two tasks differ (naming
            the keys).
    """
    mine = fingerprint(settings)
    hello = (json.dumps({"task": cluster.index, "fingerprint": mine}) + "\n").encode()
    peers = [i for i in range(len(cluster.tasks)) if i != cluster.index]
    deadline = time.monotonic() + timeout
    heard, answered, problems = {}, set(), []
    listener = _listen(cluster.address)

    def serve():
        while len(heard) < len(peers) and time.monotonic() < deadline:
            try:
                connection, _ = listener.accept()
            except socket.timeout:
                continue
            with connection:
                connection.settimeout(10)
                message = _read_line(connection)
                connection.sendall(hello)
            if message:
                heard[message["task"]] = message["fingerprint"]

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        for peer in peers:
            answer = _call(cluster.tasks[peer][2], hello, deadline)
            if answer is None:
                _raise_unreachable(cluster, peer, timeout)
            answered.add(peer)
            problems += _differences(cluster, peer, mine, answer["fingerprint"])
        server.join(max(deadline - time.monotonic(), 0))
    finally:
        listener.close()
    for peer in peers:
        if peer not in heard:
            _raise_unreachable(cluster, peer, timeout)
    if problems:
        raise WorkerError("; ".join(problems))


def _listen(address: str) -> socket.socket:
    port = int(address.rpartition(":")[2])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", port))
    except OSError as error:
        listener.close()
        raise WorkerError(
            f"This worker cannot listen on its TF_CONFIG address {address} "
            f"({error.strerror}): is another run using port {port}?"
        ) from None
    listener.listen(16)
    listener.settimeout(0.2)
    return listener


def _call(address: str, hello: bytes, deadline: float):
    """Sends `hello` to `address` until it answers (its message) or the
    deadline passes (None)."""
    host, _, port = address.rpartition(":")
    while time.monotonic() < deadline:
        answer = None
        with contextlib.suppress(OSError):  # not listening yet: call again
            with socket.create_connection((host, int(port)), timeout=5) as connection:
                connection.sendall(hello)
                connection.shutdown(socket.SHUT_WR)
                answer = _read_line(connection)
        if answer:
            return answer
        time.sleep(0.2)
    return None


def _read_line(connection: socket.socket):
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    try:
        return json.loads(data)
    except ValueError:
        return None


def _differences(cluster, peer, mine, theirs) -> list[str]:
    keys = sorted(k for k in {*mine, *theirs} if mine.get(k) != theirs.get(k))
    if not keys:
        return []
    task_type, task_index, address = cluster.tasks[peer]
    return [
        f"The config of {task_type} {task_index} ({address}) differs from this "
        f"worker's ({cluster.name}) at {', '.join(keys)}: every worker must "
        "run the same recipe and overrides"
    ]


def _raise_unreachable(cluster, peer, timeout):
    task_type, task_index, address = cluster.tasks[peer]
    raise WorkerError(
        f"{task_type} {task_index} at {address} did not answer within "
        f"{timeout:g} s (train.worker_timeout): start it with the same "
        f"TF_CONFIG, check that {address} is reachable from {cluster.name}."
    )
