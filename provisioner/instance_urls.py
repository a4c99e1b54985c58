"""Each instance's own address: `<subdomain>.<instance domain>` with the scheme and port of the
public URL (`http://claw-1a2b3c4d5e.localhost:8080` on a laptop, where browsers resolve
`*.localhost` to loopback; `https://claw-1a2b3c4d5e.example.com` behind an HTTPS edge).

Built here for every link (the API's `url`, the pages, the bot) and parsed here for routing
(web/instance_sites.py), so the two directions cannot disagree. The dashboard is every other
host: a user's gateway never shares the dashboard's origin, so its pages can never read the
dashboard's cookie or be framed as the dashboard.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SUBDOMAIN_CHARACTERS = frozenset(string.ascii_lowercase + string.digits + "-")
MAX_LABEL = 63  # one DNS label


@dataclass(frozen=True)
class InstanceUrls:
    public_url: str  # the dashboard's own URL (CLAWFLEET_PUBLIC_URL)
    instance_domain: str  # CLAWFLEET_INSTANCE_DOMAIN
    scheme: str = field(init=False)  # parsed once: every request to an instance host asks
    dashboard_host: str = field(init=False)  # the public URL's host name, lower case, without the port
    _port_suffix: str = field(init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.public_url)
        object.__setattr__(self, "scheme", parts.scheme)
        object.__setattr__(self, "dashboard_host", (parts.hostname or "").lower())
        object.__setattr__(self, "_port_suffix", f":{parts.port}" if parts.port is not None else "")

    def url(self, subdomain: str) -> str:
        """The instance's origin, which is also the link to it."""
        return f"{self.scheme}://{self.host(subdomain)}"

    def host(self, subdomain: str) -> str:
        """What a browser sends as Host to reach the instance."""
        return f"{subdomain}.{self.instance_domain.lower()}{self._port_suffix}"

    def subdomain_of(self, host: str) -> str | None:
        """The subdomain a request's Host names, or None when it names the dashboard (or
        anything that is not one label under the instance domain). The port is not compared:
        behind an edge the Host carries the public port, on a laptop the platform's own."""
        name = host.strip().lower()
        if name.startswith("["):  # an IPv6 literal: never an instance
            return None
        name = (name.rsplit(":", 1)[0] if ":" in name else name).rstrip(".")  # "example.com." is example.com
        suffix = "." + self.instance_domain.lower().strip(".")
        if not name.endswith(suffix):
            return None
        label = name[: -len(suffix)]
        return label if _valid_label(label) else None


def valid_domain(domain: str) -> bool:
    """A DNS name of one label or more (`localhost`, `claws.example.com`)."""
    labels = domain.strip().strip(".").lower().split(".")
    return len(domain) <= 253 and all(_valid_label(label) for label in labels)


def _valid_label(label: str) -> bool:
    return (0 < len(label) <= MAX_LABEL and SUBDOMAIN_CHARACTERS.issuperset(label)
            and not label.startswith("-") and not label.endswith("-"))
