"""Blobs between real daemons (#13): pictures that lose their GPS position, travel to
followers (thumbnails too), hop through a friend, survive cuts, and stay bounded."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.e2e.daemons import BIN, DaemonProcess, mesh, texts, wait_for

pytestmark = pytest.mark.e2e

Daemons = Callable[..., DaemonProcess]

GPS_IFD = 0x8825
BODY_SERIAL = 0xA431


def photo_with_gps(path: Path, size: tuple[int, int] = (1200, 900)) -> Path:
    """A JPEG as a phone writes it: EXIF with a GPS position, camera make and serial."""
    image = Image.new("RGB", size, (200, 120, 40))
    for x in range(0, size[0], 7):  # some detail, so it is not all one colour
        image.putpixel((x, (x * 3) % size[1]), (10, 200, 90))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Model 9"  # Model
    exif[BODY_SERIAL] = "SN-123456789"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif.tobytes(), quality=92)
    path.write_bytes(buffer.getvalue())
    return path


def has_exif(data: bytes) -> bool:
    with Image.open(io.BytesIO(data)) as image:
        return bool(image.getexif()) or "exif" in image.info


def held(d: DaemonProcess, blob: str) -> bool:
    return bool(d.call("blobs.has", id=blob)["held"])


def blob_path(d: DaemonProcess, blob: str) -> Path:
    import base64

    raw = base64.b64decode(blob[1:-7])
    text = raw.hex()
    return d.home / "blobs" / "sha256" / text[:2] / text[2:]


def post_photo(a: DaemonProcess, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    photo = photo_with_gps(tmp_path / "holiday.jpg")
    assert has_exif(photo.read_bytes())
    done = a.cli("post", "look where I am", "--attach", str(photo), "--alt", "a beach")
    assert "removed its metadata" in done.stderr
    assert "shared as picture.jpg" in done.stderr  # the camera's file name is not published
    msg_id = done.stdout.strip()
    content = a.call("get", id=msg_id)["content"]
    (entry,) = content["mentions"]
    return msg_id, entry


def test_a_photo_reaches_a_follower_without_its_gps_position(
    daemons: Daemons, tmp_path: Path
) -> None:
    a, b = daemons("a"), daemons("b")
    _msg, entry = post_photo(a, tmp_path)
    assert entry["type"] == "image/jpeg" and entry["alt"] == "a beach"
    assert (entry["width"], entry["height"]) == (1200, 900)
    thumb = entry["thumbnail"]
    assert max(thumb["width"], thumb["height"]) == 320
    mesh(a, b)
    wait_for(lambda: held(b, entry["link"]) and held(b, thumb["link"]), what="blobs at b")
    mine = blob_path(a, entry["link"]).read_bytes()
    out = tmp_path / "got.jpg"
    b.cli("blob", "get", entry["link"], "-o", str(out))
    assert out.read_bytes() == mine  # identical, and its hash is its id
    assert not has_exif(mine)
    assert len(mine) == entry["size"]
    status = b.call("status")["blobs"]
    assert status["count"] == 2 and status["bytes"] == entry["size"] + thumb["size"]
    assert status["quota"] == 1024 * 1024 * 1024
    # nothing half-made was left behind
    assert not list((b.home / "blobs" / "partial").iterdir())


def test_a_friend_of_a_friend_gets_it_through_the_friend(daemons: Daemons, tmp_path: Path) -> None:
    a, b, c = daemons("a"), daemons("b"), daemons("c")
    _msg, entry = post_photo(a, tmp_path)
    mesh(a, b)
    wait_for(lambda: held(b, entry["link"]), what="the photo at b")
    c.call("follow", feed_id=b.feed_id)
    c.cli("connect", b.address)  # c never meets a
    out = tmp_path / "at-c.jpg"
    c.cli("blob", "get", entry["link"], "-o", str(out), "--wait", "30")
    assert out.read_bytes() == blob_path(a, entry["link"]).read_bytes()
    assert all(p["feed_id"] != a.feed_id for p in c.call("peers.list")["connected"])


def test_a_want_is_forwarded_one_hop(daemons: Daemons, tmp_path: Path) -> None:
    """b neither follows a nor wants the blob, but passes c's want on to a."""
    a, b, c = daemons("a"), daemons("b"), daemons("c")
    added = a.call("blobs.add", path=str(photo_with_gps(tmp_path / "p.jpg")))
    b.cli("connect", a.address)
    c.cli("connect", b.address)
    wait_for(lambda: len(b.call("peers.list")["connected"]) == 2, what="b connected to both")
    got = c.call("blobs.get", id=added["id"], wait=30)
    assert got["size"] == added["size"]
    assert held(b, added["id"])  # b fetched it to pass it on


