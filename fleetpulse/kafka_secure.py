"""What the secured local broker needs: a throwaway CA, the broker's certificate, SCRAM passwords,
and the settings a client connects with.

Everything lives in one directory, ``<home>/kafka/secure-<port>/`` (0700, every file 0600):

* ``ca.pem``: the throwaway CA's certificate, which clients trust. Its key is deleted once it
  has signed the broker's certificate, so no other certificate the broker trusts can be made.
* ``broker-keystore.pem``: the broker's key and certificate chain (``CN=fleetpulse-broker``,
  valid for 127.0.0.1 and localhost), made with the ``openssl`` command.
* ``<principal>.password``: one random password per principal (``admin``, ``worker``, ``agent``,
  ``sink``) and the broker's own; never printed, never on a long-lived process's command line.
* ``admin.properties``: an admin client config for Kafka's own tools (``--command-config``).
* ``data/``: the broker's log dir. SCRAM credentials are written into its metadata log when it
  is formatted, the ACLs once it runs: removing the whole directory starts over.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.connection import KafkaConnection
from fleetpulse.kafka_acls import PRINCIPALS

BROKER_PRINCIPAL = "fleetpulse-broker"  # the broker's user on both listeners: its certificate's CN, its SCRAM login
SCRAM_MECHANISM = "SCRAM-SHA-512"
CERT_DAYS = 825


class KafkaSecureError(RuntimeError):
    """The secured broker's files could not be made; the message says what to do."""


@dataclass(frozen=True)
class SecureDir:
    """The certificates, passwords and data of one secured local broker."""

    path: Path

    @property
    def ca_file(self) -> Path:
        return self.path / "ca.pem"

    @property
    def keystore(self) -> Path:
        return self.path / "broker-keystore.pem"

    @property
    def admin_config(self) -> Path:
        return self.path / "admin.properties"

    @property
    def data_dir(self) -> Path:
        return self.path / "data"

    def password_file(self, principal: str) -> Path:
        return self.path / f"{principal}.password"

    def password(self, principal: str) -> str:
        return self.password_file(principal).read_text().strip()

    def passwords(self) -> list[str]:
        """Every password of this broker (to scrub them from a tool's output)."""
        return [self.password(p) for p in (*PRINCIPALS, BROKER_PRINCIPAL)]

    def prepare(self, formatted: bool) -> None:
        """Make what is missing: the directory, the certificates, the passwords, the admin config.

        ``formatted``: the data dir already holds SCRAM credentials, which only the existing
        password files match; a missing one cannot be made up.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        self.path.chmod(0o700)
        if not (self.ca_file.exists() and self.keystore.exists()):
            self._make_certificates()
        for principal in (*PRINCIPALS, BROKER_PRINCIPAL):
            file = self.password_file(principal)
            if file.exists():
                continue
            if formatted:
                raise KafkaSecureError(
                    f"{file} is missing but {self.data_dir} already holds the SCRAM credentials; "
                    f"stop the broker and remove {self.path} to start over"
                )
            write_private(file, secrets.token_urlsafe(24) + "\n")
        write_private(self.admin_config, client_properties(self.ca_file, "admin", self.password("admin")))

    def scram_arguments(self) -> list[str]:
        """``kafka-storage format`` arguments adding every principal's SCRAM credential.

        They carry the passwords: the launcher passes them in an argument file, not argv.
        """
        return [
            f"--add-scram={SCRAM_MECHANISM}=[name={p},password={self.password(p)}]"
            for p in (*PRINCIPALS, BROKER_PRINCIPAL)
        ]

    def template_values(self) -> dict[str, str]:
        """The placeholders of ``deploy/kafka/server-secure.properties.template``."""
        return {
            "secure_dir": str(self.path),
            "keystore": str(self.keystore),
            "ca_file": str(self.ca_file),
            "broker_principal": BROKER_PRINCIPAL,
            "broker_password": self.password(BROKER_PRINCIPAL),
        }

    def connection(self, bootstrap: str, principal: str) -> KafkaConnection:
        """The connection settings that log in to the broker at ``bootstrap`` as ``principal``."""
        return KafkaConnection(
            bootstrap,
            "SASL_SSL",
            ssl_cafile=str(self.ca_file),
            sasl_mechanism=SCRAM_MECHANISM,
            sasl_username=principal,
            sasl_password=self.password(principal),
        )

    def client_kwargs(self, principal: str) -> dict[str, Any]:
        """aiokafka client keyword arguments (no ``bootstrap_servers``) that log in as ``principal``."""
        options = self.connection("", principal).client_options()
        del options["bootstrap_servers"]
        return options

    def _make_certificates(self) -> None:
        """A throwaway CA signs the broker's certificate, then its key is deleted."""
        if shutil.which("openssl") is None:
            raise KafkaSecureError("'openssl' is not on PATH; install OpenSSL to run the broker with --secure")
        with tempfile.TemporaryDirectory(dir=self.path) as scratch:
            work = Path(scratch)
            ec_p256 = ["-pkeyopt", "ec_paramgen_curve:P-256"]
            ca_subject = "/CN=FleetPulse local throwaway CA"
            _openssl(
                work,
                "req",
                "-x509",
                "-newkey",
                "ec",
                *ec_p256,
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                str(CERT_DAYS),
                "-subj",
                ca_subject,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            )
            # Unencrypted PKCS#8: see server-secure.properties.template for why.
            _openssl(work, "genpkey", "-algorithm", "EC", *ec_p256, "-out", "broker.key")
            _openssl(
                work, "req", "-new", "-key", "broker.key", "-subj", f"/CN={BROKER_PRINCIPAL}", "-out", "broker.csr"
            )
            (work / "broker.ext").write_text(
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                # Server on both listeners, client of the controller listener (mutual TLS).
                "extendedKeyUsage=serverAuth,clientAuth\n"
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
            )
            _openssl(
                work,
                "x509",
                "-req",
                "-in",
                "broker.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-extfile",
                "broker.ext",
                "-set_serial",
                f"0x{secrets.token_hex(16)}",
                "-days",
                str(CERT_DAYS),
                "-out",
                "broker.crt",
            )
            chain = "".join((work / name).read_text() for name in ("broker.key", "broker.crt", "ca.pem"))
            write_private(self.keystore, chain)
            write_private(self.ca_file, (work / "ca.pem").read_text())
            # Leaving the block deletes the scratch directory, the CA's key with it.


def client_properties(ca_file: Path, principal: str, password: str) -> str:
    """A Kafka client config (``--command-config`` of kafka-acls.sh, kafka-topics.sh) logging in as ``principal``."""
    return (
        "security.protocol=SASL_SSL\n"
        f"sasl.mechanism={SCRAM_MECHANISM}\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{principal}" password="{password}";\n'
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={ca_file}\n"
    )


def java_argfile(arguments: list[str]) -> str:
    """A ``java @file`` argument file: one quoted argument per line (backslash and quote escaped)."""
    quoted = ('"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"' for a in arguments)
    return "\n".join(quoted) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only (0600) from the first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _openssl(cwd: Path, *arguments: str) -> None:
    done = subprocess.run(["openssl", *arguments], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise KafkaSecureError(f"openssl {arguments[0]} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
