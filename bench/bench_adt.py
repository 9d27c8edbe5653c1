"""HL7 v2 ADT listener benchmark (issue 13): messages applied per second over one MLLP connection, and the ACK
latency (p50 / p99 / max), on SQLite and PostgreSQL. Not part of pytest.

    nice python -m bench.bench_adt [--messages 2000] [--wards 4] [--beds 25] [--seed 0]
                                   [--postgres-url URL | env AREYA_TEST_POSTGRES_URL] [--backends sqlite postgresql]
                                   [--tls] [--quick]

For each backend: a fresh migrated database (a temporary SQLite file; on PostgreSQL a new database created on the
server of the URL and dropped afterwards) with ``--wards`` wards of ``--beds`` beds each, mapped in the listener's
location map. A generated day of messages (yesterday, in time order, MSH-7/EVN-2 spread over the 24 hours) is sent
one after another over one connection to the real listener (``AdtListener`` on a free loopback port, in this
process): A01 admit of a new patient into a free bed, A02 transfer to another free bed (PV1-6 = the current one),
A08 update (a new family name), A03 discharge; the beds fill up in the first hours and then stay about 80%
occupied. Every message must be answered AA (the bench fails otherwise), and at the end every admitted patient
must be in the bed the generator put them in. PostgreSQL is skipped with a message when no URL is given
(``.ci/postgres.sh start DIR`` starts a throwaway server and prints one).

``--tls``: the listener as it runs in production, with mutual TLS (a CA, a server and a client certificate made at
start, EC P-256; ``adt_tls_client_ca``), ``adt_allowed_senders`` and ``adt_allowed_networks`` set; the client
presents its certificate. One connection, so the handshake is paid once.
"""

from __future__ import annotations

import argparse
import os
import random
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

FACILITY = "BENCHHOSP"
AUTHORITY = "BENCHHOSP"
GIVEN = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Radia", "Ken", "Margaret")
FAMILY = (
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Backus",
    "Perlman",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Kay",
    "Wirth",
)
WEIGHTS = {"A01": 0.0, "A02": 0.2, "A08": 0.3, "A03": 0.0}  # admissions and discharges: see OCCUPANCY
OCCUPANCY = 0.8  # admit weight 0.8 x free share, discharge 0.2 x occupied share: beds settle about 80% full


# --------------------------------------------------------------------------- the generated day


def location(ward: int, bed: int) -> str:
    """PV1-3 of a bed: point of care ^ room ^ bed."""
    return f"W{ward}^{bed:03d}^A"


def bed_ref(ward: int, bed: int) -> str:
    return f"W{ward}/{bed}"


@dataclass
class Day:
    """The generated messages and where the generator left every admitted patient."""

    messages: list[str] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)
    final_beds: dict[str, str] = field(default_factory=dict)  # MRN -> WARD/BED


def generate_day(n: int, wards: int, beds: int, seed: int, day: datetime) -> Day:
    """``n`` ADT messages over the 24 hours from ``day`` (strictly increasing seconds), always applicable."""
    if not 1 <= n <= 86_400:
        raise SystemExit("--messages must be in [1, 86400] (one a second at most)")
    rng = random.Random(seed)
    free = [(w, b) for w in range(1, wards + 1) for b in range(1, beds + 1)]
    where: dict[str, tuple[int, int]] = {}  # admitted MRN -> (ward, bed)
    names: dict[str, tuple[str, str]] = {}
    out = Day()
    step = 86_400 // n
    for i in range(n):
        at = (day + timedelta(seconds=i * step)).strftime("%Y%m%d%H%M%S")
        occupied = len(where) / (len(where) + len(free))
        weights = {
            "A01": OCCUPANCY * (1 - occupied),
            "A02": WEIGHTS["A02"] if where and free else 0.0,
            "A08": WEIGHTS["A08"] if where else 0.0,
            "A03": (1 - OCCUPANCY) * occupied,
        }
        possible = {e: w for e, w in weights.items() if w > 0}
        event = rng.choices(list(possible), list(possible.values()))[0]
        prior = ""
        if event == "A01":
            mrn = f"MRN{len(names) + 1:06d}"
            names[mrn] = (rng.choice(FAMILY), rng.choice(GIVEN))
            where[mrn] = free.pop(rng.randrange(len(free)))
            target = location(*where[mrn])
        else:
            mrn = rng.choice(sorted(where))
            target = ""
            if event == "A02":
                prior = location(*where[mrn])
                bed = free.pop(rng.randrange(len(free)))
                free.append(where[mrn])
                where[mrn] = bed
                target = location(*bed)
            elif event == "A08":
                names[mrn] = (rng.choice([f for f in FAMILY if f != names[mrn][0]]), names[mrn][1])
            else:  # A03
                free.append(where.pop(mrn))
        family, given = names[mrn]
        out.messages.append(
            "\r".join(
                [
                    f"MSH|^~\\&|PAS|{FACILITY}|AREYA|WARD|{at}||ADT^{event}^ADT_A01|B{i + 1:07d}|P|2.5",
                    f"EVN|{event}|{at}",
                    f"PID|1||{mrn}^^^{AUTHORITY}^MR||{family}^{given}||19500101|U",
                    f"PV1|1|I|{target}|||{prior}",
                ]
            )
        )
        out.events[event] += 1
    out.final_beds = {mrn: bed_ref(*bed) for mrn, bed in where.items()}
    return out


