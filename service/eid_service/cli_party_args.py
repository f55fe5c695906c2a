"""`eid-server party`'s arguments: actions, options, their types and its
help with examples (cli_parties.py runs the actions)."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from pathlib import Path

from eid_service.domain.errors import InvalidInput
from eid_service.domain.party import (
    DEFAULT_CITIZEN_RATE_PER_MINUTE,
    DEFAULT_KEY_OVERLAP,
    DEFAULT_MODES,
    DEFAULT_RATE_PER_MINUTE,
    RECENT_KEY_ROTATION,
    VerifyMode,
    check_key_overlap,
    parse_grants,
    parse_modes,
    parse_scopes,
)
from eid_service.security.tls import certificate_sha256
from eid_service.use_cases.party_cache import TTL_SECONDS

DEFAULT_SCOPES = "basic,id_number"
MODES_BY_DEFAULT = ",".join(sorted(m.value for m in DEFAULT_MODES))
_TTL = f"{TTL_SECONDS:g} s"
_RECENT = f"{int(RECENT_KEY_ROTATION.total_seconds()) // 60} minutes"
_RAW = argparse.RawDescriptionHelpFormatter

PARTY_EXAMPLES = f"""\
examples:
  eid-server party create --name "Demo Bank" --contact "it-security@demobank.vn"
                                  onboard a party; prints its API key once (last line)
  eid-server party create --name "Clinic" --scopes basic --modes qr_share,one_time_code \\
      --rate-limit 120 --citizen-rate-limit 5
  eid-server party create --name "Tax portal" --modes password,qr_share
                                  password verification is for trusted services only
  eid-server party list           id, name, status, scopes, modes, limits, created
  eid-server party show rp_3f2a9c0d1e4b5a67
  eid-server party suspend rp_3f2a9c0d1e4b5a67    its calls get PERMISSION_DENIED
  eid-server party resume rp_3f2a9c0d1e4b5a67     (PARTY_SUSPENDED) until resumed
  eid-server party set-limits rp_3f2a9c0d1e4b5a67 --rate-limit 1200 --citizen-rate-limit 20
                                  calls a minute (whole party, about one citizen)
  eid-server party set-scopes rp_3f2a9c0d1e4b5a67 --scopes basic,id_number,contact
                                  what it may read from now on (here: plus phone, email)
  eid-server party rotate-key rp_3f2a9c0d1e4b5a67 --overlap 7d
                                  a new key; the old one works 7 more days (0 for a leak)
  eid-server party rotate-key rp_3f2a9c0d1e4b5a67 --overlap 0 --force
                                  refused without --force if a rotation made the current
                                  key less than {_RECENT} ago (another operator's, maybe
                                  already handed to the party): that key stops too
  eid-server party delete rp_3f2a9c0d1e4b5a67 --yes
  eid-server party webhook rp_3f2a9c0d1e4b5a67 --url https://bank.example/eid/events
                                  signed status events (account locked, unlocked,
                                  deactivated) of citizens it verified go there
  eid-server party webhook rp_3f2a9c0d1e4b5a67           show it (--clear: remove it)
  eid-server party client-cert rp_3f2a9c0d1e4b5a67 --client-cert bank.crt
                                  its calls must come with that certificate over
                                  mutual TLS (EID_MTLS_LISTEN); or give the SHA-256
                                  with --client-cert-sha256; --clear unbinds it

