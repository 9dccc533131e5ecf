"""`ten move`: a tenant and its data from one fleet node to another (issue 19).

Two real `ten serve` nodes on loopback sharing a PostgreSQL (tests/fleet/conftest.py):
the tenant moves from a to b under a load that goes through both nodes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import h11
import httpx
import sqlalchemy as sa
import trio

from tests.apps import PID_APP
from tests.fleet.conftest import Fleet, Node, ten
from tests.loadgen import Load, keep_alive_client, one_shot_client

TENANT = "echo:alice"
#: a service that keeps no data: it moves without a pause
STATELESS = f"""
[service.web]
command = "{sys.executable} {PID_APP}"
isolation = "process"
health = "/"
storage_persist = false
"""
HOST = "alice.echo.localhost"
MB = 1024 * 1024


def tree_digest(root: Path) -> dict[str, str]:
    """What ``root`` holds: each entry's kind and content (a link's target, unfollowed)."""
    found: dict[str, str] = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(top) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = f"link -> {os.readlink(path)}"
            elif path.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def fill(tree: Path) -> None:
    """A tenant's data: files big and small, a subdirectory, links in and out of it."""
    (tree / "db").mkdir(parents=True)
    (tree / "db" / "big.bin").write_bytes(os.urandom(8 * MB))
    (tree / "notes.txt").write_text("hello\n")
    (tree / "inside").symlink_to("notes.txt")
    (tree / "outside").symlink_to("/etc/hostname")  # copied as a link, never followed


async def two_nodes(fleet: Fleet, also: str = "", *options: str) -> tuple[Node, Node]:
    """Nodes a and b, started (``also``: more of their tenement.toml; ``options``: of
    their ``ten serve``)."""
    a, b = fleet.node("a"), fleet.node("b")
    for node in (a, b):
        with (node.directory / "tenement.toml").open("a") as config:
            config.write(also)
    fleet.make_token(a)
    await a.start(*options)
    await b.start(*options)
    return a, b


async def alice_on_a(fleet: Fleet, also: str = "") -> tuple[Node, Node]:
    """Nodes a and b, with echo:alice spawned on a."""
    a, b = await two_nodes(fleet, also)
    spawned = await post(
        fleet, a, "/api/instances/spawn", {"process": "echo", "id": "alice", "node": "a"}
    )
    assert spawned.status_code == 200, spawned.text
    return a, b


async def post(fleet: Fleet, node: Node, path: str, body: object) -> httpx.Response:
    async with fleet.api(node) as api:
        api.timeout = httpx.Timeout(120)
        return await api.post(path, json=body)


