"""Secret-looking inputs are sealed with the master key in the store, and come back as given."""

import json
import stat

import pytest

from orchestrator.credentials import CredentialError
from orchestrator.credentials.sealed import SHOWN, seal, shown, unseal


def test_secret_inputs_are_sealed_and_come_back(tmp_path):
    given = {"admin_password": "hunter2-xyz", "api_token": {"v": [1, 2]}, "nodes": 3, "site": "login"}
    stored = seal(tmp_path, given)
    text = json.dumps(stored)
    assert "hunter2-xyz" not in text and '"v"' not in text
    assert stored["nodes"] == 3 and stored["site"] == "login"
    assert unseal(tmp_path, stored) == given
    assert shown(stored) == {"admin_password": SHOWN, "api_token": SHOWN, "nodes": 3, "site": "login"}
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600


def test_no_secret_no_master_key(tmp_path):
    assert seal(tmp_path, {"nodes": 3}) == {"nodes": 3}
    assert not (tmp_path / "master.key").exists()


def test_a_sealed_value_is_bound_to_its_name(tmp_path):
    stored = seal(tmp_path, {"password": "a", "token": "b"})
    swapped = {"password": stored["token"], "token": stored["password"]}
    with pytest.raises(CredentialError, match="cannot decrypt input 'password'"):
        unseal(tmp_path, swapped)


def test_an_old_placeholder_is_not_replayed_as_the_value(tmp_path):
    assert unseal(tmp_path, {"password": SHOWN, "nodes": 2}) == {"nodes": 2}


def test_another_master_key_cannot_unseal(tmp_path):
    stored = seal(tmp_path / "a", {"password": "p"})
    seal(tmp_path / "b", {"password": "q"})
    with pytest.raises(CredentialError):
        unseal(tmp_path / "b", stored)