def test_a_file_over_the_cap_is_refused(daemons: Daemons, tmp_path: Path) -> None:
    a = daemons("a")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5 * 1024 * 1024 + 1))
    done = a.cli("blob", "add", str(big), check=False)
    assert done.returncode == 1
    assert (
        "5242881 bytes" in done.stderr and "5 MiB" in done.stderr and "1 bytes over" in done.stderr
    )
    assert a.call("status")["blobs"]["count"] == 0
    ok = big.with_name("ok.bin")
    ok.write_bytes(os.urandom(5 * 1024 * 1024))
    assert a.cli("blob", "add", str(ok)).stdout.startswith("&")


def test_a_private_attachment_is_ciphertext_at_the_pub(daemons: Daemons, tmp_path: Path) -> None:
    a, pub, b = daemons("a"), daemons("pub"), daemons("b")
    mesh(a, pub)
    mesh(b, pub)
    secret = tmp_path / "letter.txt"
    secret.write_bytes(b"meet me at the old mill at noon\n" * 20)
    msg = a.cli("dm", "send", "for your eyes", "--to", b.feed_id, "--attach", str(secret))
    msg_id = msg.stdout.strip()
    wait_for(lambda: any(m["id"] == msg_id for m in b.call("private.inbox")), what="dm at b")
    (entry,) = next(m for m in b.call("private.inbox") if m["id"] == msg_id)["content"]["mentions"]
    assert "key" in entry
    wait_for(lambda: held(b, entry["link"]), what="the attachment at b")
    out = tmp_path / "opened.txt"
    b.cli("blob", "get", entry["link"], "-o", str(out))
    assert out.read_bytes() == secret.read_bytes()
    # the pub carried it (b got it only through the pub) and holds only ciphertext
    at_pub = blob_path(pub, entry["link"]).read_bytes()
    assert b"old mill" not in at_pub
    assert len(at_pub) == secret.stat().st_size + 40


def test_a_blocked_authors_blob_is_never_fetched(daemons: Daemons, tmp_path: Path) -> None:
    """b blocks a: a's blobs b held go, and a's new ones are not fetched, though c, whom b
    follows and is connected to, follows a and holds them."""
    a, b, c = daemons("a"), daemons("b"), daemons("c")
    mesh(a, b)
    mesh(a, c)
    _msg, entry = post_photo(a, tmp_path)
    wait_for(lambda: held(b, entry["link"]), what="the first photo at b")
    b.cli("block", a.feed_id)
    wait_for(lambda: not held(b, entry["link"]), what="the blocked author's blob dropped")
    wait_for(lambda: b.call("status")["blobs"]["count"] == 0, what="no blob left at b")
    b.call("follow", feed_id=c.feed_id)
    c.call("follow", feed_id=b.feed_id)
    b.cli("connect", c.address)
    later = tmp_path / "later.txt"
    later.write_text("posted after the block\n")
    msg = a.cli("post", "after the block", "--attach", str(later)).stdout.strip()
    link = a.call("get", id=msg)["content"]["mentions"][0]["link"]
    wait_for(lambda: held(c, link), what="the new blob at c")
    c.call("post", text="c is connected to b")
    wait_for(lambda: "c is connected to b" in texts(b, c.feed_id), what="c's post at b")
    time.sleep(1)  # time enough for a want to go out and the blob to come, were it wanted
    assert not held(b, link)
    assert b.call("status")["blobs"]["count"] == 0


def test_a_blob_of_a_deleted_post_is_dropped(daemons: Daemons, tmp_path: Path) -> None:
    a, b = daemons("a"), daemons("b")
    mesh(a, b)
    msg_id, entry = post_photo(a, tmp_path)
    wait_for(lambda: held(b, entry["link"]), what="the photo at b")
    a.cli("delete", msg_id, "--yes")
    wait_for(lambda: not held(b, entry["link"]), what="the blob dropped at b")
    wait_for(lambda: not held(a, entry["link"]), what="the blob dropped at a")