async def test_a_tenant_moves_with_its_data_under_load_and_no_request_fails(
    fleet: Fleet,
) -> None:
    a, b = await alice_on_a(fleet, also=STATELESS)
    source = a.directory / "data" / "echo" / "alice"
    fill(source)
    before = tree_digest(source)
    first_pid = fleet.instance_row(TENANT)["pid"]
    epoch = fleet.instance_row(TENANT)["epoch"]

    # a load per node and kind of client: a failure says which way it came
    loads = {(node.name, kind): Load() for node in (a, b) for kind in ("one-shot", "keep-alive")}
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        for node in (a, b):
            nursery.start_soon(one_shot_client, node.port, loads[node.name, "one-shot"], stop, HOST)
            nursery.start_soon(
                keep_alive_client, node.url, loads[node.name, "keep-alive"], stop, HOST
            )
        with trio.fail_after(120):
            for load in loads.values():
                await load.wait_for_more(10)
            # asked of b, which does not run it: relayed to a, which moves it to b
            moved = await post(fleet, b, f"/api/instances/{TENANT}/move", {"to": "b"})
            for load in loads.values():
                await load.wait_for_more(10)
        stop.set()

    assert moved.status_code == 200, moved.text
    report = moved.json()
    assert (report["from"], report["to"], report["epoch"]) == ("a", "b", epoch + 1)
    failures = {way: load.failures for way, load in loads.items() if load.failures}
    assert not failures, failures
    row = fleet.instance_row(TENANT)
    assert (row["node"], row["epoch"], row["state"]) == ("b", epoch + 1, "running")
    # the copy on b answered after the move, the one on a before
    assert set().union(*(load.pids for load in loads.values())) == {str(first_pid), str(row["pid"])}
    assert tree_digest(b.directory / "data" / "echo" / "alice") == before
    # a keeps its copy, moved aside; nothing of it is left where it was
    [kept] = (a.directory / "data" / "echo").glob("moved-alice-*")
    assert Path(report["kept"]) == kept and tree_digest(kept) == before
    assert not source.exists()
    assert report["bytes"] > 8 * MB and report["sha256"]
    assert "moved echo:alice to fleet node b (epoch" in a.log

    # a tenant that keeps no data moves without a pause: started on b before it stops
    # on a, under a load through both nodes, not one request held
    spawned = await post(
        fleet, a, "/api/instances/spawn", {"process": "web", "id": "carol", "node": "a"}
    )
    assert spawned.status_code == 200, spawned.text
    old_pid = fleet.instance_row("web:carol")["pid"]
    carol = "carol.web.localhost"
    async with httpx.AsyncClient(base_url=b.url, timeout=30) as client:
        with trio.fail_after(10):  # once b's directory has read its row
            while (await client.get("/", headers={"host": carol})).status_code != 200:
                await trio.sleep(0.05)
    loads = {node.name: Load() for node in (a, b)}
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        for node in (a, b):
            nursery.start_soon(keep_alive_client, node.url, loads[node.name], stop, carol)
        with trio.fail_after(60):
            for load in loads.values():
                await load.wait_for_more(10)
            moved = await post(fleet, b, "/api/instances/web:carol/move", {"to": "b"})
            for load in loads.values():
                await load.wait_for_more(10)
        stop.set()
    assert moved.status_code == 200, moved.text
    assert moved.json()["bytes"] == 0 and moved.json()["kept"] is None, moved.text
    failures = {way: load.failures for way, load in loads.items() if load.failures}
    assert not failures, failures
    row = fleet.instance_row("web:carol")
    assert (row["node"], row["state"]) == ("b", "running")
    assert set().union(*(load.pids for load in loads.values())) == {str(old_pid), str(row["pid"])}
    assert re.search(r"moved web:carol to fleet node b .* 0 request\(s\) held", a.log), a.log
    assert not alive(old_pid)  # stopped once the copy on b ran


