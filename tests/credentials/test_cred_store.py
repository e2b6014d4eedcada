"""CredentialStore on the local backend: key pairs, encryption at rest, files and modes, names,
get_secret, key_file()."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from orchestrator.credentials import (
    CredentialError,
    CredentialExists,
    CredentialStore,
    UnknownCredential,
    masterkey,
    sshkey,
    validate_name,
)
from orchestrator.credentials.reader import secret_reader
from orchestrator.functions import FunctionError
from orchestrator.scratch import sweep_stale


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- key pairs ---------------------------------------------------------------------------------------

def test_create_returns_a_valid_openssh_public_key(store: CredentialStore) -> None:
    public = store.create("cluster", comment="me@site")
    assert public.startswith("ssh-ed25519 AAAA") and public.endswith(" me@site") and "\n" not in public
    assert isinstance(serialization.load_ssh_public_key(public.encode()), Ed25519PublicKey)


def test_default_comment_names_the_credential(store: CredentialStore) -> None:
    assert store.create("cluster").endswith(" orch:cluster")


def test_private_key_decrypts_to_the_pair_of_the_public_key(store: CredentialStore) -> None:
    public = store.create("cluster")
    pem = store.private_key("cluster")
    assert pem.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert pem.endswith(b"-----END OPENSSH PRIVATE KEY-----\n")
    key = serialization.load_ssh_private_key(pem, password=None)
    blob = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert public.split()[:2] == blob.decode().split()
    assert store.verify("cluster").name == "cluster"


def test_each_credential_is_a_new_key(store: CredentialStore) -> None:
    assert store.create("a").split()[1] != store.create("b").split()[1]


def test_fingerprint_is_what_ssh_keygen_prints(store: CredentialStore, tmp_path: Path) -> None:
    public = store.create("cluster")
    if not _has("ssh-keygen"):
        pytest.skip("ssh-keygen not installed")
    pub_file = tmp_path / "k.pub"
    pub_file.write_text(public + "\n")
    printed = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub_file)], capture_output=True,
                             text=True, check=True).stdout.split()
    assert printed[1] == store.get("cluster").fingerprint == sshkey.fingerprint(public)
    assert printed[1].startswith("SHA256:")


# -- what is on disk ---------------------------------------------------------------------------------

def test_files_and_modes(store: CredentialStore, home: Path) -> None:
    store.create("cluster")
    assert mode(home) == 0o700  # made by the store
    assert mode(home / "master.key") == 0o600
    assert mode(home / "credentials") == 0o700
    assert mode(home / "credentials" / "cluster.json") == 0o600
    assert sorted(p.name for p in (home / "credentials").iterdir()) == ["cluster.json"]  # no temp files left
    assert sorted(p.name for p in home.iterdir()) == ["credentials", "master.key"]


def test_stored_file_holds_the_public_key_and_ciphertext_only(store: CredentialStore, home: Path) -> None:
    public = store.create("cluster", user="alice")
    document = json.loads((home / "credentials" / "cluster.json").read_text())
    assert document["public_key"] == public and document["user"] == "alice"
    assert document["cipher"] == "AES-256-GCM"
    assert "private_key" not in document and "PRIVATE" not in json.dumps(document)


def test_an_existing_home_is_tightened_when_the_master_key_goes_in(tmp_path: Path) -> None:
    home = tmp_path / "made-by-the-deployment-store"
    home.mkdir()
    home.chmod(0o755)
    store = CredentialStore(home)
    store.list()
    assert mode(home) == 0o755  # reading touches nothing
    store.create("x")
    assert mode(home) == 0o700 and mode(home / "master.key") == 0o600 and mode(home / "credentials") == 0o700


def test_constructing_a_store_touches_nothing(home: Path) -> None:
    CredentialStore(home)
    assert not home.exists()
    assert CredentialStore(home).list() == []
    assert not home.exists()


def test_master_key_made_once_even_when_raced(home: Path) -> None:
    keys: list[bytes] = []
    errors: list[BaseException] = []

    def make() -> None:
        try:
            keys.append(masterkey.load_or_create(home).key)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=make) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(keys) == 16 and len(set(keys)) == 1
    assert [p.name for p in home.iterdir()] == ["master.key"]


def test_concurrent_creates_of_one_name_have_one_winner(store: CredentialStore, home: Path) -> None:
    results: list[str] = []

    def make() -> None:
        try:
            CredentialStore(home).create("same")
            results.append("created")
        except CredentialExists:
            results.append("exists")

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["created"] + ["exists"] * 7
    assert store.verify("same")


# -- errors ------------------------------------------------------------------------------------------

def test_duplicate_name_is_refused_and_the_first_key_kept(store: CredentialStore) -> None:
    first = store.create("cluster")
    with pytest.raises(CredentialExists, match="'cluster' already exists"):
        store.create("cluster")
    assert store.get("cluster").public_key == first


@pytest.mark.parametrize("call", ["get", "private_key", "delete", "verify", "secret"])
def test_unknown_name(store: CredentialStore, call: str) -> None:
    store.create("other")
    with pytest.raises(UnknownCredential, match="no credential named 'nope'"):
        getattr(store, call)("nope")


@pytest.mark.parametrize("name", ["", "a/b", "../x", ".", "..", ".hidden", "a b", "a\n", "é", "x" * 65, "a:b",
                                  "a\0b"])
def test_invalid_names_are_refused(store: CredentialStore, name: str, home: Path) -> None:
    with pytest.raises(CredentialError, match="invalid credential name"):
        store.create(name)
    assert not home.exists()


@pytest.mark.parametrize("name", ["a", "A-b_c.d", "x" * 64, "0", "node.example.org", "_x", "-x"])
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


def test_wrong_master_key_is_a_clear_error(store: CredentialStore, home: Path) -> None:
    store.create("cluster")
    (home / "master.key").unlink()
    masterkey.load_or_create(home)  # a different key, as after restoring credentials without theirs
    with pytest.raises(CredentialError, match=r"master key .* is not the one it was encrypted with") as info:
        store.private_key("cluster")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_missing_master_key_is_a_clear_error(store: CredentialStore, home: Path) -> None:
    store.create("cluster")
    (home / "master.key").unlink()
    with pytest.raises(CredentialError, match="no master key"):
        store.private_key("cluster")
    assert not (home / "master.key").exists()  # not silently replaced by a new one


def test_master_key_readable_by_others_is_refused(store: CredentialStore, home: Path) -> None:
    store.create("cluster")
    (home / "master.key").chmod(0o644)
    with pytest.raises(CredentialError, match="readable by others"):
        store.private_key("cluster")


def test_damaged_master_key(store: CredentialStore, home: Path) -> None:
    store.create("cluster")
    (home / "master.key").write_text("not base64 at all!\n")
    with pytest.raises(CredentialError, match="damaged"):
        store.private_key("cluster")


def test_ciphertext_moved_to_another_name_does_not_decrypt(store: CredentialStore, home: Path) -> None:
    store.create("a")
    store.create("b")
    folder = home / "credentials"
    a, b = json.loads((folder / "a.json").read_text()), json.loads((folder / "b.json").read_text())
    b["ciphertext"] = a["ciphertext"]
    (folder / "b.json").write_text(json.dumps(b))
    with pytest.raises(CredentialError, match="cannot decrypt credential 'b'"):
        store.private_key("b")


def test_swapped_public_key_does_not_decrypt(store: CredentialStore, home: Path) -> None:
    store.create("a")
    path = home / "credentials" / "a.json"
    document = json.loads(path.read_text())
    document["public_key"] = sshkey.generate("x").public_key
    path.write_text(json.dumps(document))
    with pytest.raises(CredentialError, match="cannot decrypt"):
        store.private_key("a")


def test_damaged_credential_file(store: CredentialStore, home: Path) -> None:
    store.create("a")
    (home / "credentials" / "a.json").write_text("{not json")
    with pytest.raises(CredentialError, match="cannot be read"):
        store.get("a")


# -- list and delete ---------------------------------------------------------------------------------

def test_list_and_delete(store: CredentialStore, home: Path) -> None:
    store.create("b", user="bob")
    store.create("a")
    listed = store.list()
    assert [c.name for c in listed] == ["a", "b"]
    assert all(c.type == "ssh-ed25519" and c.fingerprint.startswith("SHA256:") and c.created.endswith("Z")
               for c in listed)
    assert listed[1].user == "bob" and listed[0].user is None
    store.delete("a")
    assert [c.name for c in store.list()] == ["b"]
    assert not (home / "credentials" / "a.json").exists()
    store.create("a")  # the name is free again


# -- get_secret --------------------------------------------------------------------------------------

def test_secret_keys(store: CredentialStore) -> None:
    public = store.create("cluster", user="alice")
    pem = store.private_key("cluster").decode()
    assert store.secret("cluster") == pem == store.secret("cluster", "private_key")
    assert store.secret("cluster", "public_key") == public
    assert store.secret("cluster", "user") == "alice"
    assert store.secret("cluster", "fingerprint").startswith("SHA256:")
    with pytest.raises(CredentialError, match="no 'password'"):
        store.secret("cluster", "password")


def test_secret_user_not_stored(store: CredentialStore) -> None:
    store.create("cluster")
    with pytest.raises(CredentialError, match="no user stored"):
        store.secret("cluster", "user")


def test_secret_reader_for_get_secret(store: CredentialStore) -> None:
    store.create("cluster", user="alice")
    read = secret_reader(store)
    assert read("cluster", "user") == "alice"
    assert read("cluster", None).startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    with pytest.raises(FunctionError, match="get_secret: no credential named 'nope'"):
        read("nope", None)


def test_get_secret_through_tosca_evaluate(store: CredentialStore) -> None:
    from orchestrator.engine.evaluate import Context, evaluate

    store.create("cluster", user="alice")
    ctx = Context(topology=None, node=None, inputs={}, read_attribute=lambda n, a: None,  # type: ignore[arg-type]
                  read_operation_output=lambda n, o, k: None, read_secret=secret_reader(store))
    assert evaluate({"get_secret": ["cluster", "user"]}, ctx) == "alice"
    assert evaluate({"get_secret": "cluster"}, ctx) == store.private_key("cluster").decode()


# -- key_file ----------------------------------------------------------------------------------------

def test_key_file_is_private_and_removed_afterwards(store: CredentialStore, home: Path) -> None:
    store.create("cluster")
    with store.key_file("cluster") as path:
        assert path.read_bytes() == store.private_key("cluster")
        assert mode(path) == 0o600 and mode(path.parent) == 0o700 and mode(home / "run-keys") == 0o700
        assert path.parent.parent == home / "run-keys"
        folder = path.parent
    assert not path.exists() and not folder.exists()
    assert list((home / "run-keys").iterdir()) == []


def test_key_file_removed_on_exception(store: CredentialStore, home: Path) -> None:
    store.create("cluster")
    with pytest.raises(RuntimeError, match="operation failed"), store.key_file("cluster") as path:
        raise RuntimeError("operation failed")
    assert not path.exists() and not path.parent.exists()


def test_key_file_of_unknown_name_leaves_nothing(store: CredentialStore, home: Path) -> None:
    store.create("cluster")
    with pytest.raises(UnknownCredential), store.key_file("nope"):
        pass
    assert not (home / "run-keys").exists()


def test_key_files_for_several_credentials(store: CredentialStore) -> None:
    store.create("a")
    store.create("b")
    with store.key_files(["a", "b", "a"]) as paths:
        assert sorted(paths) == ["a", "b"] and paths["a"].parent != paths["b"].parent
        assert all(mode(p) == 0o600 for p in paths.values())
    assert not any(p.exists() for p in paths.values())


def test_two_key_files_of_one_credential_do_not_collide(store: CredentialStore) -> None:
    store.create("a")
    with store.key_file("a") as first, store.key_file("a") as second:
        assert first != second
    assert not first.exists() and not second.exists()


def test_folders_of_dead_processes_are_swept(store: CredentialStore, home: Path) -> None:
    store.create("a")
    dead = subprocess.Popen(["true"])
    dead.wait()
    base = home / "run-keys"
    base.mkdir(mode=0o700)
    stale = base / f"{dead.pid}.1-abc"
    stale.mkdir(mode=0o700)
    (stale / "id_a").write_bytes(b"left behind by a killed process")
    mine = base / f"{os.getpid()}.0-keep"  # start time unknown: never swept
    mine.mkdir()
    sweep_stale(base)
    assert not stale.exists() and mine.exists()
    with store.key_file("a"):
        pass


def _has(program: str) -> bool:
    import shutil

    return shutil.which(program) is not None


def test_usable_key_files_reports_the_unusable_ones(store: CredentialStore, home: Path) -> None:
    store.create("good")
    store.create("damaged")
    (home / "credentials" / "damaged.json").write_text("{not json")
    with store.usable_key_files(["good", "missing", "bad/name", "damaged", "good"]) as (keys, problems):
        assert list(keys) == ["good"] and keys["good"].read_bytes() == store.private_key("good")
        assert mode(keys["good"]) == 0o600 and keys["good"].parent.parent == home / "run-keys"
        # each unusable name with its own reason, naming it; nothing made for them
        assert sorted(problems) == ["bad/name", "damaged", "missing"]
        assert problems["missing"] == "credential 'missing': no credential named 'missing'", problems
        assert problems["bad/name"].startswith("credential 'bad/name': invalid credential name"), problems
        assert problems["damaged"].startswith("credential 'damaged': ") and "cannot be read" in problems["damaged"]
        assert len(list((home / "run-keys").iterdir())) == 1
        folder = keys["good"].parent
    assert not keys["good"].exists() and not folder.exists()
    assert list((home / "run-keys").iterdir()) == []
