"""A real SMTP server for the tests: every message it accepts becomes one
JSON line on stdout ({"from", "to", "data"}). Started by the Rust tests on a
given port, with STARTTLS offered when a certificate and key are given.

usage: smtp_sink.py PORT [CERT KEY]
"""

import json
import ssl
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    async def handle_DATA(self, server, session, envelope):
        line = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "tls": session.ssl is not None,
        }
        print(json.dumps(line), flush=True)
        return "250 OK"


def main():
    port = int(sys.argv[1])
    context = None
    if len(sys.argv) == 4:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
    controller = Controller(
        Sink(),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=context is not None,
    )
    controller.start()
    print(json.dumps({"ready": port}), flush=True)
    # The controller serves from its own thread until the process is killed.
    threading.Event().wait()


if __name__ == "__main__":
    main()