async def test_bad_moves_are_refused_with_what_is_going_on_and_nothing_changes(
    fleet: Fleet,
) -> None:
    a, b = await alice_on_a(fleet)
    pid = fleet.instance_row(TENANT)["pid"]
    path = f"/api/instances/{TENANT}/move"

    here = await post(fleet, a, path, {"to": "a"})
    assert here.status_code == 409, here.text
    assert here.json()["error"] == "Instance echo:alice is on fleet node a already"
    nowhere = await post(fleet, b, path, {"to": "zz"})
    assert nowhere.status_code == 400, nowhere.text
    assert (
        "Invalid node 'zz': it is not in the fleet; the other live nodes are b"
        in (nowhere.json()["error"])
    )
    unknown = await post(fleet, a, "/api/instances/echo:nobody/move", {"to": "b"})
    assert unknown.status_code == 404, unknown.text
    # the node-to-node part is the fleet's alone, even with the admin token
    async with fleet.api(b) as api:
        forged = await api.put(
            "/api/fleet/storage/echo/alice?sha256=" + "0" * 64, content=b"not a tar"
        )
    assert forged.status_code == 403, forged.text
    # "look at your rows now", which a drain's move sends its destination: the fleet's too
    async with fleet.api(b) as api:
        look = "/api/fleet/storage/echo/alice/start"
        assert (await api.post(look)).status_code == 403
        told = await api.post(look, headers={"x-tenement-hop": fleet.secret or ""})
    assert told.status_code == 204, told.text
    # and with the CLI, which says what the server said
    cli = subprocess.run(
        [sys.executable, "-m", "tenement", "move", TENANT, "--to", "a"],
        cwd=a.directory,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TENEMENT_SERVER": a.url, "TENEMENT_TOKEN": fleet.token or ""},
    )
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "Instance echo:alice is on fleet node a already" in cli.stderr
    # what b is sent is checked before anything is kept: damaged, or hostile
    hostile = io.BytesIO()
    with tarfile.open(fileobj=hostile, mode="w") as archive:
        archive.addfile(tarfile.TarInfo("../escape"), io.BytesIO(b""))
    for content, digest, why in (
        (b"damaged", "0" * 64, "arrived damaged"),
        (hostile.getvalue(), hashlib.sha256(hostile.getvalue()).hexdigest(), "names a path"),
    ):
        async with fleet.api(b) as api:
            sent = await api.put(
                f"/api/fleet/storage/echo/carol?sha256={digest}",
                content=content,
                headers={"x-tenement-hop": fleet.secret or ""},
            )
        assert sent.status_code == 422 and why in sent.json()["error"], sent.text
    # the way a node sends it: chunked, packed as it goes, its sum last as the trailer
    whole = io.BytesIO()
    with tarfile.open(fileobj=whole, mode="w") as archive:
        archive.addfile(tarfile.TarInfo("db"), io.BytesIO(b""))
    for trailer, status, why in (
        ([(b"x-tenement-sha256", b"0" * 64)], 422, "arrived damaged"),
        ([], 400, "as the chunked body's trailer X-Tenement-Sha256"),
    ):
        answer = await put_chunked(fleet, b, "/api/fleet/storage/echo/carol", whole, trailer)
        assert answer.status_code == status and why in answer.json()["error"], answer.text
    service_dir = b.directory / "data" / "echo"
    assert not service_dir.exists() or os.listdir(service_dir) == []
    spool = b.directory / "data" / ".moves"
    assert not spool.exists() or os.listdir(spool) == []  # nothing kept there
    assert not (b.directory / "escape").exists() and not (b.directory / "data" / "escape").exists()
    # a destination without room for the data: refused, with the numbers, before the
    # tenant stops (a sparse file: its size counts, its blocks cost nothing)
    sparse = a.directory / "data" / "echo" / "alice" / "huge.bin"
    with sparse.open("wb") as out:
        out.truncate(2**43)  # 8 TiB, below ext4's largest file
    try:
        full = await post(fleet, a, path, {"to": "b"})
    finally:
        sparse.unlink()
    assert full.status_code == 507, full.text
    said = full.json()["error"]
    assert said.startswith("Not enough space on fleet node b for echo:alice: its data is 838"), said
    assert " MB free in " in said and " MB is free" in said, said
    row = fleet.instance_row(TENANT)
    assert (row["node"], row["pid"], row["state"]) == ("a", pid, "running")
    # a destination that is gone: refused before the tenant stops
    b.kill()
    gone = await post(fleet, a, path, {"to": "b"})
    assert gone.status_code in (400, 503), gone.text
    row = fleet.instance_row(TENANT)
    assert (row["node"], row["pid"], row["state"]) == ("a", pid, "running")


async def put_chunked(
    fleet: Fleet,
    node: Node,
    target: str,
    body: io.BytesIO,
    trailer: list[tuple[bytes, bytes]],
) -> httpx.Response:
    """A PUT from a node (the fleet secret) with ``body`` chunked and ``trailer`` after
    it (httpx sends no trailers)."""
    conn = h11.Connection(h11.CLIENT)
    headers = [
        (b"host", b"node"),
        (b"transfer-encoding", b"chunked"),
        (b"x-tenement-hop", (fleet.secret or "").encode()),
        (b"connection", b"close"),
    ]
    if fleet.token:
        headers.append((b"authorization", f"Bearer {fleet.token}".encode()))
    stream = await trio.open_tcp_stream("127.0.0.1", node.port)
    async with stream:
        await stream.send_all(conn.send(h11.Request(method="PUT", target=target, headers=headers)))
        await stream.send_all(conn.send(h11.Data(data=body.getvalue())))
        await stream.send_all(conn.send(h11.EndOfMessage(headers=trailer)))
        answer = b""
        while chunk := await stream.receive_some():
            answer += chunk
    head, _, content = answer.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return httpx.Response(status, content=content)


