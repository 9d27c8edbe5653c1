"""Who may send ADT messages: the source network of the connection (``adt_allowed_networks``), the client
certificate of a mutual-TLS connection (``adt_tls_client_ca``, ``adt_tls_client_names``) and the sending
application / facility the message names (``adt_allowed_senders``, MSH-3 / MSH-4).

The network and the certificate are checked before any message is read; the sender of each message after its MSH is
read (a refused message is answered AR 103: MSH-3 / MSH-4 are coded with the user-defined tables 0361 / 0362, and the
value is not in Areya's)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from areya.integrations.hl7.errors import TABLE_VALUE_NOT_FOUND, AdtError
from areya.integrations.hl7.messages import Header

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK = ("127.0.0.0/8", "::1/128")


class SenderRefused(AdtError):
    """A message whose MSH-3 / MSH-4 is not in ``adt_allowed_senders`` (AR 103; audited with the peer address)."""


@dataclass(frozen=True)
class Origin:
    """Where a message came from as the listener saw it (never as the message claims)."""

    peer: str  # "host:port" of the TCP connection
    client_cert: str = ""  # the name of the client certificate (mutual TLS); "" without one

    @property
    def host(self) -> str:
        host = self.peer.rsplit(":", 1)[0]
        return host[1:-1] if host.startswith("[") else host

    def context(self) -> tuple[tuple[str, Any], ...]:
        """Recorded with every audit row written for this connection."""
        return (("peer", self.peer),) + ((("client_cert", self.client_cert),) if self.client_cert else ())

    @classmethod
    def of(cls, peername: Any, client_cert: str = "") -> Origin:
        if isinstance(peername, tuple) and len(peername) >= 2:
            host, port = str(peername[0]), peername[1]
            return cls(f"[{host}]:{port}" if ":" in host else f"{host}:{port}", client_cert)
        return cls(str(peername or "?"), client_cert)


def parse_networks(items: Iterable[str]) -> tuple[IpNetwork, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def parse_sender(item: str) -> tuple[str, str]:
    """``"APPLICATION^FACILITY"`` (``*`` = any) -> (application, facility); ValueError if malformed."""
    parts = [part.strip() for part in item.split("^")]
    if len(parts) != 2 or not all(parts) or parts == ["*", "*"]:
        raise ValueError(f"{item!r} must be APPLICATION^FACILITY (MSH-3^MSH-4; * = any, not both)")
    if any(ch in item for ch in "|~\\&,"):
        raise ValueError(f"{item!r} must not contain HL7 delimiters (| ~ \\ &) or commas")
    return parts[0], parts[1]


def certificate_names(peercert: dict[str, Any] | None) -> tuple[str, ...]:
    """The subject common names and DNS subject alternative names of a verified peer certificate."""
    if not peercert:
        return ()
    names = [value for rdn in peercert.get("subject", ()) for key, value in rdn if key == "commonName"]
    names += [value for kind, value in peercert.get("subjectAltName", ()) if kind == "DNS"]
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class AccessPolicy:
    """The allow-lists; the defaults admit loopback connections from any sender."""

    networks: tuple[IpNetwork, ...] = parse_networks(LOOPBACK)
    senders: tuple[tuple[str, str], ...] = ()  # empty: any sending application / facility
    client_names: tuple[str, ...] = ()  # empty: any certificate the client CA signed

    @classmethod
    def from_lists(
        cls, networks: Iterable[str] = LOOPBACK, senders: Iterable[str] = (), client_names: Iterable[str] = ()
    ) -> AccessPolicy:
        return cls(parse_networks(networks), tuple(parse_sender(s) for s in senders), tuple(client_names))

    def network_refusal(self, host: str) -> str | None:
        """Why a connection from ``host`` is refused (None: it is allowed)."""
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return f"peer address {host!r} is not an IP address"
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.networks):
            return None
        return f"{address} is not in adt_allowed_networks"

    def certificate_refusal(self, peercert: dict[str, Any] | None) -> str | None:
        """Why a verified client certificate is refused (None: allowed, or no names are configured)."""
        if not self.client_names:
            return None
        names = certificate_names(peercert)
        if any(name in self.client_names for name in names):
            return None
        return f"client certificate {', '.join(names) or '(no name)'} is not in adt_tls_client_names"

    def check_sender(self, header: Header) -> None:
        """AR 103 (raised as :class:`SenderRefused`) if MSH-3 / MSH-4 is not an allowed sender."""
        if not self.senders:
            return
        application, facility = header.sending_application, header.sending_facility
        for allowed_application, allowed_facility in self.senders:
            if allowed_application in ("*", application) and allowed_facility in ("*", facility):
                return
        facility_known = any(f in ("*", facility) for _, f in self.senders)
        raise SenderRefused(
            "AR",
            TABLE_VALUE_NOT_FOUND,
            f"sender {application}^{facility} (MSH-3^MSH-4) is not in adt_allowed_senders",
            "MSH^1^3" if facility_known else "MSH^1^4",
        )
