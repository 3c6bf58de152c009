"""Encryption at rest of key material with the master key (pure pytest)."""

import pytest
from trytond.modules.prepaid_sts import masterkey

# The public STS test vending key (docs/sts.md section 3).
VK = bytes.fromhex("abababababababab")


def test_round_trip_and_ciphertext_hides_key():
    master = masterkey.generate_master_key()
    stored = masterkey.encrypt(VK, master)
    assert isinstance(stored, str)
    assert "abab" not in stored.lower()
    assert masterkey.decrypt(stored, master) == VK
    # Fernet is randomised: the same key never gives the same ciphertext twice.
    assert masterkey.encrypt(VK, master) != stored


def test_wrong_master_key_is_refused_clearly():
    stored = masterkey.encrypt(VK, masterkey.generate_master_key())
    with pytest.raises(masterkey.MasterKeyError, match="master key was changed"):
        masterkey.decrypt(stored, masterkey.generate_master_key())


def test_malformed_master_key():
    with pytest.raises(masterkey.MasterKeyError, match="not a valid Fernet key"):
        masterkey.encrypt(VK, "not-a-fernet-key")


def test_missing_master_key(monkeypatch):
    monkeypatch.delenv(masterkey.ENV_NAME, raising=False)
    from trytond import config

    monkeypatch.setattr(config, "get", lambda *a, **k: "")
    with pytest.raises(masterkey.MasterKeyError, match="no master key is configured"):
        masterkey.encrypt(VK)


def test_environment_wins(monkeypatch):
    master = masterkey.generate_master_key()
    monkeypatch.setenv(masterkey.ENV_NAME, master)
    stored = masterkey.encrypt(VK)
    assert masterkey.decrypt(stored, master) == VK


def test_empty_ciphertext_and_non_bytes():
    master = masterkey.generate_master_key()
    with pytest.raises(masterkey.MasterKeyError, match="no key material"):
        masterkey.decrypt("", master)
    with pytest.raises(TypeError):
        masterkey.encrypt("abab", master)  # type: ignore[arg-type]
