"""The bridge to TOSCA's get_secret: Context.read_secret as a CredentialStore lookup whose failures
are FunctionErrors, so a bad name fails the step that asked, with a sentence, like any other function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.credentials.errors import CredentialError
from orchestrator.credentials.store import CredentialStore
from orchestrator.functions import FunctionError


def secret_reader(store: CredentialStore) -> Callable[[str, str | None], Any]:
    def read_secret(name: str, key: str | None) -> Any:
        try:
            return store.secret(name, key)
        except CredentialError as exc:
            raise FunctionError(f"get_secret: {exc}") from None
        except OSError as exc:
            raise FunctionError(f"get_secret '{name}': cannot read {exc.filename or 'the credential'}: "
                                f"{exc.strerror or type(exc).__name__}") from None

    return read_secret
