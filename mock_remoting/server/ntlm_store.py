"""The one place that touches the process-global ``NTLM_USER_FILE`` environment variable.

Why an environment variable: pyspnego's pure-Python NTLM acceptor (``spnego.server``) has no
parameter for the accepted credentials. It reads the file named by ``NTLM_USER_FILE`` (lines of
``DOMAIN:USER:PASSWORD``, the gss-ntlmssp format) when the context is created and again when
it checks the client's AUTHENTICATE message (spnego/_ntlm.py ``_get_credential_file``). The
variable is process-wide, so every lab in the process shares one file holding only the lab's
throwaway credentials (mock_remoting/credentials.py), written to a private temp directory.

The file is installed while at least one lab server runs (reference counted) and the previous
value of the variable is restored when the last one stops.

The lines are in the smbpasswd form (``USER:UID:LM_HASH:NT_HASH:FLAGS:TIMESTAMP``, which
pyspnego reads as well) with the hashes of the password computed once here: from a
``DOMAIN:USER:PASSWORD`` line pyspnego derives both hashes again for every authentication,
and its LM hash is pure-Python DES (about 2 % of the lab's CPU on a mixed-fleet scan, py-spy).
The hashes are pyspnego's own functions of the same password, so what a client may log on
with is unchanged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

from spnego._ntlm_raw.crypto import lmowfv1, ntowfv1

from mock_remoting.credentials import LAB_DOMAIN, LAB_PASSWORD, LAB_USERNAME

_ENV = "NTLM_USER_FILE"
_lock = threading.Lock()
_users = 0
_directory: Path | None = None
_previous: str | None = None


def acquire() -> Path:
    """Make sure the lab user file exists and ``NTLM_USER_FILE`` names it; returns its path."""
    global _users, _directory, _previous
    with _lock:
        if _users == 0:
            _directory = Path(tempfile.mkdtemp(prefix="exfix-lab-ntlm-"))
            path = _directory / "users"
            # Both spellings: a bare user name (no domain) and DOMAIN\user. pyspnego matches the
            # domain case-insensitively and exactly, so each form needs its own line.
            lm, nt = lmowfv1(LAB_PASSWORD).hex().upper(), ntowfv1(LAB_PASSWORD).hex().upper()
            hashes = f"1000:{lm}:{nt}:[U]:LCT-0"
            path.write_text(
                f"{LAB_DOMAIN}\\{LAB_USERNAME}:{hashes}\n{LAB_USERNAME}:{hashes}\n",
                encoding="utf-8",
            )
            path.chmod(0o600)
            _previous = os.environ.get(_ENV)
            os.environ[_ENV] = str(path)
        _users += 1
        assert _directory is not None
        return _directory / "users"


def release() -> None:
    """Undo one :func:`acquire`; the last release removes the file and restores the variable."""
    global _users, _directory, _previous
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users:
            return
        if _previous is None:
            os.environ.pop(_ENV, None)
        else:
            os.environ[_ENV] = _previous
        if _directory is not None:
            shutil.rmtree(_directory, ignore_errors=True)
        _directory = None
        _previous = None
