"""The Debian mirror images are bootstrapped from: CLAWFLEET_DEBIAN_MIRROR, else the one this
host's own apt uses.

No address is written into the code: a machine that installs Debian packages already has a mirror
it may reach (a nearby one, a caching proxy, a snapshot), and its images should use that one too.
apt's sources come in two formats, both read here: one-line entries (`deb [options] URI SUITE
COMPONENT...`, in sources.list and sources.list.d/*.list) and deb822 paragraphs (sources.list.d/
*.sources). The parsers and the choice are pure functions; only host_sources() reads files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from provisioner.images.errors import ImageBuildError

ETC_APT = Path("/etc/apt")
# Debian's release names and aliases: an entry for one of them is Debian's own archive (not
# Ubuntu's, not a vendor's repository that happens to have a `main` component)
DEBIAN_SUITES = frozenset({"buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
                           "oldoldstable", "oldstable", "stable", "testing", "unstable"})
# `deb [options] URI SUITE COMPONENT...`; a cdrom: URI carries its disc's name in brackets, spaces and all
_ONE_LINE = re.compile(r"^(?P<type>\S+)\s+(?:\[[^\]]*\]\s*)?(?P<uri>[^\s\[]*\[[^\]]*\]\S*|\S+)"
                       r"\s+(?P<suite>\S+)(?P<rest>.*)$")


@dataclass(frozen=True)
class Source:
    """One entry of apt's sources, either format."""

    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    enabled: bool = True


def parse_one_line(text: str) -> list[Source]:
    """The entries of a sources.list (or *.list) file; lines that are not entries are skipped."""
    sources = []
    for line in text.splitlines():
        match = _ONE_LINE.match(line.split("#", 1)[0].strip())
        if match:
            sources.append(Source(types=(match["type"],), uris=(match["uri"],), suites=(match["suite"],),
                                  components=tuple(match["rest"].split())))
    return sources


def parse_deb822(text: str) -> list[Source]:
    """The entries of a *.sources file: paragraphs of `Field: value` separated by blank lines."""
    sources = []
    for paragraph in _paragraphs(text):
        def words(field: str) -> tuple[str, ...]:
            return tuple(paragraph.get(field.lower(), "").split())

        sources.append(Source(types=words("Types"), uris=words("URIs"), suites=words("Suites"),
                              components=words("Components"),
                              enabled=paragraph.get("enabled", "yes").strip().lower() != "no"))
    return sources


def _paragraphs(text: str) -> list[dict[str, str]]:
    paragraphs: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    field = None
    for line in [*text.splitlines(), ""]:
        if line.startswith("#"):
            continue  # a comment, even inside a paragraph
        if not line.strip():
            if fields:
                paragraphs.append(fields)
            fields, field = {}, None
        elif line[0] in " \t":
            if field is not None:  # a continuation of the field above
                fields[field] += " " + line.strip()
        else:
            name, sep, value = line.partition(":")
            field = name.strip().lower() if sep else None
            if field is not None:
                fields[field] = value.strip()
    return paragraphs


def debian_mirror(sources: Iterable[Source], suite: str) -> str | None:
    """The first binary (`deb`) entry of Debian's archive with `main`: an http(s) URI whose suites
    name a Debian release itself. Security suites (`bookworm-security`, `bookworm/updates`),
    `-updates` and the like, `deb-src`, disabled entries and file:/cdrom: URIs are passed over."""
    releases = DEBIAN_SUITES | {suite}
    for source in sources:
        if not source.enabled or "deb" not in source.types or "main" not in source.components:
            continue
        if not any(name in releases for name in source.suites):
            continue
        for uri in source.uris:
            if uri.startswith(("http://", "https://")):
                return uri.rstrip("/")
    return None


def host_sources(etc_apt: Path = ETC_APT) -> list[Source]:
    """apt's sources on this host, in apt's order: sources.list, then sources.list.d by name."""
    parts = etc_apt / "sources.list.d"
    files = [etc_apt / "sources.list"]
    if parts.is_dir():
        files += sorted(path for path in parts.iterdir() if path.suffix in (".list", ".sources"))
    sources: list[Source] = []
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue  # missing or unreadable: apt would not use it either
        sources += parse_deb822(text) if path.suffix == ".sources" else parse_one_line(text)
    return sources


def resolve_mirror(configured: str | None, suite: str, etc_apt: Path = ETC_APT) -> str:
    """The mirror to bootstrap `suite` from: `configured` (CLAWFLEET_DEBIAN_MIRROR) when given,
    else the host's own; neither raises, saying what to set."""
    if configured:
        return configured.rstrip("/")
    found = debian_mirror(host_sources(etc_apt), suite)
    if found is None:
        raise ImageBuildError(
            f"no Debian mirror to bootstrap {suite} from: this host's apt sources ({etc_apt}/sources.list, "
            f"{etc_apt}/sources.list.d/*.list and *.sources) name no http(s) Debian archive with `main`; "
            "set CLAWFLEET_DEBIAN_MIRROR to a Debian mirror's URL (http:// or https://)")
    return found
