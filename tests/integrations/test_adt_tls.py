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
from adt_helpers import LOCATIONS, ack_fields, adt, audit_rows, bed_of, state
from click.testing import CliRunner
from polling import wait_until
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
    client_ca: Path  # the CA that signs the interface engines' client certificates (mutual TLS)
    client_cert: Path  # an interface engine's client certificate ("mirth.genhosp.test"), signed by client_ca
    client_key: Path
    rogue_cert: Path  # a client certificate with the same name, signed by a CA the listener does not trust
    rogue_key: Path


CLIENT_NAME = "mirth.genhosp.test"


def make_certificates(folder: Path) -> TlsFiles:
    """A server CA with a server certificate, a client CA with a client certificate and a rogue CA with a client
    certificate (EC P-256, valid for a day), written as PEM files."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def make_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(name(common_name))
            .public_key(key.public_key())
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
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return key, certificate

    def issue(
        ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
        common_name: str,
        alternative_names: list[x509.GeneralName],
        usage: x509.ObjectIdentifier,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        ca_key, ca_certificate = ca
        key = ec.generate_private_key(ec.SECP256R1())
        ca_ski = ca_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(ca_certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        return key, certificate

    def write(path: Path, pair: tuple[ec.EllipticCurvePrivateKey, x509.Certificate]) -> tuple[Path, Path]:
        key, certificate = pair
        path.with_suffix(".pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file = path.with_suffix(".key")
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_file.chmod(0o600)
        return path.with_suffix(".pem"), key_file

    server_ca, client_ca, rogue_ca = make_ca("Areya test CA"), make_ca("GENHOSP interface CA"), make_ca("Rogue CA")
    loopback = [x509.IPAddress(ip_address("127.0.0.1")), x509.DNSName("localhost")]
    cert, key = write(
        folder / "adt-server", issue(server_ca, "areya-adt.test", loopback, ExtendedKeyUsageOID.SERVER_AUTH)
    )
    client = [x509.DNSName(CLIENT_NAME)]
    client_cert, client_key = write(
        folder / "client", issue(client_ca, CLIENT_NAME, client, ExtendedKeyUsageOID.CLIENT_AUTH)
    )
    rogue_cert, rogue_key = write(
        folder / "rogue", issue(rogue_ca, CLIENT_NAME, client, ExtendedKeyUsageOID.CLIENT_AUTH)
    )
    ca_file, _ = write(folder / "ca", server_ca)
    client_ca_file, _ = write(folder / "client-ca", client_ca)
    return TlsFiles(ca_file, cert, key, client_ca_file, client_cert, client_key, rogue_cert, rogue_key)


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
    before = state(session)
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
    assert state(session) == before
    # refused connections are audited with the real peer address (one row a minute per address and stage)
    assert wait_until(lambda: audit_rows(session, "adt.refused"), timeout=30)  # written after the refusal
    refused = audit_rows(session, "adt.refused")
    assert [r["stage"] for r in refused] == ["tls"], refused
    assert refused[0]["peer"].startswith("127.0.0.1:") and "TLS handshake failed" in refused[0]["reason"]
    assert refused[0]["by"] == "adt-peer:127.0.0.1"
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
    before = state(session)
    plain = runner.invoke(cli, base, env=env)
    assert plain.exit_code == 1 and plain.stderr.startswith(f"error: ADT listener 127.0.0.1:{tls_listener.port}:")
    untrusted = runner.invoke(cli, [*base, "--tls"], env=env)  # the system's CAs do not know the test CA
    assert untrusted.exit_code == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
    assert state(session) == before
    result = runner.invoke(cli, [*base, "--tls-ca", str(tls_files.ca)], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("S1 ADT^A01^ADT_A01 AA admitted MRN001 to ICU/1")
    assert bed_of(session, "MRN001") == "ICU/1"
    not_pem = tmp_path / "not-a-ca.pem"
    not_pem.write_text("nothing here\n")
    bad_ca = runner.invoke(cli, [*base, "--tls-ca", str(not_pem)], env=env)
    assert bad_ca.exit_code == 1 and bad_ca.stderr.startswith(f"error: --tls-ca {not_pem}:")


# --------------------------------------------------------------------------- authentication: who may send


def mutual_tls_listener(
    session_factory: Callable[[], Session],
    settings: Settings,
    tls_files: TlsFiles,
    *,
    senders: tuple[str, ...] = ("PAS^GENHOSP",),
    client_names: tuple[str, ...] = (),
    networks: tuple[str, ...] = ("127.0.0.0/8",),
) -> AdtListener:
    """A listener that requires client certificates signed by the client CA (the settings an analyst would set)."""
    configured = settings.replace(
        adt_tls_cert=str(tls_files.cert),
        adt_tls_key=str(tls_files.key),
        adt_tls_client_ca=str(tls_files.client_ca),
        adt_tls_client_names=client_names,
        adt_allowed_senders=senders,
        adt_allowed_networks=networks,
        adt_location_map=LOCATIONS,
    )
    context = server_ssl_context(configured)
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED
    processor = AdtProcessor.from_settings(configured, session_factory)  # type: ignore[arg-type]
    return AdtListener(processor, "127.0.0.1", 0, context).start()


@pytest.fixture
def wards(session: Session) -> None:
    admin.add_ward(session, "ICU")
    admin.add_bed(session, "ICU", "1")
    admin.add_bed(session, "ICU", "2")
    session.commit()


def with_certificate(tls_files: TlsFiles, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = trusting(tls_files)
    context.load_cert_chain(str(cert or tls_files.client_cert), str(key or tls_files.client_key))
    return context


def refused_send(port: int, context: ssl.SSLContext | None, message: str) -> None:
    """The connection is refused: the handshake fails or the listener closes it without an ACK."""
    with (
        pytest.raises((ssl.SSLError, MllpError, OSError)),
        MllpClient("127.0.0.1", port, timeout=30, ssl_context=context) as client,
    ):
        client.send(message)


def test_mutual_tls_refuses_clients_without_a_trusted_certificate(
    wards: None, session: Session, session_factory: Callable[[], Session], settings: Settings, tls_files: TlsFiles
) -> None:
    listener = mutual_tls_listener(session_factory, settings, tls_files)
    try:
        before = state(session)
        refused_send(listener.port, trusting(tls_files), adt("A01", "N1", location="ICU^101^A"))  # no certificate
        # the same name, but signed by a CA the listener does not trust
        rogue = with_certificate(tls_files, tls_files.rogue_cert, tls_files.rogue_key)
        refused_send(listener.port, rogue, adt("A01", "N2", location="ICU^101^A"))
        refused_send(listener.port, None, adt("A01", "N3", location="ICU^101^A"))  # plain TCP
        assert state(session) == before
        # the listener writes the refusal's audit row after the client has seen the handshake fail
        assert wait_until(lambda: audit_rows(session, "adt.refused"), timeout=30)
        refused = audit_rows(session, "adt.refused")
        assert {r["stage"] for r in refused} == {"client certificate"}, refused
        assert all(r["peer"].startswith("127.0.0.1:") and r["by"] == "adt-peer:127.0.0.1" for r in refused)
        # an interface engine with its certificate is served; the audit names the certificate and the peer
        with MllpClient("127.0.0.1", listener.port, timeout=30, ssl_context=with_certificate(tls_files)) as client:
            fields = ack_fields(client.send(adt("A01", "N4", location="ICU^101^A")))
        assert fields["code"] == "AA", fields
        assert bed_of(session, "MRN001") == "ICU/1"
        (applied,) = audit_rows(session, "adt.message")
        assert applied["client_cert"] == CLIENT_NAME and applied["peer"].startswith("127.0.0.1:"), applied
        assert applied["by"] == "adt:GENHOSP"
    finally:
        listener.stop()


def test_client_certificate_names_limit_which_engines_may_connect(
    wards: None, session: Session, session_factory: Callable[[], Session], settings: Settings, tls_files: TlsFiles
) -> None:
    listener = mutual_tls_listener(session_factory, settings, tls_files, client_names=("rhapsody.genhosp.test",))
    try:
        before = state(session)
        refused_send(listener.port, with_certificate(tls_files), adt("A01", "CN1", location="ICU^101^A"))
        assert state(session) == before
        assert wait_until(lambda: audit_rows(session, "adt.refused"), timeout=30)  # written after the refusal
        (refused,) = audit_rows(session, "adt.refused")
        assert refused["stage"] == "client certificate" and refused["client_cert"] == CLIENT_NAME
        assert "not in adt_tls_client_names" in refused["reason"]
    finally:
        listener.stop()


def test_a_sender_not_allowed_cannot_discharge_a_patient(
    wards: None, session: Session, session_factory: Callable[[], Session], settings: Settings, tls_files: TlsFiles
) -> None:
    """The review's attack: an A03 from sending facility ATTACKER discharged a patient and auto-resolved the
    patient's open alert. Now it gets AR 103, nothing changes, and the audit names the real peer."""
    from areya.alerts.lifecycle import open_alert
    from areya.db.models import Alert, Patient

    listener = mutual_tls_listener(session_factory, settings, tls_files)
    try:
        with MllpClient("127.0.0.1", listener.port, timeout=30, ssl_context=with_certificate(tls_files)) as client:
            assert ack_fields(client.send(adt("A01", "G1", location="ICU^101^A")))["code"] == "AA"
            patient = session.query(Patient).filter_by(mrn="MRN001").one()
            open_alert(session, "negative_emotion", patient_id=patient.id, ward_id=patient.assignments[0].bed.ward_id)
            session.commit()
            before = state(session)
            attack = adt("A03", "X1", at="20240109090000").replace("|PAS|GENHOSP|", "|PAS|ATTACKER|", 1)
            fields = ack_fields(client.send(attack))
            assert fields["code"] == "AR" and fields["error_code"] == "103", fields
            assert fields["location"] == "MSH^1^4" and "ATTACKER" in fields["error"]
            other_app = adt("A03", "X2", at="20240109090000").replace("|PAS|GENHOSP|", "|EVIL|GENHOSP|", 1)
            fields = ack_fields(client.send(other_app))
            assert fields["code"] == "AR" and fields["error_code"] == "103" and fields["location"] == "MSH^1^3"
        assert state(session) == before  # still admitted, still in ICU/1, the alert still open
        assert session.query(Alert).one().state == "firing"
        refused = audit_rows(session, "adt.refused")
        assert [(r["stage"], r["sender"], r["control_id"]) for r in refused] == [
            ("sender", "PAS^ATTACKER", "X1"),
            ("sender", "EVIL^GENHOSP", "X2"),
        ]
        assert all(r["peer"].startswith("127.0.0.1:") and r["client_cert"] == CLIENT_NAME for r in refused)
    finally:
        listener.stop()