scopes: basic (full_name, birth_date, gender, nationality), id_number (personal_id),
contact (phone_number, email; never by default), or those attribute names themselves;
biometric_match (biometric Verify of level-2 accounts; releases nothing, never
by default); documents.driving_licence, documents.vehicle_registration,
documents.health_insurance, documents.social_insurance, documents.tax_code (the
citizen's linked documents of that type; never by default).
modes: password, one_time_code, approval, demographic, qr_share
(default: all but password). Servers see a change within {_TTL}.
"""

_DURATION = re.compile(r"(\d{1,7})([smhd]?)")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class _Scopes(argparse.Action):
    """--scopes: the attributes it names (args.scopes) and the grants, such
    as biometric_match (args.grants)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        text = str(values)
        try:
            setattr(namespace, self.dest, parse_scopes(text))
        except InvalidInput as bad:
            raise argparse.ArgumentError(self, bad.message) from None
        namespace.grants = parse_grants(text)


def _modes(text: str) -> frozenset[VerifyMode]:
    try:
        return parse_modes(text)
    except InvalidInput as bad:
        raise argparse.ArgumentTypeError(bad.message) from None


_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


# A PEM certificate (a chain, even) is a few KB: more is the wrong file, and
# reading it whole (/dev/zero) took memory until the process was killed.
MAX_CERT_FILE_BYTES = 1 << 20


def client_cert_file(text: str) -> bytes:
    """--client-cert FILE: the SHA-256 of the PEM certificate in it."""
    try:
        with Path(text).open("rb") as file:
            pem = file.read(MAX_CERT_FILE_BYTES + 1)
        if len(pem) > MAX_CERT_FILE_BYTES:
            raise argparse.ArgumentTypeError(f"{text} is over 1 MiB: not a certificate file")
        return certificate_sha256(pem)
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read {text} ({error.strerror})") from None
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text} holds no PEM certificate") from None


def client_cert_sha256(text: str) -> bytes:
    """--client-cert-sha256: 64 hex digits, colons allowed, as
    `openssl x509 -noout -fingerprint -sha256` prints them (its
    "sha256 Fingerprint=" prefix too)."""
    digits = re.sub(r"[\s:]", "", text.rpartition("=")[2]).lower()
    if _HEX_SHA256.fullmatch(digits) is None:
        raise argparse.ArgumentTypeError(
            "a SHA-256 fingerprint: 64 hex digits, colons allowed (AB:CD:...)"
        )
    return bytes.fromhex(digits)


def _certificate_options(parser: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--client-cert",
        type=client_cert_file,
        dest="client_cert",
        metavar="FILE",
        help="bind it to this PEM client certificate: its calls must come with it (mutual TLS)",
    )
    group.add_argument(
        "--client-cert-sha256",
        type=client_cert_sha256,
        dest="client_cert",
        metavar="HEX",
        help="... or to the certificate with this SHA-256 fingerprint",
    )
    return group


def parse_overlap(text: str) -> timedelta:
    """30m, 24h, 7d (or 0): how long a rotated-out key keeps working."""
    found = _DURATION.fullmatch(text.strip().lower())
    if found is None or (found.group(2) == "" and found.group(1) != "0"):
        raise argparse.ArgumentTypeError("a duration such as 30m, 24h or 7d (0: at once)")
    overlap = timedelta(**{_UNIT[found.group(2) or "s"]: int(found.group(1))})
    try:
        return check_key_overlap(overlap)
    except InvalidInput as bad:
        raise argparse.ArgumentTypeError(bad.message) from None


