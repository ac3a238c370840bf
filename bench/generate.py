"""Deterministic synthetic proxy logs for the benchmark.

The same (format, size, seed) always gives the same bytes, so runs on
different days and machines read identical input. The traffic mix is browsers,
operating-system and SDK clients, and about 0.05% rclone user agents; rclone
lines upload to cloud storage, as an exfiltration would.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

FORMATS = ("squid", "combined", "zeek")
RCLONE_SHARE = 0.0005
START = datetime(2026, 11, 2, 0, 0, tzinfo=timezone.utc).timestamp()

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
]
API_CLIENTS = [
    "curl/8.5.0",
    "python-requests/2.32.3",
    "Go-http-client/1.1",
    "aws-sdk-go-v2/1.30.4 os/linux lang/go#1.22.5",
    "aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.1 md/arch#x86_64",
    "okhttp/4.12.0",
    "Microsoft-CryptoAPI/10.0",
    "Windows-Update-Agent/10.0.10011.16384 Client-Protocol/2.71",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
    "restic/0.17.1 (linux/amd64)",
]
RCLONE = ["rclone/v1.68.2", "rclone/v1.66.0", "rclone/v1.69.0-beta.8342.a1b2c3d", "RClone/V1.65.2"]
HOSTS = [
    "www.example.com", "api.example.io", "cdn.example.net", "login.example.org", "updates.example.com",
    "mail.example.com", "static.example.net", "news.example.org", "docs.example.io", "img.example.com",
]
STORAGE_HOSTS = ["s3.eu-central-1.example-cloud.test", "blob.core.example-cloud.test", "drive.example-storage.test"]
PATHS = [
    "/", "/index.html", "/news/today", "/api/v1/items?page=2", "/img/logo.png", "/static/app.js",
    "/login?next=%2Fhome", "/v2/updates/manifest.json", "/search?q=quarterly+report", "/favicon.ico",
]
USERS = ["-"] * 6 + ["alice", "bob", "carol", "svc_backup"]


@dataclass(frozen=True)
class Request:
    """One synthetic request, before it is written in a log format."""

    time: float
    client: str
    port: int
    user: str
    method: str
    host: str
    path: str
    status: int
    sent: int
    received: int
    agent: str
    server: str


def requests(seed: int) -> Iterator[Request]:
    """Yield an endless, reproducible stream of requests."""
    rng = random.Random(seed)
    clients = [f"10.20.{rng.randrange(1, 40)}.{rng.randrange(2, 250)}" for _ in range(400)]
    time = START
    while True:
        time += rng.expovariate(20.0)
        roll = rng.random()
        if roll < RCLONE_SHARE:
            agent = rng.choice(RCLONE)
            method = "PUT"
            host = rng.choice(STORAGE_HOSTS)
            path = f"/archive/{rng.randrange(10**6):06d}.bin"
            sent = rng.randrange(1 << 20, 64 << 20)
            received = rng.randrange(200, 800)
        else:
            agent = rng.choice(BROWSERS) if roll < 0.7 else rng.choice(API_CLIENTS)
            method = "POST" if rng.random() < 0.08 else "GET"
            host = rng.choice(HOSTS)
            path = rng.choice(PATHS)
            sent = rng.randrange(300, 4000)
            received = rng.randrange(200, 400_000)
        yield Request(
            time=time,
            client=rng.choice(clients),
            port=rng.randrange(1024, 65535),
            user=rng.choice(USERS),
            method=method,
            host=host,
            path=path,
            status=rng.choice((200, 200, 200, 200, 204, 301, 304, 404)),
            sent=sent,
            received=received,
            agent=agent,
            server=f"198.51.100.{rng.randrange(1, 255)}",
        )


def squid_line(request: Request) -> str:
    """Squid native format with ``log_mime_hdrs on``, so the User-Agent is in the log."""
    headers = f"[Host: {request.host}\\r\\nUser-Agent: {request.agent}\\r\\nAccept: */*\\r\\n]"
    reply = f"[HTTP/1.1 {request.status} OK\\r\\nContent-Type: text/html\\r\\n]"
    return (
        f"{request.time:.3f} {request.port % 5000:6d} {request.client} TCP_MISS/{request.status} {request.received} "
        f"{request.method} http://{request.host}{request.path} {request.user} HIER_DIRECT/{request.server} text/html "
        f"{headers} {reply}\n"
    )


def combined_line(request: Request) -> str:
    stamp = datetime.fromtimestamp(request.time, timezone.utc).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return (
        f'{request.client} - {request.user} [{stamp}] "{request.method} http://{request.host}{request.path} HTTP/1.1" '
        f'{request.status} {request.received} "-" "{request.agent}"\n'
    )


ZEEK_HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\thttp\n"
    "#open\t2026-11-02-00-00-00\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\ttrans_depth\tmethod\thost\turi\treferrer\t"
    "version\tuser_agent\torigin\trequest_body_len\tresponse_body_len\tstatus_code\tstatus_msg\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tcount\tstring\tstring\tstring\tstring\tstring\tstring\t"
    "string\tcount\tcount\tcount\tstring\n"
)


def zeek_line(request: Request) -> str:
    uid = f"C{(int(request.time * 1e6) * 65537 + request.port) % (1 << 60):015x}"
    return (
        f"{request.time:.6f}\t{uid}\t{request.client}\t{request.port}\t{request.server}\t80\t1\t{request.method}\t"
        f"{request.host}\t{request.path}\t-\t1.1\t{request.agent}\t-\t{request.sent}\t{request.received}\t"
        f"{request.status}\tOK\n"
    )


WRITERS: dict[str, Callable[[Request], str]] = {"squid": squid_line, "combined": combined_line, "zeek": zeek_line}
HEADERS = {"squid": "", "combined": "", "zeek": ZEEK_HEADER}


def generate(fmt: str, size: int, path: Path, seed: int = 1) -> int:
    """Write about ``size`` bytes of ``fmt`` log lines to ``path``; return the number of events written.

    The file stops at the first whole line past ``size``.
    """
    writer = WRITERS[fmt]
    stream = requests(seed)
    written = 0
    events = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        header = HEADERS[fmt]
        out.write(header)
        written += len(header)
        while written < size:
            chunk = [writer(next(stream)) for _ in range(2000)]
            text = "".join(chunk)
            out.write(text)
            written += len(text.encode("utf-8"))
            events += len(chunk)
    return events
