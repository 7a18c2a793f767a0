"""Pets: the profile (P1) with 25 pets under wrk, direct and through the gateway; adding a pet with photos.

Runs the real stack as `make run` does (auth, notifier and pets, each with the worker processes the
launcher picks, Caddy as the gateway), signs a user up and in through the real flow, seeds 25 pets with
two photos each in the pets database, then loads `GET /api/auth/profile/` with `wrk -t2` at 8
and 64 connections (the shared runner, `bench/wrk.py`), authenticated, direct to the pets service's port
and through the gateway (requests/s, p50, p99, CPU per request of the pets processes and of the gateway).
Targets (request-path issue): >= 1,800 req/s, p99 <= 50 ms.

Then, direct to the pets service: `POST /api/auth/pets/add/` with three 3 MB, 12-megapixel phone photos
(p50, p95, and the peak resident memory of the pets processes), and the 144-megapixel PNG bomb (time to
refuse and peak memory).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx

from bench.photos import _phone_photos, _png_bomb
from bench.stats import percentile, report
from bench.wrk import Stack, child_pid, children_of, have_wrk, side_by_side, sign_in, token_user_id

PETS = 25
ADD_ROUNDS = int(os.environ.get("BENCH_PETS_ADD_ROUNDS", "12"))
BOMB_ROUNDS = 20
PROFILE = "/api/auth/profile/"


def seed(token: str, data_dir: Path) -> None:
    """25 pets with two photo rows each for the signed-in user, straight into the pets database."""
    from sqlmodel import Session

    from pawgle.common.blobs import new_blob_key
    from pawgle.common.db import make_engine
    from pawgle.common.photos import thumbnail_key_for
    from pawgle.pets.models import Pet, PetPhoto
    from pawgle.pets.qrtag import new_animal_id

    owner = token_user_id(token)
    engine = make_engine(f"sqlite:///{data_dir / 'pets' / 'db.sqlite3'}")
    info = json.dumps({"weight": "12", "height": "40", "subNotes": ["shy", "blue collar"]})
    with Session(engine) as session:
        for index in range(PETS):
            pet = Pet(
                owner_id=owner,
                animal_id=new_animal_id(),
                name=f"Rex {index}",
                type="Dogs",
                breed="Beagle",
                category="Domestic",
                is_public=index % 2 == 0,
                additional_info=info,
            )
            session.add(pet)
            session.flush()
            assert pet.id is not None
            for position in range(2):
                key = new_blob_key("pets", "jpg")
                session.add(
                    PetPhoto(
                        pet_id=pet.id, owner_id=owner, key=key, thumbnail_key=thumbnail_key_for(key), position=position
                    )
                )
        session.commit()
    engine.dispose()


def _pets_pids(launcher_pid: int) -> list[int]:
    """The pets service's processes: its main uvicorn process and its workers."""
    main = child_pid(launcher_pid, "pawgle.pets.main")
    return [main, *children_of(main)]


def _reset_peak(pids: list[int]) -> None:
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        except OSError:
            pass


def _peak_mb(pids: list[int]) -> float:
    """The highest VmHWM (peak resident memory) among the pets processes."""
    peak = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return peak


def _rss_mb(pids: list[int]) -> float:
    rss = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = max(rss, int(line.split()[1]) / 1024)
        except OSError:
            continue
    return rss


def bench_add(pets_url: str, token: str, pids: list[int]) -> None:
    photos = _phone_photos(3)
    sizes = ", ".join(f"{len(p) / 2**20:.1f}" for p in photos)
    form = {"name": "Bench", "category": "Domestic", "type": "Dogs", "breed": "Beagle", "isPublic": "false"}
    headers = {"Authorization": f"Bearer {token}"}
    files = [("images", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
    times: list[float] = []
    with httpx.Client(base_url=pets_url, timeout=120, headers=headers) as client:
        client.post("/api/auth/pets/add/", data=form, files=files).raise_for_status()  # warm-up
        baseline = _rss_mb(pids)
        _reset_peak(pids)
        for _ in range(ADD_ROUNDS):
            started = time.perf_counter()
            response = client.post("/api/auth/pets/add/", data=form, files=files)
            times.append(time.perf_counter() - started)
            if response.status_code != 201:
                raise RuntimeError(f"add failed: {response.status_code} {response.text[:200]}")
        peak = _peak_mb(pids)
        report(
            f"P2 add a pet with three photos ({sizes} MB, 12 MP), {ADD_ROUNDS} sequential requests: "
            f"p50 {percentile(times, 50) * 1000:.0f} ms, p95 {percentile(times, 95) * 1000:.0f} ms; "
            f"pets process peak {peak:.0f} MB (resident before {baseline:.0f} MB, +{peak - baseline:.0f} MB)"
        )
        bomb = _png_bomb()
        bomb_files = [("images", ("bomb.png", bomb, "image/png"))]
        baseline = _rss_mb(pids)
        _reset_peak(pids)
        times = []
        for _ in range(BOMB_ROUNDS):
            started = time.perf_counter()
            response = client.post("/api/auth/pets/add/", data=form, files=bomb_files)
            times.append(time.perf_counter() - started)
            if response.status_code != 400:
                raise RuntimeError(f"the bomb was not refused: {response.status_code}")
        peak = _peak_mb(pids)
        report(
            f"P2 the 144-megapixel PNG bomb ({len(bomb) / 1024:.0f} KB) refused (400), {BOMB_ROUNDS} requests: "
            f"p50 {percentile(times, 50) * 1000:.1f} ms, p95 {percentile(times, 95) * 1000:.1f} ms "
            f"(whole request); peak {peak:.0f} MB (+{peak - baseline:.0f} MB)"
        )


def main() -> None:
    """Print the profile table (direct and through the gateway, 8 and 64 connections) and the add-a-pet figures."""
    if not have_wrk():
        return
    with Stack(["auth", "notifier", "pets"]) as stack:
        token = sign_in(stack.gateway, stack.data_dir)
        seed(token, stack.data_dir)
        report(f"P1 profile with {PETS} pets (2 photos each), authenticated")
        side_by_side(stack, "pets", token, [PROFILE])
        report("target (request-path issue): >= 1,800 req/s through the gateway at 64 connections, p99 <= 50 ms")
        assert stack.launcher is not None
        bench_add(stack.url("pets"), token, _pets_pids(stack.launcher.pid))


if __name__ == "__main__":
    main()