def test_blob_commands_without_a_daemon(tmp_path: Path, cli_env: dict[str, str]) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "p2psocial"), *args],
            capture_output=True,
            text=True,
            env=cli_env,
            timeout=60,
        )

    assert run("init").returncode == 0
    note = tmp_path / "note.txt"
    note.write_text("hello blobs\n")
    blob = run("blob", "add", str(note)).stdout.strip()
    assert blob.startswith("&") and blob.endswith(".sha256")
    listed = [json.loads(line) for line in run("blob", "list", "--json").stdout.splitlines()]
    assert [item["id"] for item in listed] == [blob]
    assert listed[0]["pinned"] is True
    out = tmp_path / "out.txt"
    assert run("blob", "get", blob, "-o", str(out)).returncode == 0
    assert out.read_text() == "hello blobs\n"
    missing = "&" + "A" * 43 + "=.sha256"
    gone = run("blob", "get", missing, "-o", str(out))
    assert gone.returncode == 1 and "not held here" in gone.stderr
    assert run("blob", "rm", blob).returncode == 0
    assert run("blob", "list", "--json").stdout == ""


# ----------------------------------------------------------------------------- hostile peers


class BlobPeer:
    """A peer in this test process that dials a daemon, says it has one blob, and serves
    ``blobs.get`` as ``serve(offset, stream)`` decides."""

    def __init__(self, blob: str, size: int, serve: Any) -> None:
        from p2psocial.identity import Keypair

        self.keys = Keypair.from_seed(os.urandom(32))
        self.blob = blob
        self.size = size
        self.serve = serve
        self.offsets: list[int] = []
        self.cut_reason: str | None = None

    async def run(self, d: DaemonProcess, feed: str) -> None:
        from p2psocial.config import parse_address
        from p2psocial.errors import P2PSocialError
        from p2psocial.identity import parse_feed_id
        from p2psocial.net.connection import connect, stream_handler
        from p2psocial.proto.handshake import NETWORK_KEY

        async def get(conn: Any, args: Any, stream: Any) -> None:
            self.offsets.append(args["offset"])
            await self.serve(args["offset"], stream)

        host, port = parse_address(d.info["listen"])
        try:
            async with connect(
                host,
                port,
                parse_feed_id(feed),
                keys=self.keys,
                network_key=NETWORK_KEY,
                handlers={"blobs.get": stream_handler(get)},
            ) as conn:
                async with conn.stream("blobs.wants", {}) as wants:
                    await wants.send({self.blob: self.size})
                    async for _message in wants:
                        pass
                await conn.wait_closed()
                self.cut_reason = conn.close_reason
        except P2PSocialError as exc:
            self.cut_reason = str(exc)


def wanted_blob(d: DaemonProcess, size: int) -> tuple[bytes, str]:
    """Random bytes and their blob id, which daemon ``d`` is asked to fetch."""
    import base64
    import hashlib

    data = os.urandom(size)
    blob = "&" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ".sha256"
    d.call("blobs.want", id=blob)
    return data, blob


def serving(data: bytes) -> Any:
    """A ``blobs.get`` behaviour that sends ``data`` from the offset asked, honestly."""

    async def serve(offset: int, stream: Any) -> None:
        for at in range(offset, len(data), 256 * 1024):
            await stream.send(data[at : at + 256 * 1024])

    return serve


def running(peer: BlobPeer, d: DaemonProcess) -> Any:
    """``peer`` dialling ``d``, in a thread, for the length of a with block."""
    from tests.e2e.hostile import InThread

    return InThread(lambda: peer.run(d, d.feed_id))


def test_a_liar_serving_wrong_bytes_is_cut_off_and_nothing_is_stored(
    daemons: Daemons, tmp_path: Path
) -> None:
    b = daemons("b")
    data, blob = wanted_blob(b, 300_000)

    async def lie(offset: int, stream: Any) -> None:
        await stream.send(os.urandom(len(data)))  # the right size, the wrong bytes

    liar = BlobPeer(blob, len(data), lie)
    with running(liar, b):
        wait_for(lambda: "cutting off" in b.log() and "hash to" in b.log(), what="cut-off")
    assert not held(b, blob)
    assert not blob_path(b, blob).exists()
    assert not list((b.home / "blobs" / "partial").iterdir())
    assert b.call("status")["blobs"]["count"] == 0
    assert b.call("whoami")  # and the daemon serves on


def test_a_cut_download_resumes_where_it_stopped(daemons: Daemons, tmp_path: Path) -> None:
    import trio

    b = daemons("b")
    data, blob = wanted_blob(b, 1_000_000)
    half = 512 * 1024

    async def cut(offset: int, stream: Any) -> None:
        await stream.send(data[:half])
        await trio.sleep(0.5)
        await stream._conn.aclose("cut on purpose")

    first = BlobPeer(blob, len(data), cut)
    with running(first, b):
        wait_for(lambda: b.call("blobs.has", id=blob)["partial"] == half, what="half of it")
        wait_for(lambda: first.cut_reason is not None, what="the cut")
    assert not held(b, blob) and not blob_path(b, blob).exists()

    second = BlobPeer(blob, len(data), serving(data))
    with running(second, b):
        wait_for(lambda: held(b, blob), what="the rest of it")
    assert second.offsets == [half]  # only the missing part travelled again
    assert blob_path(b, blob).read_bytes() == data


