"""Exact CIDR matching on IP address text, as regular expressions that any SQL dialect can run.

pySigma's fallback for backends without a CIDR type turns ``10.0.0.0/8`` into
the wildcard ``10.*``, which is exact only for dotted IPv4 text and cannot
express IPv6 at all. Here an IPv4 network becomes a regular expression that
matches exactly the dotted-quad strings of its addresses, and an IPv6 network
becomes one over the address written as 32 lower-case hex digits (the backend
computes that form in SQL).

An address matches a network on the same terms as Python's ``ipaddress``: an
IPv4 address never matches an IPv6 network and the other way round, and IPv4
octets with leading zeros are not addresses.
"""

from __future__ import annotations

import ipaddress

# One IPv4 octet in decimal without leading zeros: 0 to 255.
IPV4_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"

# The characters of IPv6 text: hex groups, colons, and an IPv4 tail such as ::ffff:10.0.0.5.
IPV6_TEXT = r"[0-9a-f:]*:[0-9a-f:.]*"

_HEX_DIGITS = "0123456789abcdef"


def decimal_range_regex(low: int, high: int) -> str:
    """Return a regular expression for the decimal numbers ``low`` to ``high`` (0 to 255), without leading zeros."""
    if low == 0 and high == 255:
        return IPV4_OCTET
    if low == high:
        return str(low)
    return "(?:" + "|".join(str(number) for number in range(low, high + 1)) + ")"


def ipv4_network_regex(network: ipaddress.IPv4Network) -> str:
    """Return a regular expression that fully matches the dotted-quad text of each address in ``network``."""
    first = network.network_address.packed
    last = network.broadcast_address.packed
    octets = [decimal_range_regex(low, high) for low, high in zip(first, last)]
    return r"\.".join(octets)


def ipv6_network_regex(network: ipaddress.IPv6Network) -> str:
    """Return a regular expression that fully matches each address of ``network`` as 32 lower-case hex digits."""
    first = f"{int(network.network_address):032x}"
    last = f"{int(network.broadcast_address):032x}"
    parts = []
    for low, high in zip(first, last):
        if low == high:
            parts.append(low)
        elif low == "0" and high == "f":
            parts.append("[0-9a-f]")
        else:
            # A partial nibble: the prefix ends inside this hex digit.
            digits = _HEX_DIGITS[_HEX_DIGITS.index(low) : _HEX_DIGITS.index(high) + 1]
            parts.append(f"[{digits}]")
    return "".join(parts)