def fill_big(tree: Path) -> None:
    """:func:`fill`, and 64 MB more (sparse: cheap to make, whole bytes to send), so
    that a transfer lasts long enough to be caught in the middle."""
    fill(tree)
    with (tree / "db" / "sparse.bin").open("wb") as out:
        out.truncate(64 * MB)


async def pid_via(node: Node) -> str:
    """The pid of the copy of alice that answers a request through ``node``."""
    async with httpx.AsyncClient(base_url=node.url, timeout=60) as client:
        answer = await client.get("/", headers={"host": HOST})
    assert answer.status_code == 200, answer.text
    return answer.text.split()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Held:
    pid = ""


async def ask_raw(node: Node, *, task_status: trio.TaskStatus[Held]) -> None:
    """GET alice through ``node``: started once the request is sent; ``pid`` is set
    when the answer came."""
    held = Held()
    stream = await trio.open_tcp_stream("127.0.0.1", node.port)
    async with stream:
        await stream.send_all(
            f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
        )
        task_status.started(held)
        answer = b""
        while chunk := await stream.receive_some():
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer
    held.pid = body.split()[1].decode()


async def transfer_caught(fleet: Fleet, receiver: Node) -> Path:
    """Wait until ``receiver`` unpacks alice's data as it arrives, then freeze it
    (SIGSTOP) with the transfer half done: the incoming tree being written."""
    service_dir = receiver.directory / "data" / "echo"
    assert receiver.process is not None
    taken_in = receiver.log.count("took in the data")
    with trio.fail_after(60):
        while True:
            started = [
                p
                for p in service_dir.glob(".incoming-alice-*")
                if (p / "db" / "sparse.bin").exists()
            ]
            if started:
                receiver.process.send_signal(signal.SIGSTOP)
                break
            await trio.sleep(0.002)
    [partial] = started
    # still beside alice's place, not yet checked nor renamed: caught mid-transfer
    assert partial.exists() and receiver.log.count("took in the data") == taken_in
    return partial


