"""Host identity of proxy clients: host names, and the addresses that process logs and asset lists tie to them.

A proxy log names the client by address (``SrcIpAddr``) and sometimes by name
(``SrcHostname``); a process log names the host (``Computer``, ``DeviceName``).
Host names are compared case-insensitively by their first label, so
``WS01.corp.example.com`` and ``ws01`` are the same host.
"""

from __future__ import annotations

import csv
import ipaddress
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from proxyhunt.process.event import HostAddress

# Header names accepted in an asset CSV for the host name and the address columns.
_HOST_COLUMNS = ("hostname", "host", "devicename", "computer", "dvchostname", "name")
_ADDRESS_COLUMNS = ("ip", "ipaddress", "ip_address", "address", "srcipaddr", "dvcipaddr")


class AssetFileError(ValueError):
    """An asset CSV that cannot be used; the message names the file, the line and the fix."""


def host_key(name: str | None) -> str | None:
    """Return the comparison key of a host name: its first label, lower-cased; an address stays whole."""
    if not name:
        return None
    text = name.strip().rstrip(".").lower()
    if "\\" in text:
        # DOMAIN\HOST, as some exports write the computer.
        text = text.rsplit("\\", 1)[-1]
    if not text:
        return None
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        return text.split(".", 1)[0]


@dataclass(frozen=True)
class HostLookup:
    """The hosts that a proxy event's client may be, and how each was found."""

    keys: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        return "; ".join(f"{key} by {how}" for key, how in self.keys.items()) or "no host"


@dataclass
class HostDirectory:
    """Addresses tied to hosts, from process logs (Sysmon 3, ASIM ``DvcIpAddr``) and asset CSV files."""

    by_address: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, hostname: str, address: str, source: str) -> None:
        key = host_key(hostname)
        normalized = _normalize_address(address)
        if key and normalized:
            self.by_address[normalized].setdefault(key, source)

    def add_addresses(self, addresses: list[HostAddress]) -> None:
        for address in addresses:
            self.add(address.hostname, address.ip, address.source)

    def lookup(self, src_hostname: str | None, src_ip: str | None) -> HostLookup:
        """Return the hosts a proxy client may be: by ``SrcHostname``, and by ``SrcIpAddr`` through the addresses."""
        keys: dict[str, str] = {}
        key = host_key(src_hostname)
        if key:
            keys[key] = f"SrcHostname {src_hostname}"
        address = _normalize_address(src_ip)
        if address:
            for host, source in self.by_address.get(address, {}).items():
                keys.setdefault(host, f"SrcIpAddr {src_ip} through {source}")
        return HostLookup(keys)


def load_assets(path: str, directory: HostDirectory) -> int:
    """Add the host name and address pairs of an asset CSV to ``directory``; return how many were added.

    The CSV needs a header with a host name column (``hostname``, ``host``,
    ``DeviceName``...) and an address column (``ip``, ``IPAddress``...).
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise AssetFileError(f"{path}: asset file not found; check the path given to --assets") from None
    except (OSError, UnicodeDecodeError) as error:
        raise AssetFileError(f"{path}: cannot be read ({error}); give a UTF-8 CSV file to --assets") from None

    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if not header:
        raise AssetFileError(f"{path}: the asset file is empty; it needs a header such as 'hostname,ip'")
    names = [cell.strip().lower() for cell in header]
    host_column = next((names.index(name) for name in _HOST_COLUMNS if name in names), None)
    address_column = next((names.index(name) for name in _ADDRESS_COLUMNS if name in names), None)
    if host_column is None or address_column is None:
        raise AssetFileError(
            f"{path}:1: the header needs a host name column and an address column, such as 'hostname,ip'; "
            f"found {', '.join(header)}"
        )

    added = 0
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(host_column, address_column):
            raise AssetFileError(f"{path}:{line}: {len(row)} fields where the header has {len(header)}")
        hostname, address = row[host_column].strip(), row[address_column].strip()
        if not _normalize_address(address):
            raise AssetFileError(f"{path}:{line}: '{address}' is not an IP address; fix the address column")
        directory.add(hostname, address, f"asset file {path}:{line}")
        added += 1
    return added


def _normalize_address(address: str | None) -> str | None:
    if not address:
        return None
    try:
        return str(ipaddress.ip_address(address.strip().strip("[]")))
    except ValueError:
        return None
