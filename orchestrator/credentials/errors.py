"""What can go wrong with credentials, as exceptions whose messages are safe to show.

Every message names a credential, a file or a service, never key material: the CLI prints them as
they are, and they may end up in logs.
"""

from __future__ import annotations

import re

# A name becomes a file name (`<name>.json`) and a Vault path segment. The brief's alphabet, but not
# starting with a dot: that rules out "." and ".." (path segments) and hidden/temporary files.
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class CredentialError(Exception):
    """A credential operation could not be done as asked (the CLI exits 2)."""


class CredentialExists(CredentialError):
    pass


class UnknownCredential(CredentialError):
    pass


def validate_name(name: str) -> str:
    # fullmatch, not match(...$): "$" would accept a trailing newline.
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.startswith("."):
        raise CredentialError(
            f"invalid credential name {name!r}: use 1 to 64 of A-Z a-z 0-9 _ . - (not starting with '.')")
    return name
