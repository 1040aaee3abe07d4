"""The secured local broker's files: certificates, passwords, properties (no broker started)."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from fleetpulse.kafka_acls import PRINCIPALS
from fleetpulse.kafka_local import LocalKafka
from fleetpulse.kafka_secure import BROKER_PRINCIPAL, KafkaSecureError, SecureDir, java_argfile

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def _properties(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


@needs_openssl
def test_prepare_makes_a_broker_certificate_signed_by_a_ca_whose_key_is_gone(tmp_path: Path) -> None:
    secure = SecureDir(tmp_path / "secure-9092")
    secure.prepare(formatted=False)
    assert stat.S_IMODE(secure.path.stat().st_mode) == 0o700
    assert sorted(p.name for p in secure.path.iterdir()) == sorted(
        [
            "ca.pem",
            "broker-keystore.pem",
            "admin.properties",
            *(f"{p}.password" for p in (*PRINCIPALS, BROKER_PRINCIPAL)),
        ]
    )
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in secure.path.iterdir())
    assert "PRIVATE KEY" not in secure.ca_file.read_text()
    keystore = secure.keystore.read_text()
    assert keystore.startswith("-----BEGIN PRIVATE KEY-----")  # unencrypted PKCS#8: what Java 17 reads
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(secure.ca_file), "-purpose", "sslserver", str(secure.keystore)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    shown = subprocess.run(
        ["openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName,extendedKeyUsage"],
        input=keystore,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"CN = {BROKER_PRINCIPAL}" in shown and "IP Address:127.0.0.1" in shown and "DNS:localhost" in shown
    assert "TLS Web Client Authentication" in shown  # it is the controller listener's client too


@needs_openssl
def test_prepare_keeps_what_exists_and_refuses_to_invent_a_password_the_data_does_not_know(tmp_path: Path) -> None:
    secure = SecureDir(tmp_path / "secure")
    secure.prepare(formatted=False)
    before = {p.name: p.read_text() for p in secure.path.iterdir()}
    secure.prepare(formatted=True)
    assert {p.name: p.read_text() for p in secure.path.iterdir()} == before
    secure.password_file("agent").unlink()
    with pytest.raises(KafkaSecureError, match=r"agent\.password is missing .* remove"):
        secure.prepare(formatted=True)


def test_secured_properties_fill_every_placeholder_and_lock_the_doors(tmp_path: Path) -> None:
    kafka = LocalKafka(tmp_path, port=40000, secure=True)
    kafka.secure_dir.path.mkdir(parents=True)
    for principal in (*PRINCIPALS, BROKER_PRINCIPAL):
        kafka.password_file(principal).write_text(f"pw-{principal}\n")
    config = kafka._write_config()
    text = config.read_text()
    assert "{" not in text.replace('{"', "") and stat.S_IMODE(config.stat().st_mode) == 0o600
    props = _properties(config)
    assert props["listeners"] == "CLIENT://127.0.0.1:40000,CONTROLLER://127.0.0.1:40001"
    assert props["listener.security.protocol.map"] == "CLIENT:SASL_SSL,CONTROLLER:SSL"
    assert props["listener.name.controller.ssl.client.auth"] == "required"
    assert props["super.users"] == f"User:admin;User:{BROKER_PRINCIPAL}"
    assert props["allow.everyone.if.no.acl.found"] == "false" and props["auto.create.topics.enable"] == "false"
    assert props["log.dirs"] == str(kafka.secure_dir.data_dir)
    assert f'password="pw-{BROKER_PRINCIPAL}"' in props["listener.name.client.scram-sha-512.sasl.jaas.config"]
    assert kafka.started_secure()


def test_plaintext_properties_are_the_open_development_broker(tmp_path: Path) -> None:
    kafka = LocalKafka(tmp_path, port=40000)
    kafka.base.mkdir(parents=True)
    props = _properties(kafka._write_config())
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert props["log.dirs"] == str(tmp_path / "kafka" / "data-40000") and "authorizer.class.name" not in props
    assert not kafka.started_secure()


def test_java_argfile_quotes_each_argument() -> None:
    assert java_argfile(["a b", 'say "hi"', "C:\\x"]) == '"a b"\n"say \\"hi\\""\n"C:\\\\x"\n'