# --------------------------------------------------------------------------- one backend


@dataclass
class Result:
    backend: str
    messages: int
    seconds: float
    latencies_ms: list[float]
    codes: Counter[str]
    beds_ok: bool

    def row(self) -> str:
        lat = sorted(self.latencies_ms)
        p99 = lat[min(len(lat) - 1, max(0, round(0.99 * len(lat)) - 1))]
        return (
            f"{self.backend:<16} {self.messages:>8} {self.messages / self.seconds:>10.1f} "
            f"{statistics.median(lat):>7.1f} {p99:>7.1f} {lat[-1]:>7.1f} {self.codes['AA']:>6} "
            f"{self.messages - self.codes['AA']:>6}  {'yes' if self.beds_ok else 'NO'}"
        )


def make_tls_files(folder: str) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, signed by the CA (PEM files)."""
    from ipaddress import ip_address
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])

    def build(name: x509.Name, key: Any, issuer: x509.Name, signer: Any) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
        )

    ca = build(ca_name, ca_key, ca_name, ca_key).add_extension(
        x509.BasicConstraints(ca=True, path_length=0), critical=True
    )
    out: dict[str, str] = {}
    files = Path(folder)

    def write(label: str, certificate: x509.Certificate, key: Any) -> None:
        (files / f"{label}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        (files / f"{label}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        out[label], out[f"{label}_key"] = str(files / f"{label}.pem"), str(files / f"{label}.key")

    write("ca", ca.sign(ca_key, hashes.SHA256()), ca_key)
    for label, san, usage in (
        ("server", x509.IPAddress(ip_address("127.0.0.1")), ExtendedKeyUsageOID.SERVER_AUTH),
        ("client", x509.DNSName("bench-engine.test"), ExtendedKeyUsageOID.CLIENT_AUTH),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bench-{label}")])
        certificate = (
            build(name, key, ca_name, ca_key)
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        write(label, certificate, key)
    return out


def run_backend(backend: str, url: str, day: Day, wards: int, beds: int, tls: bool = False) -> Result:
    from sqlalchemy import select

    from areya import admin
    from areya.admin.patients import current_assignment
    from areya.admin.refs import bed_ref as areya_bed_ref
    from areya.config import load_settings
    from areya.db.engine import create_db_engine, create_session_factory
    from areya.db.migrate import upgrade
    from areya.db.models import Patient
    from areya.integrations.hl7.locations import LocationMap
    from areya.integrations.hl7.messages import parse_message, value
    from areya.integrations.hl7.mllp import MllpClient
    from areya.integrations.hl7.service import AdtListener, AdtProcessor, server_ssl_context

    with tempfile.TemporaryDirectory(prefix="areya-bench-adt-") as tmp:
        settings = load_settings(env={"AREYA_DATA_DIR": tmp, "AREYA_DATABASE_URL": url or f"sqlite:///{tmp}/adt.db"})
        engine = create_db_engine(settings)
        try:
            upgrade(settings, engine=engine)
            factory = create_session_factory(engine)
            with factory() as s:
                for w in range(1, wards + 1):
                    admin.add_ward(s, f"W{w}")
                    for b in range(1, beds + 1):
                        admin.add_bed(s, f"W{w}", str(b))
                s.commit()
            pairs = [(location(w, b), bed_ref(w, b)) for w in range(1, wards + 1) for b in range(1, beds + 1)]
            server_context = client_context = None
            if tls:
                files = make_tls_files(tmp)
                settings = settings.replace(
                    adt_location_map=pairs,
                    adt_assigning_authority=AUTHORITY,
                    adt_tls_cert=files["server"],
                    adt_tls_key=files["server_key"],
                    adt_tls_client_ca=files["ca"],
                    adt_tls_client_names=["bench-engine.test"],
                    adt_allowed_senders=[f"PAS^{FACILITY}"],
                    adt_allowed_networks=["127.0.0.1/32"],
                )
                processor = AdtProcessor.from_settings(settings, factory)
                server_context = server_ssl_context(settings)
                client_context = ssl.create_default_context(cafile=files["ca"])
                client_context.load_cert_chain(files["client"], files["client_key"])
            else:
                processor = AdtProcessor(factory, LocationMap.from_pairs(pairs), authority=AUTHORITY)
            listener = AdtListener(processor, "127.0.0.1", 0, server_context).start()
            latencies: list[float] = []
            codes: Counter[str] = Counter()
            try:
                with MllpClient("127.0.0.1", listener.port, timeout=60, ssl_context=client_context) as client:
                    started = time.perf_counter()
                    for message in day.messages:
                        t0 = time.perf_counter()
                        ack = client.send(message)
                        latencies.append((time.perf_counter() - t0) * 1000)
                        code = value(parse_message(ack), "MSA.F1")
                        codes[code] += 1
                        if code != "AA":
                            print(f"  {backend}: {message.split(chr(13))[0]} -> {ack!r}", file=sys.stderr)
                    seconds = time.perf_counter() - started
            finally:
                listener.stop()
            with factory() as s:
                found = {}
                for patient in s.scalars(select(Patient).where(Patient.status == "admitted")):
                    current = current_assignment(s, patient)
                    found[patient.mrn] = areya_bed_ref(current.bed) if current else None
            label = f"{backend}+mtls" if tls else backend
            return Result(label, len(day.messages), seconds, latencies, codes, found == day.final_beds)
        finally:
            engine.dispose()


def fresh_postgres_database(server_url: str) -> tuple[str, Any]:
    """A new empty database on the server of ``server_url``; (its URL, a function that drops it)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = f"areya_bench_adt_{uuid.uuid4().hex[:10]}"
    admin_engine = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin_engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin_engine.dispose()

    return make_url(server_url).set(database=name).render_as_string(hide_password=False), drop


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000, help="messages in the generated day")
    ap.add_argument("--wards", type=int, default=4)
    ap.add_argument("--beds", type=int, default=25, help="beds per ward")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--postgres-url",
        default=os.environ.get("AREYA_TEST_POSTGRES_URL", ""),
        help="a PostgreSQL server (a fresh database is created on it and dropped); default "
        "$AREYA_TEST_POSTGRES_URL; none: the PostgreSQL row is skipped",
    )
    ap.add_argument("--backends", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    ap.add_argument(
        "--tls",
        action="store_true",
        help="mutual TLS as in production (certificates made at start), with the sender and network allow-lists",
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: 60 messages, 2 wards x 5 beds")
    args = ap.parse_args(argv)
    if args.quick:
        args.messages, args.wards, args.beds = 60, 2, 5
    if args.wards < 1 or args.beds < 1:
        raise SystemExit("--wards and --beds must be at least 1")

    yesterday = (datetime.now(UTC) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    day = generate_day(args.messages, args.wards, args.beds, args.seed, yesterday)
    mix = ", ".join(f"{e} {day.events[e]}" for e in WEIGHTS)
    print(
        f"generated day {yesterday:%Y-%m-%d}: {len(day.messages)} messages ({mix}); {args.wards} wards x "
        f"{args.beds} beds; {len(day.final_beds)} patients admitted at the end of the day"
    )
    results: list[Result] = []
    skipped: list[str] = []
    for backend in args.backends:
        if backend == "sqlite":
            results.append(run_backend("sqlite", "", day, args.wards, args.beds, args.tls))
        elif not args.postgres_url:
            skipped.append(
                "postgresql  skipped: no --postgres-url and AREYA_TEST_POSTGRES_URL is not set "
                "(.ci/postgres.sh start DIR prints one)"
            )
        else:
            url, drop = fresh_postgres_database(args.postgres_url)
            try:
                results.append(run_backend("postgresql", url, day, args.wards, args.beds, args.tls))
            finally:
                drop()
    print(
        f"{'backend':<16} {'messages':>8} {'applied/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'AA':>6} {'not AA':>6}  beds right"
    )
    for result in results:
        print(result.row())
    for line in skipped:
        print(line)
    print(
        "ACK latency: from the message's first byte sent to its ACK's last byte read, one connection, one "
        "message at a time (listener and client in this process)"
    )
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    if any(r.codes["AA"] != r.messages or not r.beds_ok for r in results):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