async def test_a_node_killed_mid_transfer_leaves_one_copy_serving_with_all_its_data(
    fleet: Fleet,
) -> None:
    a, b = await alice_on_a(fleet)
    source = a.directory / "data" / "echo" / "alice"
    fill_big(source)
    before = tree_digest(source)
    path = f"/api/instances/{TENANT}/move"

    # 1. the destination dies while it receives: the move fails, alice runs on a again
    answers: dict[str, httpx.Response] = {}

    async def move() -> None:
        answers["move"] = await post(fleet, a, path, {"to": "b"})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(move)
        await transfer_caught(fleet, b)
        # a request that comes meanwhile is held (in a's socket before b dies)
        held = await nursery.start(ask_raw, a)
        b.kill()
    failed = answers["move"]
    assert isinstance(failed, httpx.Response)
    assert failed.status_code == 502, failed.text
    assert "failed while sending its data" in failed.json()["error"]
    assert "it runs on a again, with its data" in failed.json()["error"]
    row = fleet.instance_row(TENANT)
    assert (row["node"], row["state"]) == ("a", "running")
    assert held.pid == str(row["pid"])  # the held request was let go, to the new copy
    assert tree_digest(source) == before
    assert not (b.directory / "data" / "echo" / "alice").exists()
    # what the killed destination left is removed when it starts again, and said
    leftovers = list((b.directory / "data" / "echo").glob(".incoming-alice-*"))
    assert leftovers, "the kill left no incoming tree: the transfer was not caught"
    spooled = b.directory / "data" / ".moves" / "echo-alice-0badf00d-in.tar"
    spooled.parent.mkdir(exist_ok=True)
    spooled.write_bytes(b"half")  # as a kill of an older server's transfer left it
    await b.start()
    with trio.fail_after(30):
        while any(p.exists() for p in [*leftovers, spooled]):
            await trio.sleep(0.02)
    for leftover in [*leftovers, spooled]:
        assert f"removed {leftover}, left by a transfer" in b.log

    # 2. the source dies mid-transfer (alice stopped, the row not handed over): when it
    # starts again alice runs there again, from its data; b never ran it
    pid = fleet.instance_row(TENANT)["pid"]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(move)
        partial = await transfer_caught(fleet, b)
        a.kill()
        assert b.process is not None
        b.process.send_signal(signal.SIGCONT)
        nursery.cancel_scope.cancel()  # the calls to a that were cut
    assert not alive(pid)
    row = fleet.instance_row(TENANT)
    assert (row["node"], row["state"], row["pid"]) == ("a", "stopped", None)
    with trio.fail_after(30):
        while partial.exists():  # b gave up the transfer, and kept nothing of it
            await trio.sleep(0.02)
    assert not (b.directory / "data" / "echo" / "alice").exists()
    await a.start()
    with trio.fail_after(60):
        while (row := fleet.instance_row(TENANT))["state"] != "running":
            await trio.sleep(0.05)
    assert row["node"] == "a" and alive(row["pid"])
    assert "was cut short (its server stopped) before the hand-over" in a.log
    # one copy: the one the row names answers through either node, and its data is whole
    assert await pid_via(a) == await pid_via(b) == str(row["pid"])
    assert tree_digest(source) == before
    assert not (b.directory / "data" / "echo" / "alice").exists()
    assert list((a.directory / "data" / ".moves").iterdir()) == []

    # 3. a move that fails after its data arrived (another node took the tenant over
    # meanwhile, as the row says): the copy taken in on b is removed, never to start
    async with trio.open_nursery() as nursery:
        nursery.start_soon(move)
        await transfer_caught(fleet, b)
        # while it is sent, the source lists it as moving, with the move's step
        async with fleet.api(a) as api:
            listed = await api.get("/api/instances", params={"node": "a"})
        [alice] = [item for item in listed.json() if item["id"] == TENANT]
        assert (alice["state"], alice["node"], alice["pid"]) == ("moving", "a", None)
        assert alice["move"]["to"] == "b" and alice["move"]["step"] == "sending"
        assert alice["move"]["bytes"] > 0 and alice["move"]["secs"] > 0
        with fleet.engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE instances SET epoch = epoch + 1 WHERE instance_id = :i"),
                {"i": TENANT},
            )
        b.process.send_signal(signal.SIGCONT)
    taken = answers["move"]
    assert taken.status_code == 409, taken.text
    assert "was taken over by another node during the move" in taken.json()["error"]
    assert "took in the data of echo:alice" in b.log  # it had arrived whole
    assert not (b.directory / "data" / "echo" / "alice").exists()
    assert "removed the data of echo:alice taken in for a move that failed" in b.log
    assert tree_digest(source) == before

    # 4. `ten move --abort`, asked of a third node while the data is on its way (relayed
    # to a): the move is called off, alice runs on a again with all its data, the request
    # held meanwhile is served there, and b keeps nothing of it and never runs it
    c = fleet.node("c")
    await c.start()
    row = fleet.instance_row(TENANT)
    taken_in = b.log.count("took in the data of echo:alice")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(move)
        partial = await transfer_caught(fleet, b)
        held = await nursery.start(ask_raw, a)
        aborted = await trio.to_thread.run_sync(
            lambda: ten(c, "move", TENANT, "--abort", "--json", token=fleet.token)
        )
        b.process.send_signal(signal.SIGCONT)
    assert aborted.returncode == 0, aborted.stdout + aborted.stderr
    assert json.loads(aborted.stdout) == {
        "id": TENANT,
        "aborted": True,
        "step": "sending",
        "to": "b",
        "runs_on": "a",
        "back": True,
    }
    called_off = answers["move"]
    assert called_off.status_code == 409, called_off.text
    error = called_off.json()["error"]
    assert "The move of echo:alice to fleet node b was aborted (ten move --abort) at" in error
    assert "while sending its data: nothing was moved; it runs on fleet node a again" in error
    after = fleet.instance_row(TENANT)
    assert (after["node"], after["epoch"], after["state"]) == ("a", row["epoch"], "running")
    assert held.pid == str(after["pid"])
    assert tree_digest(source) == before
    with trio.fail_after(30):
        while partial.exists():  # b saw the transfer end unfinished, and kept nothing
            await trio.sleep(0.02)
    assert not (b.directory / "data" / "echo" / "alice").exists()
    assert b.log.count("took in the data of echo:alice") == taken_in
    assert await pid_via(b) == str(after["pid"])  # b sends its requests to a's copy
    assert "the move of echo:alice to b was aborted: it runs here again" in a.log
    # nothing under way, or nothing of that name: refused, saying so
    for instance, said in (
        (TENANT, "No move of echo:alice is under way: it runs on fleet node a"),
        ("echo:nobody", "Instance not found: echo:nobody"),
    ):
        refused = ten(c, "move", instance, "--abort", token=fleet.token)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert said in refused.stderr
    async with fleet.api(c) as api:
        nothing = await api.delete(f"/api/instances/{TENANT}/move")
    assert nothing.status_code == 409, nothing.text
    assert fleet.instance_row(TENANT)["pid"] == after["pid"]


