"""``QA_TRUSTED_PROXIES`` parsed: its own module, so ``Settings`` checks the setting without
importing FastAPI (``qa.api.identity`` uses the networks; every ``qa`` command builds a
``Settings``, and FastAPI's import costs a third of ``qa index`` on an unchanged folder)."""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: list[str]) -> tuple[Network, ...]:
    """``QA_TRUSTED_PROXIES`` entries as networks; ValueError naming a bad one."""
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"QA_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR") from exc
    return tuple(out)
