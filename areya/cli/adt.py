"""``areya adt listen`` (the HL7 v2 ADT feed over MLLP) and ``areya adt send FILE`` (replay messages)."""

from __future__ import annotations

import asyncio
import ssl
import sys
from pathlib import Path

import click

from areya.cli.context import get_context


@click.group()
def adt() -> None:
    """HL7 v2 ADT feed: admissions, transfers and discharges from the hospital's patient administration system."""


@adt.command("listen")
@click.option("--host", default=None, help="Bind address (default: the adt_host setting, loopback).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default: adt_port; 0 = any free).")
def listen(host: str | None, port: int | None) -> None:
    """Accept ADT messages over MLLP, apply them, answer each with an ACK (Ctrl-C stops)."""
    from areya.integrations.hl7.service import AdtListener, AdtProcessor, server_ssl_context
    from areya.logsetup import setup_logging

    context = get_context()
    settings = context.settings
    setup_logging(settings.log_level)
    if not settings.adt_location_map:
        what = "refused" if settings.adt_unknown_location == "reject" else "taken as not in a monitored bed"
        click.echo(f"warning: adt_location_map is empty: every PV1-3 location will be {what}", err=True)
    if settings.adt_allowed_networks != ("127.0.0.0/8", "::1/128") and not settings.adt_allowed_senders:
        click.echo("warning: adt_allowed_senders is empty: any MSH-3/MSH-4 sender on an allowed connection", err=True)
    try:
        ssl_context = server_ssl_context(settings)
    except (OSError, ssl.SSLError) as exc:
        raise click.ClickException(f"TLS certificate/key/client CA: {exc}") from None
    listener = AdtListener.from_settings(
        AdtProcessor.from_settings(settings, context.session_factory()), settings, host, port, ssl_context
    )
    try:
        asyncio.run(listener.serve())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {listener.host}:{listener.port}: {exc}") from None


@adt.command("send")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--host", default=None, help="Listener host (default: adt_host).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Listener port (default: adt_port).")
@click.option("--tls", is_flag=True, help="Use TLS, trusting the system's CA certificates.")
@click.option(
    "--tls-ca",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Use TLS, trusting this CA file (PEM) instead.",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Client certificate (PEM) for a listener with mutual TLS (adt_tls_client_ca); implies --tls.",
)
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None, help="Key of --tls-cert.")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for each ACK.")
def send(
    file: str,
    host: str | None,
    port: int | None,
    tls: bool,
    tls_ca: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    timeout: float,
) -> None:
    """Send the HL7 messages of FILE (one after another, MLLP-framed or plain, LF or CR segments) and print each
    ACK: control id, event, ACK code, text.  Exit 1 if any message was not accepted (AA).  With --tls or --tls-ca
    the listener's certificate must be valid for --host."""
    import io

    from hl7.client import read_loose

    from areya.integrations.hl7.mllp import MllpError, send_messages

    settings = get_context().settings
    data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    messages = list(read_loose(io.BytesIO(data)))  # bytes: sent as they are, in their MSH-18 character set
    if not messages:
        raise click.ClickException(f"no HL7 messages (MSH segments) in {file}")
    if tls_key and not tls_cert:
        raise click.ClickException("--tls-key needs --tls-cert")
    try:
        ssl_context = ssl.create_default_context(cafile=tls_ca) if tls or tls_ca or tls_cert else None
    except ssl.SSLError as exc:
        raise click.ClickException(f"--tls-ca {tls_ca}: {exc}") from None
    if ssl_context is not None and tls_cert:
        try:
            ssl_context.load_cert_chain(tls_cert, tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise click.ClickException(f"--tls-cert {tls_cert}: {exc}") from None
    target = (host or settings.adt_host, port or settings.adt_port)
    failed = 0
    try:
        for message, ack in send_messages(*target, messages, timeout=timeout, ssl_context=ssl_context):
            fields = _ack_fields(ack)
            text = message.decode("latin-1") if isinstance(message, bytes) else message
            first = text.split("\r", 1)[0].split("|")
            event = first[8] if len(first) > 8 else "?"
            click.echo(f"{fields[1] or '?'} {event} {fields[0]} {fields[2]}".rstrip())
            failed += fields[0] != "AA"
    except (OSError, MllpError) as exc:
        raise click.ClickException(f"ADT listener {target[0]}:{target[1]}: {exc}") from None
    click.echo(f"{len(messages)} message(s), {len(messages) - failed} accepted, {failed} not", err=True)
    if failed:
        sys.exit(1)


def _ack_fields(ack: str) -> tuple[str, str, str]:
    """(MSA-1 code, MSA-2 control id, ERR-8 or MSA-3 text) of an ACK, unescaped."""
    from areya.integrations.hl7.errors import AdtError
    from areya.integrations.hl7.messages import parse_message, value

    try:
        message = parse_message(ack)
    except AdtError:
        return "?", "", f"unreadable ACK: {ack[:80]!r}"
    return (value(message, "MSA.F1"), value(message, "MSA.F2"), value(message, "ERR.F8") or value(message, "MSA.F3"))
