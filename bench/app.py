"""Load check of the operator app's live updates: many WebSocket pages at 5 Hz on localhost.

Starts ``agricare serve --demo --demo-areas care`` (the server with its rclpy bridge, the two simulated
shuttles in their own process), logs in as staff, then opens N WebSocket clients (one asyncio process,
``websockets``) that read the live fleet updates for ``--duration-s``. Reference run in the same process:
1 client, then ``--clients`` clients. Prints per run: updates received per client per second, latency
from the server's send stamp to the client's receipt (p50 / p99 / max, same machine clock), and the server
process's CPU (utime + stime from /proc, the robot hosts are other processes) per client.

    python bench/app.py [--clients 200] [--rate-hz 5] [--duration-s 20] [--json out/bench/app.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import httpx
import numpy as np
from websockets.asyncio.client import connect

CLK = os.sysconf("SC_CLK_TCK")
SIZES: list[int] = []


def cpu_s(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def client(url: str, cookie: str, stop_at: float, lat: list, counts: list, i: int) -> None:
    """One page: count the updates and their latency until ``stop_at``."""
    async with connect(url, additional_headers={"Cookie": cookie}, max_size=2**24) as ws:
        while True:
            remaining = stop_at - time.time()
            if remaining <= 0:
                return
            try:
                msg = await asyncio.wait_for(ws.recv(), timeout=remaining)
            except TimeoutError:
                return
            now = time.time()
            head = msg[:80]   # '{"seq": n, "t_sent": t, ...': read the stamp without parsing the whole update
            i0 = head.index('"t_sent": ') + 10
            t_sent = float(head[i0:head.index(",", i0)])
            lat.append(now - t_sent)
            counts[i] += 1
            SIZES.append(len(msg))


async def run_load(url: str, cookie: str, n: int, duration_s: float, warmup_s: float = 2.0) -> dict:
    lat: list[float] = []
    counts = [0] * n
    stop_at = time.time() + warmup_s + duration_s
    tasks = [asyncio.create_task(client(url, cookie, stop_at, lat, counts, i)) for i in range(n)]
    await asyncio.sleep(warmup_s)   # connections up, then measure
    lat.clear()
    counts[:] = [0] * n
    t0 = time.time()
    await asyncio.gather(*tasks, return_exceptions=True)
    wall = time.time() - t0
    arr = np.asarray(lat) * 1000.0
    rates = np.asarray(counts) / wall
    return {"clients": n, "wall_s": round(wall, 2), "messages": int(arr.size),
            "rate_per_client_hz": {"mean": round(float(rates.mean()), 2), "min": round(float(rates.min()), 2)},
            "latency_ms": {"p50": round(float(np.percentile(arr, 50)), 2) if arr.size else None,
                           "p99": round(float(np.percentile(arr, 99)), 2) if arr.size else None,
                           "max": round(float(arr.max()), 2) if arr.size else None}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--rate-hz", type=float, default=5.0)
    ap.add_argument("--duration-s", type=float, default=20.0)
    ap.add_argument("--domain-id", type=int, default=int(os.environ.get("ROS_DOMAIN_ID", "0")))
    ap.add_argument("--json", default="out/bench/app.json")
    a = ap.parse_args(argv)
    data = pathlib.Path(tempfile.mkdtemp(prefix="agricare_bench_app_"))
    port = free_port()
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    log = open(data / "serve.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "agricare.cli", "serve", "--demo", "--demo-areas", "care",
                             "--port", str(port), "--data-dir", str(data), "--domain-id", str(a.domain_id),
                             "--update-rate-hz", str(a.rate_hz)], stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not (data / "demo_logins.json").is_file() or not _up(base):
            if proc.poll() is not None or time.monotonic() > deadline:
                print((data / "serve.log").read_text()[-2000:])
                return 1
            time.sleep(0.3)
        logins = json.loads((data / "demo_logins.json").read_text())
        with httpx.Client(base_url=base) as c:
            c.post("/api/login", json={"username": "staff", "password": logins["staff"]}).raise_for_status()
            cookie = f"agricare_session={c.cookies['agricare_session']}"
        time.sleep(5.0)   # the robots are up and publishing
        url = f"ws://127.0.0.1:{port}/ws"
        runs = []
        for n in (1, a.clients):
            c0, w0, own0 = cpu_s(proc.pid), time.time(), time.process_time()
            SIZES.clear()
            res = asyncio.run(run_load(url, cookie, n, a.duration_s))
            cpu = cpu_s(proc.pid) - c0
            wall = time.time() - w0
            res["load_generator_cpu_percent"] = round(100.0 * (time.process_time() - own0) / wall, 1)
            res["mean_update_bytes"] = int(np.mean(SIZES)) if SIZES else 0
            res["server_cpu_percent"] = round(100.0 * cpu / wall, 1)
            res["server_cpu_percent_per_client"] = round(100.0 * cpu / wall / n, 3)
            res["server_cpu_ms_per_update"] = round(1000.0 * cpu / max(1, res["messages"]), 3)
            runs.append(res)
            print(f"{n:4d} clients: {res['rate_per_client_hz']['mean']:.2f} updates/s per client "
                  f"(min {res['rate_per_client_hz']['min']:.2f}), latency p50 {res['latency_ms']['p50']} ms "
                  f"p99 {res['latency_ms']['p99']} ms max {res['latency_ms']['max']} ms, server CPU "
                  f"{res['server_cpu_percent']} % ({res['server_cpu_percent_per_client']} % per client), "
                  f"load generator CPU {res['load_generator_cpu_percent']} %, {res['mean_update_bytes']} B per update",
                  flush=True)
        out = {"rate_hz": a.rate_hz, "duration_s": a.duration_s, "cpu_count": os.cpu_count(),
               "load_avg_1min": os.getloadavg()[0], "runs": runs}
        p = pathlib.Path(a.json)
        p.parent.mkdir(parents=True, exist_ok=True)
        big, ref = runs[-1], runs[0]
        # marginal server CPU per delivered update (the 1-client run holds the fixed cost: bridge, robots' topics)
        ref_cpu_s = ref["server_cpu_percent"] / 100.0
        marginal_ms = 1000.0 * (big["server_cpu_percent"] / 100.0 - ref_cpu_s) / max(
            1e-9, big["messages"] / big["wall_s"])
        out["server_cpu_ms_per_update_marginal"] = round(marginal_ms, 3)
        out["cpu_needed_for_target_percent"] = round(100.0 * (ref_cpu_s + marginal_ms / 1000.0 * a.clients
                                                             * a.rate_hz), 1)
        print(f"marginal server CPU {marginal_ms:.3f} ms per update: {a.clients} pages at {a.rate_hz:g} Hz need "
              f"{out['cpu_needed_for_target_percent']} % of one CPU (extrapolated from this run)")
        p.write_text(json.dumps(out, indent=1))
        print(f"app live updates: {big['clients']} clients at {a.rate_hz:g} Hz -> "
              f"{big['rate_per_client_hz']['mean']:.2f} Hz each, p99 {big['latency_ms']['p99']} ms, server CPU "
              f"{big['server_cpu_percent_per_client']} % per client (1 client: p99 {runs[0]['latency_ms']['p99']} ms, "
              f"{runs[0]['server_cpu_percent']} %); machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
              f"CPUs -> {p}")
        return 0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
        log.close()
        shutil.rmtree(data, ignore_errors=True)   # the server's data directory (logins, database, log) is scratch


def _up(base: str) -> bool:
    try:
        return httpx.get(base + "/", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    sys.exit(main())