def add_party_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def action(name: str, text: str) -> argparse.ArgumentParser:
        return actions.add_parser(name, help=text, epilog=PARTY_EXAMPLES, formatter_class=_RAW)

    party = commands.add_parser(
        "party",
        help="administer relying parties (create, list, show, suspend, rotate-key, ...)",
        description="Relying parties: the third-party systems that verify citizens.",
        epilog=PARTY_EXAMPLES,
        formatter_class=_RAW,
    )
    actions = party.add_subparsers(dest="party_command", required=True, metavar="ACTION")
    create = action("create", "onboard a relying party; prints its API key once")
    create.add_argument("--name", required=True, help="display name, e.g. 'Demo Bank'")
    create.add_argument("--contact", default="", help="who runs it: a team's email or phone")
    create.add_argument(
        "--scopes",
        action=_Scopes,
        default=parse_scopes(DEFAULT_SCOPES),
        help=f"what it may read: scopes or attribute names (default {DEFAULT_SCOPES});"
        " biometric_match allows biometric Verify; documents.tax_code and the other"
        " documents.* scopes release linked documents",
    )
    create.set_defaults(grants=frozenset())
    create.add_argument(
        "--modes",
        type=_modes,
        default=DEFAULT_MODES,
        help=f"Verify modes it may use (default {MODES_BY_DEFAULT}; add password explicitly)",
    )
    create.add_argument(
        "--rate-limit",
        type=int,
        default=DEFAULT_RATE_PER_MINUTE,
        metavar="N",
        help=f"Verify calls a minute, whole party (default {DEFAULT_RATE_PER_MINUTE})",
    )
    create.add_argument(
        "--citizen-rate-limit",
        type=int,
        default=DEFAULT_CITIZEN_RATE_PER_MINUTE,
        metavar="N",
        help=f"... about one citizen (default {DEFAULT_CITIZEN_RATE_PER_MINUTE})",
    )
    _certificate_options(create)
    action("list", "list parties: id, name, status, scopes, modes, limits, created")
    for name, text in (
        ("show", "show one party, with its contact and key rotation"),
        ("suspend", f"refuse its calls (PERMISSION_DENIED) within {_TTL}, until resumed"),
        ("resume", "serve a suspended party again"),
    ):
        action(name, text).add_argument("party_id", metavar="PARTY_ID", help="rp_… as listed")
    limits = action("set-limits", "change a party's rate limits (Verify and RequestOtp calls)")
    limits.add_argument("party_id", metavar="PARTY_ID", help="rp_… as listed")
    limits.add_argument(
        "--rate-limit", type=int, metavar="N", help="calls a minute, whole party (1 to 100000)"
    )
    limits.add_argument(
        "--citizen-rate-limit",
        type=int,
        metavar="N",
        help="... about one citizen (1 to the party's limit)",
    )
    scopes = action("set-scopes", "change what a party may read (grant or take away contact, ...)")
    scopes.add_argument("party_id", metavar="PARTY_ID", help="rp_… as listed")
    scopes.add_argument(
        "--scopes",
        action=_Scopes,
        required=True,
        help="what it may read from now on: scopes or attribute names, e.g. basic,contact"
        " (and biometric_match, to allow biometric Verify)",
    )
    scopes.set_defaults(grants=frozenset())
    delete = action("delete", "delete a party for good: its keys stop working")
    delete.add_argument("party_id", metavar="PARTY_ID", help="rp_… as listed")
    delete.add_argument("--yes", action="store_true", help="do not ask (needed without a TTY)")
    webhook = action("webhook", "show, set (--url) or remove (--clear) its status webhook")
    webhook.add_argument("party_id", metavar="PARTY_ID", help="rp_… as listed")
    change = webhook.add_mutually_exclusive_group()
    change.add_argument(
        "--url",
        help="https URL (http only to localhost) that receives the party's status events",
    )
    change.add_argument("--clear", action="store_true", help="stop sending it status events")
    bind = action("client-cert", "show, bind (--client-cert) or unbind (--clear) its certificate")
    bind.add_argument("party_id", metavar="PARTY_ID", help="rp_… as listed")
    _certificate_options(bind).add_argument(
        "--clear", action="store_true", help="its API key alone authenticates it again"
    )
    rotate = action("rotate-key", "give a party a new API key; prints it once")
    rotate.add_argument("party_id", metavar="PARTY_ID", help="rp_… as listed")
    rotate.add_argument(
        "--overlap",
        type=parse_overlap,
        default=DEFAULT_KEY_OVERLAP,
        metavar="DURATION",
        help="how long the old key keeps working: 30m, 24h, 7d, at most 30d, 0 for a leaked"
        " key (default 24h)",
    )
    rotate.add_argument(
        "--force",
        action="store_true",
        help=f"rotate even if the current key was made by a rotation less than {_RECENT} ago,"
        " e.g. by another operator: that key stops too",
    )
