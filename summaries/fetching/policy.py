"""The address policy: which addresses a fetch may connect to, and its limits.

An address is allowed when it is in ``FetchPolicy.allowed_networks`` or is
public unicast; everything else (loopback, private, link-local and cloud
metadata, multicast, reserved, documentation, and IPv6 forms that tunnel to
any of those) is blocked. A name is resolved once and EVERY address it has is
checked; the caller connects to exactly those addresses, so DNS rebinding
cannot swap them. Any port is allowed: the addresses, not the ports, keep us
out of our network.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Final

from summaries.core.errors import ErrorCode, JobError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SockAddr = tuple[socket.AddressFamily, tuple[str, int]]

# Written out rather than relying only on ipaddress's is_* flags, whose tables
# change between Python patch releases. Both are consulted (see is_blocked).
_BLOCKED_NETWORKS: Final[tuple[IPNetwork, ...]] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches localhost on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata 169.254.169.254
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes broadcast
        "::/96",  # unspecified, loopback, deprecated IPv4-compatible
        "64:ff9b:1::/48",  # local-use NAT64: embedding depends on a local prefix length
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments, includes Teredo 2001::/32
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4: tunnels to an embedded IPv4 address
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local
        "ff00::/8",  # multicast
    )
)
_NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one fetch. ``allowed_networks`` overrides the blocklist."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    total_timeout: float = 15.0  # whole fetch incl. redirects and decoding, wall clock
    connect_timeout: float = 5.0
    max_bytes: int = 5_000_000  # DECODED bytes (gzip bombs); also caps the decoded text
    # Documents (PDF, DOCX, text, Markdown) are taken too, up to this many
    # decoded bytes; 0 (the default): HTML only. The caller reads them.
    max_document_bytes: int = 0
    max_redirects: int = 5
    user_agent: str = "SmartCache/1.0 (+summary bot)"

    @classmethod
    def parse_networks(cls, value: str) -> tuple[IPNetwork, ...]:
        """Parse ``"10.0.0.0/8, 127.0.0.2/32"``; raise ValueError on a bad CIDR.

        Host bits must be zero (``10.0.0.1/8`` is an error) so typos are caught.
        """
        networks: list[IPNetwork] = []
        for part in filter(None, (p.strip() for p in value.split(","))):
            try:
                networks.append(ipaddress.ip_network(part))
            except ValueError as exc:
                raise ValueError(f"invalid network {part!r} in allowed networks: {exc}") from None
        return tuple(networks)


def literal_ip(host: str) -> IPAddress | None:
    """Return the address if ``host`` is an IP literal in any form libc accepts."""
    if ":" in host:
        return ipaddress.IPv6Address(host)
    try:
        # inet_aton, like getaddrinfo, accepts 2130706433, 0177.0.0.1, 0x7f.1, 127.1.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def is_blocked(addr: IPAddress, allowed: tuple[IPNetwork, ...]) -> bool:
    """True unless ``addr`` is allowed explicitly or is a public unicast address."""
    if any(addr in net for net in allowed):
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        # Python < 3.13 does not look inside these, e.g. ::ffff:127.0.0.1 is
        # not "loopback"; judge the IPv4 address the packets would reach.
        if addr.ipv4_mapped is not None:
            return is_blocked(addr.ipv4_mapped, allowed)
        if addr in _NAT64_WELL_KNOWN:
            return is_blocked(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF), allowed)
        if addr.scope_id:
            return True
    return (
        any(addr in net for net in _BLOCKED_NETWORKS)
        or not addr.is_global
        or addr.is_multicast
        or addr.is_private
        or addr.is_reserved
    )


def resolve_allowed(host: str, port: int, policy: FetchPolicy) -> list[SockAddr]:
    """Resolve once and check EVERY address; one blocked address refuses the host.

    Refusing the host (rather than skipping the bad address) stops a name that
    mixes public and internal records from reaching inside on a retry.
    getaddrinfo cannot be interrupted: a lookup is bounded by the resolver's
    own timeout, and the caller checks its deadline right after.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        # EAI_AGAIN is a resolver hiccup; anything else means the name does not exist.
        again = exc.errno == socket.EAI_AGAIN
        raise JobError(
            f"could not resolve {host}" if again else f"unknown host {host}",
            code=ErrorCode.FETCH_FAILED,
            transient=again,
        ) from None
    checked: list[SockAddr] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        addr = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if is_blocked(addr, policy.allowed_networks):
            raise JobError(f"{host} resolves to a blocked address ({addr})",
                           code=ErrorCode.BLOCKED_DESTINATION)
        checked.append((family, (str(sockaddr[0]), port)))
    if not checked:
        raise JobError(f"{host} has no IPv4/IPv6 address", code=ErrorCode.FETCH_FAILED)
    return checked