def test_killing_the_daemon_mid_download_leaves_no_blob_under_its_name(
    daemons: Daemons, tmp_path: Path
) -> None:
    import trio

    b = daemons("b")
    data, blob = wanted_blob(b, 2_000_000)

    async def stall(offset: int, stream: Any) -> None:
        await stream.send(data[:300_000])
        await trio.sleep_forever()

    slow = BlobPeer(blob, len(data), stall)
    with running(slow, b):
        wait_for(lambda: b.call("blobs.has", id=blob)["partial"] > 0, what="a partial")
        b.kill()
    assert not blob_path(b, blob).exists()
    digest_hex = blob_path(b, blob).parent.name + blob_path(b, blob).name
    part = b.home / "blobs" / "partial" / f"{digest_hex}.part"
    kept = part.stat().st_size
    assert 0 < kept <= 300_000  # kept, under its own name, to resume
    b.start()
    assert not held(b, blob)
    assert b.call("status")["blobs"]["count"] == 0
    b.call("blobs.want", id=blob)  # asked for again (blob get): resumed

    second = BlobPeer(blob, len(data), serving(data))
    with running(second, b):
        wait_for(lambda: held(b, blob), what="the blob after the restart")
    assert second.offsets == [kept]
    assert blob_path(b, blob).read_bytes() == data


def test_a_flood_of_wants_gets_the_peer_cut_off(daemons: Daemons) -> None:
    import base64

    b = daemons("b")

    async def flood() -> None:
        from p2psocial.config import parse_address
        from p2psocial.errors import P2PSocialError
        from p2psocial.identity import Keypair, parse_feed_id
        from p2psocial.net.connection import connect
        from p2psocial.proto.handshake import NETWORK_KEY

        host, port = parse_address(b.info["listen"])
        try:
            async with connect(
                host,
                port,
                parse_feed_id(b.feed_id),
                keys=Keypair.from_seed(os.urandom(32)),
                network_key=NETWORK_KEY,
            ) as conn:
                async with conn.stream("blobs.wants", {}) as wants:
                    for _round in range(10):
                        await wants.send(
                            {
                                "&" + base64.b64encode(os.urandom(32)).decode() + ".sha256": -1
                                for _ in range(1000)
                            }
                        )
                    await conn.wait_closed()
        except P2PSocialError:
            pass

    from tests.e2e.hostile import InThread

    with InThread(flood):
        wait_for(lambda: "more than 5000 wants" in b.log(), what="the flood cut off")
    assert b.call("whoami")


def test_a_full_quota_purges_the_right_blobs_and_never_mine(
    daemons: Daemons, tmp_path: Path
) -> None:
    """b (quota 3 MiB, blobs of feeds 2 follows away) follows a, who follows e. Over the
    quota, e's blob goes first (not followed directly), then a's least recently used;
    b's own blob never."""
    mib = 1024 * 1024
    e, a = daemons("e"), daemons("a")
    b = daemons("b", start=False)
    b.cli("init")
    (b.home / "config.toml").write_text('blob_quota = "3MiB"\nblob_hops = 2\n')
    b.start()
    mine = tmp_path / "mine.bin"
    mine.write_bytes(os.urandom(mib))
    my_blob = b.cli("blob", "add", str(mine)).stdout.strip()
    mesh(a, e)
    b.call("follow", feed_id=a.feed_id)
    b.cli("connect", a.address)

    def share(d: DaemonProcess, name: str) -> str:
        path = tmp_path / name
        path.write_bytes(os.urandom(800 * 1024))
        msg = d.cli("post", f"a file: {name}", "--attach", str(path)).stdout.strip()
        link: str = d.call("get", id=msg)["content"]["mentions"][0]["link"]
        return link

    from_e = share(e, "e.bin")
    wait_for(lambda: held(b, from_e), what="e's blob at b (two hops)", timeout=30)
    first = share(a, "a1.bin")
    wait_for(lambda: held(b, first), what="a's first blob at b")
    second = share(a, "a2.bin")
    wait_for(lambda: held(b, second), what="a's second blob at b")
    assert not held(b, from_e)  # not followed directly: purged first, though newer
    assert held(b, first)
    third = share(a, "a3.bin")
    wait_for(lambda: held(b, third), what="a's third blob at b")
    assert not held(b, first)  # then the least recently used of a's
    assert held(b, second) and held(b, my_blob)
    totals = b.call("status")["blobs"]
    assert totals["bytes"] <= 3 * mib and totals["quota"] == 3 * mib
    # and what was purged is not fetched again while there is no room
    time.sleep(1.5)
    assert not held(b, first) and not held(b, from_e)