def test_a_connection_from_a_network_not_allowed_is_closed_unanswered(
    wards: None, session: Session, session_factory: Callable[[], Session], settings: Settings, tls_files: TlsFiles
) -> None:
    listener = mutual_tls_listener(session_factory, settings, tls_files, networks=("10.20.0.0/16",))
    try:
        before = state(session)
        refused_send(listener.port, with_certificate(tls_files), adt("A01", "W1", location="ICU^101^A"))
        refused_send(listener.port, with_certificate(tls_files), adt("A01", "W2", location="ICU^101^A"))
        assert state(session) == before
        assert wait_until(lambda: audit_rows(session, "adt.refused"), timeout=30)  # written after the refusal
        refused = audit_rows(session, "adt.refused")  # one row a minute per address: a scan cannot flood the trail
        assert [r["stage"] for r in refused] == ["network"]
        assert refused[0]["peer"].startswith("127.0.0.1:") and "not in adt_allowed_networks" in refused[0]["reason"]
    finally:
        listener.stop()


def test_adt_send_with_a_client_certificate(
    wards: None, session: Session, session_factory: Callable[[], Session], settings: Settings, tls_files: TlsFiles
) -> None:
    listener = mutual_tls_listener(session_factory, settings, tls_files)
    try:
        feed = settings.data_dir / "feed.hl7"
        feed.write_text(adt("A01", "C1", location="ICU^101^A") + "\r")
        base = ["adt", "send", str(feed), "--port", str(listener.port), "--tls-ca", str(tls_files.ca)]
        env = {"AREYA_DATA_DIR": str(settings.data_dir)}
        without = CliRunner().invoke(cli, base, env=env)
        assert without.exit_code == 1, without.output
        result = CliRunner().invoke(
            cli, [*base, "--tls-cert", str(tls_files.client_cert), "--tls-key", str(tls_files.client_key)], env=env
        )
        assert result.exit_code == 0 and " AA admitted MRN001 to ICU/1" in result.stdout, result.output
    finally:
        listener.stop()


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"adt_allowed_networks": "0.0.0.0/0"}, "AREYA_ADT_ALLOWED_NETWORKS: 0.0.0.0/0 is beyond loopback"),
        ({"adt_allowed_networks": "10.1.2.0/33"}, "AREYA_ADT_ALLOWED_NETWORKS: each entry must be an IP network"),
        ({"adt_tls_client_ca": "/etc/hostname"}, "AREYA_ADT_TLS_CLIENT_CA: mutual TLS needs"),
        ({"adt_tls_client_names": "mirth"}, "AREYA_ADT_TLS_CLIENT_NAMES: set adt_tls_client_ca"),
        ({"adt_allowed_senders": "GENHOSP"}, "AREYA_ADT_ALLOWED_SENDERS: each entry must be APPLICATION^FACILITY"),
        ({"adt_allowed_senders": "*^*"}, "AREYA_ADT_ALLOWED_SENDERS: each entry must be APPLICATION^FACILITY"),
    ],
)
def test_access_settings_are_validated(settings: Settings, changes: dict[str, str], says: str) -> None:
    from areya.config import ConfigError

    with pytest.raises(ConfigError, match=says.replace("^", r"\^")):
        settings.replace(**changes)


def test_remote_networks_with_mutual_tls_or_an_explicit_waiver(settings: Settings, tls_files: TlsFiles) -> None:
    waived = settings.replace(adt_allowed_networks="10.20.0.0/16, 127.0.0.1", adt_allow_plain_remote=True)
    assert waived.adt_allowed_networks == ("10.20.0.0/16", "127.0.0.1/32")
    mutual = settings.replace(
        adt_allowed_networks=["10.20.0.0/16"],
        adt_tls_cert=str(tls_files.cert),
        adt_tls_key=str(tls_files.key),
        adt_tls_client_ca=str(tls_files.client_ca),
        adt_allowed_senders="PAS^GENHOSP, *^CLINIC",
    )
    assert mutual.adt_allowed_senders == ("PAS^GENHOSP", "*^CLINIC")
