"""MLLP over TLS: the listener with a certificate made at test time (a throwaway CA and a loopback server
certificate), a TLS client that trusts the CA, and plain-TCP / untrusting clients that get no ACK."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path

import pytest
from adt_helpers import LOCATIONS, ack_fields, adt, bed_of, snapshot
from click.testing import CliRunner
from sqlalchemy.orm import Session

from areya import admin
from areya.cli import cli
from areya.config import Settings
from areya.integrations.hl7.locations import LocationMap
from areya.integrations.hl7.mllp import MllpClient, MllpError
from areya.integrations.hl7.service import AdtListener, AdtProcessor, server_ssl_context


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the CA certificate clients trust
    cert: Path  # the listener's certificate (signed by the CA; valid for 127.0.0.1 and localhost)
    key: Path


def make_certificates(folder: Path) -> TlsFiles:
    """A CA and a server certificate signed by it (EC P-256, valid for a day), written as PEM files."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Areya test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "areya-adt.test")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(folder / "ca.pem", folder / "adt-server.pem", folder / "adt-server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    files.key.chmod(0o600)
    return files


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    folder = tmp_path / "tls"
    folder.mkdir()
    return make_certificates(folder)


@pytest.fixture
def tls_listener(
    session: Session, session_factory: Callable[[], Session], settings: Settings, tls_files: TlsFiles
) -> Iterator[AdtListener]:
    admin.add_ward(session, "ICU")
    admin.add_bed(session, "ICU", "1")
    admin.add_bed(session, "ICU", "2")
    session.commit()
    context = server_ssl_context(settings.replace(adt_tls_cert=str(tls_files.cert), adt_tls_key=str(tls_files.key)))
    assert context is not None and context.minimum_version >= ssl.TLSVersion.TLSv1_2
    processor = AdtProcessor(session_factory, LocationMap.from_pairs(LOCATIONS))  # type: ignore[arg-type]
    running = AdtListener(processor, "127.0.0.1", 0, context).start()
    yield running
    running.stop()


def trusting(tls_files: TlsFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files.ca))


def test_no_tls_without_a_certificate(settings: Settings) -> None:
    assert server_ssl_context(settings) is None


def test_an_admit_over_tls_is_applied_and_acknowledged(
    tls_listener: AdtListener, tls_files: TlsFiles, session: Session
) -> None:
    with MllpClient("127.0.0.1", tls_listener.port, timeout=30, ssl_context=trusting(tls_files)) as client:
        fields = ack_fields(client.send(adt("A01", "T1", location="ICU^101^A")))
        assert fields["code"] == "AA" and fields["control_id"] == "T1", fields
        fields = ack_fields(client.send(adt("A02", "T2", location="ICU^102^A", at="20240109083000")))
        assert fields["code"] == "AA", fields
    assert bed_of(session, "MRN001") == "ICU/2"


def test_plain_and_untrusting_clients_get_no_ack_and_change_nothing(
    tls_listener: AdtListener, tls_files: TlsFiles, session: Session
) -> None:
    before = snapshot(session)
    # a plain-TCP client: its MLLP block is not a TLS handshake; the listener closes the connection unanswered
    with pytest.raises((MllpError, OSError)), MllpClient("127.0.0.1", tls_listener.port, timeout=30) as plain:
        plain.send(adt("A01", "P1", location="ICU^101^A"))
    # a TLS client that does not trust the listener's CA refuses the handshake (nothing is sent)
    with pytest.raises(ssl.SSLCertVerificationError):
        MllpClient("127.0.0.1", tls_listener.port, timeout=30, ssl_context=ssl.create_default_context())
    # the CA is right but the name is not: the certificate is for 127.0.0.1 / localhost only
    wrong_name = trusting(tls_files)
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        socket.create_connection(("127.0.0.1", tls_listener.port), timeout=30) as raw,
    ):
        wrong_name.wrap_socket(raw, server_hostname="adt.elsewhere.test")
    assert snapshot(session) == before
    # the listener keeps serving TLS clients
    with MllpClient("127.0.0.1", tls_listener.port, timeout=30, ssl_context=trusting(tls_files)) as client:
        assert ack_fields(client.send(adt("A01", "P2", location="ICU^101^A")))["code"] == "AA"
    assert bed_of(session, "MRN001") == "ICU/1"


def test_adt_send_over_tls(tls_listener: AdtListener, tls_files: TlsFiles, session: Session, tmp_path: Path) -> None:
    feed = tmp_path / "feed.hl7"
    feed.write_text(adt("A01", "S1", location="ICU^101^A").replace("\r", "\n") + "\n")
    base = ["adt", "send", str(feed), "--host", "127.0.0.1", "--port", str(tls_listener.port), "--timeout", "30"]
    env = {"AREYA_DATA_DIR": str(tmp_path / "var")}
    runner = CliRunner()
    before = snapshot(session)
    plain = runner.invoke(cli, base, env=env)
    assert plain.exit_code == 1 and plain.stderr.startswith(f"error: ADT listener 127.0.0.1:{tls_listener.port}:")
    untrusted = runner.invoke(cli, [*base, "--tls"], env=env)  # the system's CAs do not know the test CA
    assert untrusted.exit_code == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
    assert snapshot(session) == before
    result = runner.invoke(cli, [*base, "--tls-ca", str(tls_files.ca)], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("S1 ADT^A01^ADT_A01 AA admitted MRN001 to ICU/1")
    assert bed_of(session, "MRN001") == "ICU/1"
    not_pem = tmp_path / "not-a-ca.pem"
    not_pem.write_text("nothing here\n")
    bad_ca = runner.invoke(cli, [*base, "--tls-ca", str(not_pem)], env=env)
    assert bad_ca.exit_code == 1 and bad_ca.stderr.startswith(f"error: --tls-ca {not_pem}:")
