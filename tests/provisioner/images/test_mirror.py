"""The Debian mirror offline images bootstrap from: read from apt's sources in both formats, or set
with CLAWFLEET_DEBIAN_MIRROR; no mirror at all is a clear error. Sample files only: nothing here
reads this machine's /etc/apt."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from provisioner.images.errors import ImageBuildError
from provisioner.images.mirror import (
    Source,
    debian_mirror,
    host_sources,
    parse_deb822,
    parse_one_line,
    resolve_mirror,
)

ROOT = Path(__file__).resolve().parents[3]
CODE_DIRS = ("clawfleet", "db", "web", "provisioner", "bot", "billing", "bench", "scripts", "images", ".ci")

ONE_LINE = """\
# deb http://commented.example.org/debian bookworm main
deb-src http://sources.example.org/debian bookworm main
deb http://security.example.org/debian-security bookworm-security main contrib
deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD Binary-1]/ bookworm contrib main
deb file:///srv/local-debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example.org/debian/ bookworm main non-free-firmware  # the archive
deb http://mirror.example.org/debian bookworm-updates main
"""

DEB822 = """\
# Modernized from /etc/apt/sources.list
Types: deb
URIs: http://security.example.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://sources.example.org/debian
Suites: bookworm
Components: main

Enabled: no
Types: deb
URIs: http://disabled.example.org/debian
Suites: bookworm
Components: main

types: deb deb-src
# a snapshot, kept for reference
URIs: file:///srv/local-debian
  https://mirror.example.net/debian/
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBGQf
 -----END PGP PUBLIC KEY BLOCK-----
"""

VENDORS = """\
deb https://packages.example.com/apt cloud-sdk-bookworm main
deb [signed-by=/usr/share/keyrings/nodesource.gpg] https://node.example.com/node_20.x nodistro main
deb http://archive.example.com/ubuntu jammy main restricted
deb http://mirror.example.org/debian bookworm contrib
"""


def test_one_line_entries_keep_their_fields() -> None:
    sources = parse_one_line(ONE_LINE)
    assert len(sources) == 6  # the commented-out line is no entry
    assert sources[3] == Source(types=("deb",), uris=("file:///srv/local-debian",), suites=("bookworm",),
                                components=("main",))
    assert sources[4] == Source(types=("deb",), uris=("http://mirror.example.org/debian/",), suites=("bookworm",),
                                components=("main", "non-free-firmware"))  # options and comment dropped
    assert sources[2].uris == ("cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD Binary-1]/",)
    assert sources[2].suites == ("bookworm",)


def test_the_one_line_archive_is_picked_past_sources_security_cdrom_and_file_entries() -> None:
    assert debian_mirror(parse_one_line(ONE_LINE), "bookworm") == "http://mirror.example.org/debian"


def test_deb822_paragraphs_keep_their_fields() -> None:
    security, sources, disabled, archive = parse_deb822(DEB822)
    assert security.suites == ("bookworm-security",)
    assert sources.types == ("deb-src",)
    assert not disabled.enabled
    assert archive == Source(types=("deb", "deb-src"),  # field names are case-insensitive
                             uris=("file:///srv/local-debian", "https://mirror.example.net/debian/"),
                             suites=("bookworm", "bookworm-updates"), components=("main", "contrib"))


def test_the_deb822_archive_is_picked_past_security_disabled_and_file_entries() -> None:
    assert debian_mirror(parse_deb822(DEB822), "bookworm") == "https://mirror.example.net/debian"


def test_vendor_and_other_distributions_repositories_are_no_debian_archive() -> None:
    assert debian_mirror(parse_one_line(VENDORS), "bookworm") is None  # the last one lacks main


def test_a_debian_host_of_another_release_still_names_the_archive() -> None:
    trixie = parse_one_line("deb http://mirror.example.org/debian trixie main\n")
    assert debian_mirror(trixie, "bookworm") == "http://mirror.example.org/debian"
    future = parse_one_line("deb http://mirror.example.org/debian newname main\n")
    assert debian_mirror(future, "newname") == "http://mirror.example.org/debian"  # the suite asked for counts


def test_empty_and_comment_only_files_have_no_entries() -> None:
    assert parse_one_line("") == parse_deb822("") == []
    assert parse_one_line("# nothing\n\n   \n") == parse_deb822("# nothing\n\n# at all\n") == []


def _etc_apt(tmp_path: Path, files: dict[str, str]) -> Path:
    etc_apt = tmp_path / "apt"
    (etc_apt / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (etc_apt / name).write_text(text)
    return etc_apt


def test_the_host_sources_are_read_in_apts_order(tmp_path: Path) -> None:
    etc_apt = _etc_apt(tmp_path, {
        "sources.list": "# see sources.list.d\n",
        "sources.list.d/a-vendor.list": VENDORS,
        "sources.list.d/debian.sources": DEB822,
        "sources.list.d/local.list.disabled": "deb http://ignored.example.org/debian bookworm main\n",
        "sources.list.d/z-second.list": "deb http://second.example.org/debian bookworm main\n",
    })
    uris = [source.uris[0] for source in host_sources(etc_apt)]
    assert uris == [source.uris[0] for source in [*parse_one_line(VENDORS), *parse_deb822(DEB822)]] + [
        "http://second.example.org/debian"]  # *.list.disabled is not apt's
    assert resolve_mirror(None, "bookworm", etc_apt) == "https://mirror.example.net/debian"  # debian.sources first


def test_the_setting_wins_over_the_host_sources(tmp_path: Path) -> None:
    etc_apt = _etc_apt(tmp_path, {"sources.list": ONE_LINE})
    mirror = resolve_mirror("http://127.0.0.1:3142/debian/", "bookworm", etc_apt)
    assert mirror == "http://127.0.0.1:3142/debian"


@pytest.mark.parametrize("files", [
    {},
    {"sources.list": VENDORS},
    {"sources.list.d/debian.sources": DEB822.split("types:")[0]},  # security, deb-src and disabled only
])
def test_no_mirror_at_all_says_which_setting_to_give(tmp_path: Path, files: dict[str, str]) -> None:
    etc_apt = _etc_apt(tmp_path, files)
    with pytest.raises(ImageBuildError, match="set CLAWFLEET_DEBIAN_MIRROR") as info:
        resolve_mirror(None, "bookworm", etc_apt)
    assert str(etc_apt / "sources.list") in str(info.value)


def test_no_code_names_a_debian_mirror() -> None:
    """Images take their mirror from the host or the setting; the samples in tests/ are exempt."""
    code = [path for top in CODE_DIRS for path in (ROOT / top).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts]
    code += [ROOT / name for name in ("Dockerfile", "Makefile", "compose.yaml")]
    named = [str(path.relative_to(ROOT)) for path in code
             if re.search(r"debian\.org", path.read_text(errors="replace"))]
    assert code and named == []