def test_timelines_show_attachments_and_profiles_take_a_picture(
    daemons: Daemons, tmp_path: Path
) -> None:
    a, b = daemons("a"), daemons("b")
    mesh(a, b)
    msg_id, entry = post_photo(a, tmp_path)
    wait_for(lambda: held(b, entry["link"]), what="the photo at b")
    (card,) = [c for c in b.call("timeline") if c["id"] == msg_id]
    (shown,) = card["attachments"]
    assert shown["id"] == entry["link"] and shown["held"] is True
    assert shown["thumbnail"]["held"] is True and shown["alt"] == "a beach"
    text = b.cli("timeline").stdout
    assert "[attached] picture.jpg, image/jpeg, 1200x900" in text and "held here" in text
    assert "alt: a beach" in text
    assert "blobs     2 (" in b.cli("status").stdout
    # an avatar from a picture file: scaled to 512 px, its metadata gone
    face = photo_with_gps(tmp_path / "face.jpg", (1600, 1600))
    done = a.cli("profile", "set", "--name", "Ann", "--avatar", str(face))
    assert "removed its metadata" in done.stderr
    avatar = a.call("profile")["avatar"]
    wait_for(lambda: held(b, avatar), what="the avatar at b")
    with Image.open(blob_path(b, avatar)) as image:
        assert image.size == (512, 512)
    not_a_picture = tmp_path / "notes.txt"
    not_a_picture.write_text("not a face")
    refused = a.cli("profile", "set", "--avatar", str(not_a_picture), check=False)
    assert refused.returncode == 1 and "not a picture" in refused.stderr


def test_blob_progress_reaches_a_subscriber(daemons: Daemons, tmp_path: Path) -> None:
    a, b = daemons("a"), daemons("b")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    added = a.call("blobs.add", path=str(big))
    with b.client() as client:
        sub = client.subscribe("blobs.subscribe")
        b.call("blobs.want", id=added["id"])
        b.cli("connect", a.address)
        events: list[dict[str, Any]] = []
        while not any(e.get("event") == "stored" for e in events):
            item = sub.get(timeout=20)
            assert item is not None, f"no blob event within 20 s after {events[-3:]}"
            events.append(item)
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and progress[-1]["received"] == 3 * 1024 * 1024
    assert all(e["id"] == added["id"] for e in events)


def test_a_liars_partial_bytes_never_get_an_honest_peer_cut_off(
    daemons: Daemons, tmp_path: Path
) -> None:
    """A liar sends junk for the start of a blob and stops. The honest peer that sends the
    rest is not blamed when the whole does not hash right: the partial is dropped and the
    blob fetched again from the start, from the honest peer."""
    b = daemons("b")
    data, blob = wanted_blob(b, 600_000)

    async def junk_then_stop(offset: int, stream: Any) -> None:
        await stream.send(os.urandom(300))

    liar = BlobPeer(blob, len(data), junk_then_stop)
    with running(liar, b):
        wait_for(lambda: b.call("blobs.has", id=blob)["partial"] == 300, what="junk kept")

    good = BlobPeer(blob, len(data), serving(data))
    with running(good, b):
        wait_for(lambda: held(b, blob), what="the blob from the honest peer")
        assert good.cut_reason is None  # still connected: not cut off
    assert good.offsets == [300, 0]  # resumed, mismatched, fetched again from the start
    assert blob_path(b, blob).read_bytes() == data
    assert "did not hash to its id: dropped" in b.log()


def test_a_peer_without_blobs_still_replicates(daemons: Daemons) -> None:
    """A peer from before blobs answers blobs.wants with unknown_method: the daemon logs
    it and replicates on, on the same connection."""
    import trio

    from p2psocial.identity import Keypair
    from tests.e2e.hostile import HostilePeer

    b = daemons("b")
    keys = Keypair.from_seed(os.urandom(32))

    async def quiet(conn: Any, stream: Any) -> None:
        await trio.sleep_forever()

    with HostilePeer(keys, quiet) as old:
        b.call("peers.connect", address=old.address, feed_id=keys.feed_id)
        wait_for(lambda: "no stream method 'blobs.wants'" in b.log(), what="unknown_method")
        time.sleep(2)
        assert old.sessions == 1  # one connection, held on: not redialled in a loop
