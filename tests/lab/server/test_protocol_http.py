"""HTTP and WS-Management basics of the lab server, driven with plain requests and sockets."""

from __future__ import annotations

import socket
import statistics
import threading
import time
import uuid
from typing import Any

import pytest
import requests

from mock_remoting.credentials import LAB_PASSWORD, LAB_USERNAME

pytestmark = pytest.mark.lab

ENVELOPE = (
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" '
    'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header>'
    "<wsa:Action>{action}</wsa:Action><wsa:MessageID>{message_id}</wsa:MessageID>"
    "<wsman:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</wsman:ResourceURI>"
    "<wsman:OperationTimeout>PT5S</wsman:OperationTimeout>{selectors}</s:Header><s:Body>{body}</s:Body></s:Envelope>"
)
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
DELETE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"


def envelope(
    action: str, *, shell_id: str | None = None, body: str = "", message_id: str | None = None
) -> str:
    selectors = (
        f'<wsman:SelectorSet><wsman:Selector Name="ShellId">{shell_id}</wsman:Selector></wsman:SelectorSet>'
        if shell_id
        else ""
    )
    return ENVELOPE.format(
        action=action, message_id=message_id or f"uuid:{uuid.uuid4()}", selectors=selectors, body=body
    )


def post(session: requests.Session, port: int, data: str, path: str = "wsman") -> requests.Response:
    return session.post(
        f"http://127.0.0.1:{port}/{path}",
        data=data.encode(),
        timeout=10,
        headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
    )


@pytest.fixture
def basic() -> requests.Session:
    session = requests.Session()
    session.auth = (LAB_USERNAME, LAB_PASSWORD)
    session.trust_env = False
    return session


def test_paths_methods_and_credentials(lab_server: Any, basic: requests.Session) -> None:
    port = lab_server().endpoints[0].port
    assert basic.get(f"http://127.0.0.1:{port}/wsman", timeout=5).status_code == 405
    assert post(basic, port, envelope(CREATE), path="nothing-here").status_code == 404
    anonymous = requests.post(f"http://127.0.0.1:{port}/wsman", data=b"<x/>", timeout=5)
    assert anonymous.status_code == 401
    challenges = anonymous.headers["WWW-Authenticate"]
    assert "Negotiate" in challenges and "Basic" in challenges


def test_relates_to_is_echoed_and_unknown_shells_fault(lab_server: Any, basic: requests.Session) -> None:
    port = lab_server().endpoints[0].port
    message_id = f"uuid:{str(uuid.uuid4()).upper()}"
    response = post(
        basic,
        port,
        envelope(
            SHELL + "Receive",
            shell_id="NO-SUCH-SHELL",
            message_id=message_id,
            body="<rsp:Receive><rsp:DesiredStream>stdout</rsp:DesiredStream></rsp:Receive>",
        ),
    )
    assert response.status_code == 500
    assert f"<a:RelatesTo>{message_id}</a:RelatesTo>" in response.text
    assert 'Code="2150858843"' in response.text and "NO-SUCH-SHELL" in response.text


def test_keep_alive_and_no_delayed_ack_stalls(lab_server: Any, basic: requests.Session) -> None:
    server = lab_server()
    port = server.endpoints[0].port
    created = post(
        basic,
        port,
        envelope(
            CREATE,
            body="<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams>"
            "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams>"
            "</rsp:Shell>",
        ),
    )
    assert created.status_code == 200
    shell_id = created.text.split('Name="ShellId">', 1)[1].split("<", 1)[0]
    connections: set[Any] = set()
    timings = []
    for _ in range(25):
        started = time.perf_counter()
        response = post(
            basic,
            port,
            envelope(
                SHELL + "Signal",
                shell_id=shell_id,
                body='<rsp:Signal CommandId="X"><rsp:Code>ctrl_c</rsp:Code></rsp:Signal>',
            ),
        )
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200
        connections.add(id(response.raw._connection))  # the pooled connection object
    assert len(connections) == 1  # one keep-alive connection served all of them
    # A head/body split over two segments would wait ~40 ms for the client's delayed ACK.
    assert statistics.median(timings) < 0.035
    assert post(basic, port, envelope(DELETE, shell_id=shell_id)).status_code == 200
    assert server.open_shells(server.endpoints[0].name) == 0


def test_many_simultaneous_connections(lab_server: Any) -> None:
    port = lab_server().endpoints[0].port
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(64)]
    replies: list[bytes] = []
    lock = threading.Lock()

    def ask(sock: socket.socket) -> None:
        sock.sendall(b"GET /wsman HTTP/1.1\r\nHost: x\r\n\r\n")
        data = sock.recv(4096)
        with lock:
            replies.append(data)

    threads = [threading.Thread(target=ask, args=(s,)) for s in sockets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    for sock in sockets:
        sock.close()
    assert len(replies) == 64 and all(r.startswith(b"HTTP/1.1 405") for r in replies)


def test_oversized_and_garbled_requests(lab_server: Any, basic: requests.Session) -> None:
    port = lab_server().endpoints[0].port
    huge = envelope(CREATE, body="<rsp:Shell>" + "x" * 600_000 + "</rsp:Shell>")
    response = post(basic, port, huge)
    assert response.status_code == 500 and 'Code="2150859025"' in response.text
    garbled = post(basic, port, "<s:Envelope not xml")
    assert garbled.status_code == 500 and "SchemaValidationError" in garbled.text
    unknown = post(basic, port, envelope("http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"))
    assert unknown.status_code == 500 and "ActionNotSupported" in unknown.text