async def test_the_old_copy_is_removed_once_its_keep_time_passes(fleet: Fleet) -> None:
    """`--keep-source 0`: the old node removes its copy at its next look (one is taken
    when its server starts); copies whose time has not come, and anything else under
    a moved-… name, stay."""
    a, _ = await alice_on_a(fleet)
    (a.directory / "data" / "echo" / "alice" / "notes.txt").write_text("hello\n")
    for wrong in (-1, 10**12, "1h", 1.5):
        refused = await post(
            fleet, a, f"/api/instances/{TENANT}/move", {"to": "b", "keep_source": wrong}
        )
        assert refused.status_code == 422, refused.text
        assert "keep_source" in refused.json()["error"]
    assert fleet.instance_row(TENANT)["node"] == "a"

    moved_at = time.time()
    moved = await post(fleet, a, f"/api/instances/{TENANT}/move", {"to": "b", "keep_source": 0})
    assert moved.status_code == 200, moved.text
    report = moved.json()
    kept = Path(report["kept"])
    assert kept.name.startswith("moved-alice-") and kept.name.endswith("-keep0s")
    assert kept.is_dir() and int(moved_at) - 1 <= report["kept_until"] <= time.time()

    echo = a.directory / "data" / "echo"
    planted = {
        "moved-bob-20200101T000000Z": "expired",  # [fleet] keep_moved (7 days) is over
        "moved-carol-20200101T000000Z-keep999999999s": "kept",
        time.strftime("moved-dan-%Y%m%dT%H%M%SZ", time.gmtime()): "kept",
        "moved-notes": "kept",  # no time in its name: not a copy of ours
    }
    for name in planted:
        (echo / name).mkdir()
        (echo / name / "data").write_text(name)
    elsewhere = a.directory / "keep-me"
    elsewhere.mkdir()
    (echo / "moved-eve-20200101T000000Z").symlink_to(elsewhere)  # a link is not a copy

    a.kill()
    await a.start()
    with trio.fail_after(60):
        while kept.exists() or (echo / "moved-bob-20200101T000000Z").exists():
            await trio.sleep(0.1)
    for name, fate in planted.items():
        assert (echo / name).exists() == (fate == "kept"), name
    assert (echo / "moved-eve-20200101T000000Z").is_symlink() and elsewhere.is_dir()
    assert f"removed {kept}" in a.log
